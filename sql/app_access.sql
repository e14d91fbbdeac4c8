-- Turning a role into an application role, and back.
--
-- An application role is the only kind of role for which row-level security
-- means anything: superusers and BYPASSRLS roles skip every policy, FORCE or
-- not, and the tables' owner can drop the policies. So those are refused,
-- along with roles that can SET ROLE into one of them.
--
-- SECURITY INVOKER and revoked from PUBLIC: only a superuser or the owner can
-- hand out these privileges. (A GRANT by anyone else only warns, so an
-- unprivileged caller would otherwise believe it had worked.)

CREATE FUNCTION platform_app_privileges_check(role regrole) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    r pg_roles%ROWTYPE;
    owner_oid oid := (SELECT relowner FROM pg_class WHERE oid = '@extschema@.tenants'::regclass);
    bypassing text;
BEGIN
    SELECT * INTO r FROM pg_roles WHERE oid = role;
    IF r.rolsuper OR r.rolbypassrls THEN
        RAISE EXCEPTION 'role % is % and bypasses row-level security, so it cannot be an application role',
                role, CASE WHEN r.rolsuper THEN 'a superuser' ELSE 'BYPASSRLS' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Create a role WITH LOGIN NOSUPERUSER NOBYPASSRLS for the application and grant that one.';
    END IF;
    SELECT string_agg(quote_ident(s.rolname), ', ' ORDER BY s.rolname) INTO bypassing
    FROM pg_roles s
    WHERE (s.rolsuper OR s.rolbypassrls) AND pg_has_role(role, s.oid, 'MEMBER');
    IF bypassing IS NOT NULL THEN
        RAISE EXCEPTION 'role % is a member of %, which bypass row-level security', role, bypassing
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'REVOKE that membership first, or use another role.';
    END IF;
    IF pg_has_role(role, owner_oid, 'MEMBER') THEN
        RAISE EXCEPTION 'role % owns the platform tables (or is a member of their owner) and could drop their policies', role
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a separate role for the application.';
    END IF;
END
$$;

-- The statements that give (or take back) an application role's privileges:
-- schema usage, DML (never TRUNCATE, which skips row security) on the 15
-- tables, and EXECUTE on the tenant-context functions and the lookups
-- before a tenant is known (lookups.sql); with provisioning,
-- EXECUTE on create_tenant() too.
CREATE FUNCTION platform_app_privileges(role regrole, provisioning boolean, verb text)
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
                      '@extschema@.rotate_api_key()',
                      -- cost accounting's definer functions (cost_summary.sql, budgets.sql)
                      '@extschema@.cost_summary(timestamptz, timestamptz, text, text, text)',
                      '@extschema@.budget_status()',
                      '@extschema@.record_cost_event(text, numeric, text, text, integer, uuid, text, timestamptz, jsonb)',
                      '@extschema@.compute_cost_summary(timestamptz, timestamptz)',
                      -- search (search.sql)
                      '@extschema@.hybrid_search(text, vector, integer, text, integer, integer, double precision, double precision, text, uuid[], text, text)',
                      '@extschema@.vector_search(vector, integer, text, uuid[])',
                      '@extschema@.keyword_search(text, integer, text, uuid[], text, text)',
                      '@extschema@.search_documents(text, vector, integer, text, integer, integer, double precision, double precision, text, text, text)',
                      '@extschema@.ingest_document(text, text, text[], vector[], text, jsonb, vector, text)',
                      '@extschema@.chunk_text(text, integer, integer)',
                      -- and the definer helpers they call
                      '@extschema@.platform_common_lexemes(boolean, text[])',
                      '@extschema@.platform_keyword_candidates(tsquery, integer, uuid[], boolean, text)'
                     ]::regprocedure[]
                || CASE WHEN provisioning
                        THEN ARRAY['@extschema@.create_tenant(text, text, jsonb, text)']::regprocedure[]
                        ELSE '{}' END) AS f,
         direction d
$$;

-- Runs the statements above; both grant_app_access and revoke_app_access
-- come through here.
CREATE FUNCTION platform_execute_app_privileges(role regrole, provisioning boolean, verb text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    statement text;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'a role is required, got NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example: SELECT grant_app_access(''app'');';
    END IF;
    IF verb = 'GRANT' THEN
        PERFORM platform_app_privileges_check(role);
    END IF;
    -- Two GRANTs on the same object in concurrent transactions fail with
    -- "tuple concurrently updated"; take turns until commit instead.
    PERFORM pg_advisory_xact_lock(hashtext('platform.app_access'));
    FOR statement IN SELECT platform_app_privileges(role, provisioning, verb) LOOP
        EXECUTE statement;
    END LOOP;
END
$$;

CREATE FUNCTION grant_app_access(role regrole, provisioning boolean DEFAULT false)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT platform_execute_app_privileges(role, coalesce(provisioning, false), 'GRANT')
$$;
COMMENT ON FUNCTION grant_app_access(regrole, boolean) IS
    'Gives a NOSUPERUSER NOBYPASSRLS role what an application needs; refuses roles that bypass row-level security.';

CREATE FUNCTION revoke_app_access(role regrole) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT platform_execute_app_privileges(role, true, 'REVOKE')
$$;
COMMENT ON FUNCTION revoke_app_access(regrole) IS
    'Takes back what grant_app_access() gave.';
