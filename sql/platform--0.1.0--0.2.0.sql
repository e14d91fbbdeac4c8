-- platform 0.1.0 -> 0.2.0. Loaded by ALTER EXTENSION platform UPDATE, in one
-- transaction with the extension's owner (a superuser) as the current user.
-- Every change since 0.1.0 is here, in the order it must run; the upgrade
-- test (pgrx-tests/tests/upgrade.rs) checks that the result is the same
-- catalog as a fresh CREATE EXTENSION of 0.2.0, with every row intact.
\echo Use "ALTER EXTENSION platform UPDATE TO '0.2.0'" to load this file. \quit

-- ==================== Lookups before the tenant is known ====================

-- src/secrets.rs
CREATE FUNCTION platform_secret_digest(secret text) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'secret_digest_wrapper';

CREATE FUNCTION platform_secret_equal(stored bytea, presented bytea) RETURNS boolean
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'secret_equal_wrapper';

-- E-mail addresses and OAuth accounts become unique per tenant (tables.sql).
ALTER TABLE users DROP CONSTRAINT user_email_idx;
ALTER TABLE users ADD CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email);
ALTER TABLE accounts DROP CONSTRAINT accounts_provider_account_key;
ALTER TABLE accounts ADD CONSTRAINT accounts_tenant_provider_account_key
    UNIQUE (tenant_id, provider, provider_account_id);

-- sql/lookups.sql, whole.
-- Lookups before the tenant is known: a widget's API key, an Auth.js session
-- token, an OAuth account and an e-mail address each lead to a tenant (and a
-- user), which the application then passes to set_tenant().
--
-- Row-level security hides every row while there is no context, so these are
-- SECURITY DEFINER (owned by the extension's owner, a superuser: CREATE
-- EXTENSION needs one) with a pinned search_path, return only the ids the
-- application needs, and are executable only by roles given app access.
--
-- Secrets are found through their digest (see src/secrets.rs): the index probe
-- compares digests, which says nothing about any key, and the last comparison
-- is constant-time in Rust. A wrong key takes the same path as a right one and
-- returns nothing; only a NULL argument is an error.

