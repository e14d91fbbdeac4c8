-- A security self-check: one row per finding, none on a healthy install.
-- Run it as a superuser after any manual change to roles, tables or
-- functions (and in monitoring): SELECT * FROM platform_audit();
-- PL/pgSQL, so that it may name functions created after it
-- (platform_app_roles, in privileges.sql).
CREATE OR REPLACE FUNCTION platform_audit()
RETURNS TABLE (finding text, object text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN QUERY
    -- Row-level security switched off, or not forced, on a tenant-scoped table.
    SELECT 'row security not enabled and forced', t.table_name::text,
           format('relrowsecurity = %s, relforcerowsecurity = %s', c.relrowsecurity, c.relforcerowsecurity)
    FROM platform_tenant_tables() t JOIN pg_class c ON c.oid = t.table_name
    WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)

    UNION ALL
    -- Anything but one policy per command: a missing one denies a command
    -- outright; an extra permissive one widens what the others allow.
    SELECT 'policy count is not 4', t.table_name::text,
           format('%s policies: %s', count(p.oid),
                  coalesce(string_agg(p.polname::text, ', ' ORDER BY p.polname), 'none'))
    FROM platform_tenant_tables() t LEFT JOIN pg_policy p ON p.polrelid = t.table_name
    GROUP BY t.table_name
    HAVING count(p.oid) <> 4 OR count(DISTINCT p.polcmd) <> 4

    UNION ALL
    -- A login role that reaches the tenant tables through a grant while
    -- skipping row security (superuser or BYPASSRLS).
    SELECT 'login role with app access bypasses row security', quote_ident(r.rolname),
           format('%s; has SELECT on tenants through %s',
                  CASE WHEN r.rolsuper THEN 'superuser' ELSE 'BYPASSRLS' END, quote_ident(g.rolname))
    FROM pg_class c
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    JOIN pg_roles g ON g.oid = a.grantee
    JOIN pg_roles r ON r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls)
    WHERE c.oid = '@extschema@.tenants'::regclass
      AND a.privilege_type = 'SELECT'
      AND a.grantee <> c.relowner
      AND (r.oid = g.oid OR pg_has_role(r.oid, g.oid, 'MEMBER'))
      -- a superuser is a "member" of every role: count only real grants
      AND (r.oid = g.oid OR EXISTS (
              SELECT FROM pg_auth_members m WHERE m.roleid = g.oid AND m.member = r.oid))

    UNION ALL
    -- SECURITY DEFINER without a pinned search_path: whoever controls a
    -- schema early in the caller's path controls what the function runs.
    SELECT 'security definer function without a pinned search_path', p.oid::regprocedure::text,
           'add SET search_path = pg_catalog, <schema>, pg_temp'
    FROM pg_proc p
    WHERE p.prosecdef
      AND p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'platform')
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) setting WHERE setting LIKE 'search_path=%')

    UNION ALL
    -- A SECURITY DEFINER function anyone may call. Those of the extension see
    -- across tenants (lookups, provisioning) and trust the tenant context,
    -- which any role can set: only application roles may have them.
    SELECT 'security definer function executable by PUBLIC', p.oid::regprocedure::text,
           format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure)
    FROM pg_proc p
    WHERE p.prosecdef
      AND p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'platform')
      AND EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')

    UNION ALL
    -- Any other table of the extension holding tenant rows that a role other
    -- than its owner may read or write without row security (the extension's
    -- derived tables are reached only through definer functions).
    SELECT 'tenant data reachable without row security', c.oid::regclass::text,
           string_agg(DISTINCT format('%s to %s', a.privilege_type,
                          CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END), ', ')
    FROM pg_depend d
    JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p')
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'platform')
      AND c.oid NOT IN (SELECT table_name FROM platform_tenant_tables())
      AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
      AND a.grantee <> c.relowner
      AND EXISTS (SELECT FROM pg_attribute t
                  WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
    GROUP BY c.oid

    UNION ALL
    -- Every policy is an equality on the tenant column: without an index
    -- leading with it, every tenant query scans the whole table.
    SELECT 'no index leads with the tenant column', t.table_name::text,
           format('no index on %s starts with %I', t.table_name, t.tenant_column)
    FROM platform_tenant_tables() t
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
    WHERE NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = t.table_name AND i.indkey[0] = a.attnum)

    UNION ALL
    -- Rows whose text search configuration they cannot keep (dropped,
    -- temporary, or droppable by a non-superuser): every UPDATE of such a row,
    -- and every restore of a dump, fails.
    SELECT 'stored text search configuration that rows cannot keep', k.table_name,
           format('%s rows use %s, which %s; UPDATE them to a configuration a superuser created',
                  k.row_count, k.config, platform_stored_text_search_config_problem(k.config))
    FROM (SELECT 'knowledge_documents' AS table_name, d.text_search_config AS config, count(*) AS row_count
          FROM knowledge_documents d GROUP BY 2
          UNION ALL
          SELECT 'knowledge_chunks', c.text_search_config, count(*) FROM knowledge_chunks c GROUP BY 2) k
    WHERE platform_stored_text_search_config_problem(k.config) IS NOT NULL

    UNION ALL
    -- An application role whose statements and idle transactions may run
    -- for ever: one tenant's request can hold a connection and its locks.
    SELECT 'application role without a timeout', quote_ident(r.role::text),
           format('%s is 0 for it in this database; ALTER ROLE %s SET %s = ''...''',
                  s.name, quote_ident(r.role::text), s.name)
    FROM platform_app_roles() r
    CROSS JOIN (VALUES ('statement_timeout'), ('idle_in_transaction_session_timeout')) AS s(name)
    WHERE coalesce(
            (SELECT split_part(c, '=', 2) FROM pg_db_role_setting g, unnest(g.setconfig) c
             WHERE g.setrole = r.role AND g.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND c LIKE s.name || '=%'),
            (SELECT split_part(c, '=', 2) FROM pg_db_role_setting g, unnest(g.setconfig) c
             WHERE g.setrole = r.role AND g.setdatabase = 0 AND c LIKE s.name || '=%'),
            (SELECT split_part(c, '=', 2) FROM pg_db_role_setting g, unnest(g.setconfig) c
             WHERE g.setrole = 0 AND g.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND c LIKE s.name || '=%'),
            (SELECT f.setting FROM pg_file_settings f WHERE f.name = s.name AND f.applied
             ORDER BY f.seqno DESC LIMIT 1),
            '0') IN ('0', '0ms', '0s')

    UNION ALL
    -- pgvector 0.6.0 to 0.8.1: a parallel HNSW index build can read other
    -- relations' memory or crash the server (CVE-2026-3172).
    SELECT 'pgvector with CVE-2026-3172', 'vector ' || e.extversion,
           'ALTER EXTENSION vector UPDATE after installing pgvector 0.8.2 or later'
    FROM pg_extension e
    WHERE e.extname = 'vector'
      AND string_to_array(e.extversion, '.')::int[] BETWEEN '{0,6,0}' AND '{0,8,1}'

    UNION ALL
    -- Password hashes that are weak at rest (the design document's unsalted
    -- SHA-256, replaced at each user's next login) or that never match
    -- (a value an upgrade kept that is no hash this version knows).
    SELECT CASE c.scheme WHEN 'sha256' THEN 'unsalted password hashes'
                         ELSE 'password hashes that never match' END,
           'user_credentials',
           format('%s; %s', CASE count(*) WHEN 1 THEN '1 user' ELSE count(*) || ' users' END,
                  CASE c.scheme
                      WHEN 'sha256' THEN 'each becomes Argon2id at its user''s next login, or give them new passwords with set_password()'
                      ELSE 'give them new passwords with set_password()' END)
    FROM user_credentials c
    WHERE c.scheme IN ('sha256', 'unrecognized')
    GROUP BY c.scheme

    UNION ALL
    -- The signed tenant context (docs/security.md) with no key to verify
    -- tokens with (every set_tenant_token() fails), and entries of
    -- platform.tenant_keys that are left out: counted, never shown.
    SELECT 'signed tenant context without a usable key', 'platform.tenant_keys',
           'add a key (SELECT platform_new_tenant_key()) to a file postgresql.conf includes, then SELECT pg_reload_conf()'
    FROM platform_tenant_keys_status() k
    WHERE k.usable = 0 AND current_setting('platform.tenant_context') = 'signed'

    UNION ALL
    SELECT 'malformed entries in platform.tenant_keys', 'platform.tenant_keys',
           format('%s left out; each entry is kid:hex, at least 64 hex digits, kids of letters, digits, _ and -',
                  k.malformed)
    FROM platform_tenant_keys_status() k
    WHERE k.malformed > 0;
END
$$;
COMMENT ON FUNCTION platform_audit() IS
    'Security self-check of the platform extension: one row per finding, none when healthy.';