-- API keys are stored as 'sha256:<hex>' in the document's api_key column.
CREATE FUNCTION platform_api_key_digest(api_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT 'sha256:' || encode(@extschema@.platform_secret_digest(api_key), 'hex')
$$;

-- Whatever an INSERT or UPDATE writes into tenants.api_key (the document's
-- seed, Drizzle, create_tenant(), rotate_api_key()), only its digest is kept.
-- A value that already is a digest is kept as it is: a dump being restored,
-- or an UPDATE that writes the row back unchanged.
CREATE FUNCTION platform_store_api_key_digest() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF NEW.api_key ~ '^sha256:[0-9a-f]{64}$' THEN
        RETURN NEW;
    END IF;
    -- An unsalted digest of a short key could be brute-forced from a leak.
    IF length(NEW.api_key) < 32 THEN
        RAISE EXCEPTION 'an API key needs at least 32 characters, this one has %', length(NEW.api_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Generate one: rotate_api_key() under the tenant''s context, or platform_new_api_key().';
    END IF;
    NEW.api_key := platform_api_key_digest(NEW.api_key);
    RETURN NEW;
END
$$;

CREATE TRIGGER platform_api_key_digest
    BEFORE INSERT OR UPDATE OF api_key ON tenants
    FOR EACH ROW EXECUTE FUNCTION platform_store_api_key_digest();

-- A lookup argument: NULL is a caller's bug (22004); anything else, however
-- wrong, is only a key that matches nothing.
CREATE FUNCTION platform_require_argument(function_name text, argument_name text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '%() needs %, got NULL', function_name, argument_name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the value the client presented; a wrong one simply matches nothing.';
    END IF;
END
$$;

-- The tenant whose widget presents this API key, or NULL.
CREATE FUNCTION tenant_for_api_key(api_key text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    presented text;
    found_id uuid;
    stored text;
BEGIN
    PERFORM platform_require_argument('tenant_for_api_key', 'an API key', api_key);
    presented := platform_api_key_digest(api_key);
    SELECT t.id, t.api_key INTO found_id, stored
    FROM tenants t WHERE t.api_key = presented;
    -- Compared even when nothing was found, so both outcomes take one path.
    IF platform_secret_equal(convert_to(coalesce(stored, presented || '!'), 'UTF8'),
                             convert_to(presented, 'UTF8')) THEN
        RETURN found_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_for_api_key(text) IS
    'The tenant of a widget API key, or NULL: call before set_tenant(). Keys are stored as SHA-256 digests.';

-- Sessions are looked up by the digest of their token, through this index.
CREATE INDEX auth_sessions_token_digest_idx
    ON auth_sessions (platform_secret_digest(session_token));

-- The user and tenant of an unexpired Auth.js session, or no row.
CREATE FUNCTION user_for_session_token(session_token text)
RETURNS TABLE (user_id uuid, tenant_id uuid, expires timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    presented bytea;
BEGIN
    PERFORM platform_require_argument('user_for_session_token', 'a session token', session_token);
    presented := platform_secret_digest(session_token);
    RETURN QUERY
    SELECT s.user_id, s.tenant_id, s.expires
    FROM auth_sessions s
    WHERE platform_secret_digest(s.session_token) = presented
      AND platform_secret_equal(platform_secret_digest(s.session_token), presented)
      AND s.expires > now();
END
$$;
COMMENT ON FUNCTION user_for_session_token(text) IS
    'The user and tenant of an unexpired Auth.js session token, or no row: call before set_tenant().';

-- E-mail addresses and OAuth accounts are unique per tenant (one person can
-- belong to several tenants, and a sign-up never learns that an address is
-- taken elsewhere), so these return one row per tenant that has them.
CREATE INDEX user_email_idx ON users (email);
CREATE INDEX accounts_provider_account_idx ON accounts (provider, provider_account_id);

-- The users with this exact e-mail address, one per tenant, with what a
-- password login checks. Normalise case in the application before storing
-- and before calling.
CREATE FUNCTION users_for_email(email text)
RETURNS TABLE (user_id uuid, tenant_id uuid, role text, password_hash text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_require_argument('users_for_email', 'an e-mail address', email);
    RETURN QUERY
    SELECT u.id, u.tenant_id, u.role, u.password_hash
    FROM users u
    WHERE u.email = users_for_email.email
    ORDER BY u.tenant_id;
END
$$;
COMMENT ON FUNCTION users_for_email(text) IS
    'The users with this e-mail address, one row per tenant: call at login, before set_tenant().';

-- The users an OAuth sign-in (Auth.js getUserByAccount) belongs to.
CREATE FUNCTION users_for_oauth_account(provider text, provider_account_id text)
RETURNS TABLE (user_id uuid, tenant_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_require_argument('users_for_oauth_account', 'a provider', provider);
    PERFORM platform_require_argument('users_for_oauth_account', 'a provider account id', provider_account_id);
    RETURN QUERY
    SELECT a.user_id, a.tenant_id
    FROM accounts a
    WHERE a.provider = users_for_oauth_account.provider
      AND a.provider_account_id = users_for_oauth_account.provider_account_id
    ORDER BY a.tenant_id;
END
$$;
COMMENT ON FUNCTION users_for_oauth_account(text, text) IS
    'The users of an OAuth account, one row per tenant: call at sign-in, before set_tenant().';

-- A new API key for the current tenant, returned once and stored only as a
-- digest; the old key stops working at commit. Runs as the caller, through
-- the policies: a tenant can rotate only its own key.
CREATE FUNCTION rotate_api_key() RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    new_key text := platform_new_api_key();
BEGIN
    UPDATE tenants SET api_key = new_key WHERE id = require_current_tenant_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the current tenant % does not exist', get_current_tenant_id()
            USING ERRCODE = 'no_data_found',
                  HINT = 'set_tenant() to an existing tenant first.';
    END IF;
    RETURN new_key;
END
$$;
COMMENT ON FUNCTION rotate_api_key() IS
    'Replaces the current tenant''s API key and returns the new one; only its digest is stored.';

-- Keys stored in plain text by 0.1.0 become digests. The client keeps its
-- key; only the stored form changes. Triggers are off for this statement so
-- that updated_at keeps recording the tenant's own last change.
SELECT set_config('session_replication_role', 'replica', true);
UPDATE tenants SET api_key = platform_api_key_digest(api_key)
WHERE api_key !~ '^sha256:[0-9a-f]{64}$';
SELECT set_config('session_replication_role', 'origin', true);

-- platform_new_api_key() is harmless and rotate_api_key() runs as the caller.
GRANT EXECUTE ON FUNCTION platform_new_api_key() TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
    tenant_for_api_key(text),
    user_for_session_token(text),
    users_for_email(text),
    users_for_oauth_account(text, text)
FROM PUBLIC;

-- ==================== Application roles ====================

-- sql/app_access.sql: the list of functions an application role may call.
CREATE OR REPLACE FUNCTION platform_app_privileges(role regrole, provisioning boolean, verb text)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH direction AS (
        SELECT CASE verb WHEN 'GRANT' THEN 'TO' ELSE 'FROM' END AS word
    )
    SELECT format('%s USAGE ON SCHEMA %I %s %s', verb, n.nspname, d.word, role)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace, direction d
    WHERE e.extname = 'platform'
    UNION ALL
    SELECT format('%s SELECT, INSERT, UPDATE, DELETE ON TABLE %s %s %s', verb, t, d.word, role)
    FROM (SELECT table_name FROM platform_tenant_tables()
          UNION ALL SELECT '@extschema@.verification_tokens'::regclass) AS tables(t),
         direction d
    UNION ALL
    SELECT format('%s EXECUTE ON FUNCTION %s %s %s', verb, f, d.word, role)
    FROM unnest(ARRAY['@extschema@.get_current_tenant_id()',
                      '@extschema@.require_current_tenant_id()',
                      '@extschema@.set_tenant(uuid)',
                      '@extschema@.list_sessions(integer, text, uuid)',
                      '@extschema@.tenant_for_api_key(text)',
                      '@extschema@.user_for_session_token(text)',
                      '@extschema@.users_for_email(text)',
                      '@extschema@.users_for_oauth_account(text, text)',
                      '@extschema@.rotate_api_key()']::regprocedure[]
                || CASE WHEN provisioning
                        THEN ARRAY['@extschema@.create_tenant(text, text, jsonb, text)']::regprocedure[]
                        ELSE '{}' END) AS f,
         direction d
$$;

-- Roles given app access under an earlier version get what the list above
-- now adds (they are the roles holding INSERT on tenants).
DO $grant$
DECLARE
    app_role regrole;
    statement text;
BEGIN
    FOR app_role IN
        SELECT DISTINCT a.grantee::regrole
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = '@extschema@.tenants'::regclass
          AND a.privilege_type = 'INSERT' AND a.grantee <> c.relowner AND a.grantee <> 0
    LOOP
        FOR statement IN
            SELECT s FROM platform_app_privileges(app_role, false, 'GRANT') AS s
            WHERE s LIKE 'GRANT EXECUTE%'
        LOOP
            EXECUTE statement;
        END LOOP;
    END LOOP;
END
$grant$;

-- ==================== Security audit ====================

-- sql/audit.sql: two more findings (definer functions executable by PUBLIC,
-- tenant data of other extension tables reachable without row security).
CREATE OR REPLACE FUNCTION platform_audit()
RETURNS TABLE (finding text, object text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
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
$$;
