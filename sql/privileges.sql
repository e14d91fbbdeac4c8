-- Every privilege on the extension's objects, in one place, derived from one
-- list: platform_function_access() says who may call each function that is
-- not for everyone. This file runs last, on a fresh install and at the end of
-- every upgrade (it is re-runnable), after every function exists.
--
-- Who is who:
--   * an application role is the only kind of role for which row-level
--     security means anything: superusers and BYPASSRLS roles skip every
--     policy, FORCE or not, and the tables' owner can drop the policies. So
--     grant_app_access() refuses those, along with roles that can SET ROLE
--     into one of them;
--   * operators are superusers (or the owner): they need no grant, and the
--     functions meant for them are revoked from PUBLIC;
--   * every other function is executable by PUBLIC, as PostgreSQL makes it:
--     SECURITY INVOKER, so it can do no more than the caller may (row-level
--     security included).

-- The list. audience:
--   'everyone'     the application's API, SECURITY INVOKER: executable by
--                  PUBLIC, and granted to application roles by name;
--   'application'  sees across tenants or trusts the tenant context
--                  (SECURITY DEFINER): application roles only;
--   'provisioning' creates tenants: application roles granted with
--                  provisioning => true;
--   'trusted'      may call set_tenant() in signed mode (platform.tenant_context):
--                  roles given grant_trusted_context(), for jobs that run no
--                  tenant input; never granted by grant_app_access();
--   'operator'     superusers and the owner only.
-- PL/pgSQL, so the names are resolved when it runs (at the end of this file,
-- which therefore fails on any name that does not exist), not when it is
-- created: it names functions defined after it, itself included.
CREATE OR REPLACE FUNCTION platform_function_access(OUT function regprocedure, OUT audience text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN QUERY VALUES
        -- Tenant context (tenancy/, src/tenancy/context.rs).
        ('@extschema@.get_current_tenant_id()'::regprocedure, 'everyone'),
        ('@extschema@.require_current_tenant_id()', 'everyone'),
        ('@extschema@.set_tenant(uuid)', 'everyone'),
        ('@extschema@.set_tenant_token(text)', 'everyone'),
        ('@extschema@.platform_tenant_context()', 'everyone'),
        ('@extschema@.platform_trusted_context()', 'trusted'),
        ('@extschema@.platform_enter_tenant(uuid, boolean)', 'operator'),
        ('@extschema@.platform_new_tenant_key()', 'operator'),
        ('@extschema@.platform_tenant_keys_status()', 'operator'),
        ('@extschema@.list_sessions(integer, text, uuid)', 'everyone'),
        ('@extschema@.rotate_api_key()', 'everyone'),
        -- Lookups before a tenant is known: they read every tenant's rows.
        ('@extschema@.tenant_for_api_key(text)', 'application'),
        ('@extschema@.user_for_session_token(text)', 'application'),
        ('@extschema@.users_for_email(text)', 'application'),
        ('@extschema@.users_for_oauth_account(text, text)', 'application'),
        -- Passwords (tenancy/credentials.sql): the two calls an application
        -- makes, and what only their definer functions and triggers use.
        ('@extschema@.set_password(uuid, text)', 'application'),
        ('@extschema@.verify_password(text, text, uuid)', 'application'),
        ('@extschema@.platform_store_password()', 'operator'),
        ('@extschema@.platform_forget_password()', 'operator'),
        ('@extschema@.platform_may_write_password_for(uuid)', 'operator'),
        ('@extschema@.platform_password_scheme(text)', 'operator'),
        ('@extschema@.platform_password_hash(text)', 'operator'),
        ('@extschema@.platform_password_matches(text, text, text)', 'operator'),
        ('@extschema@.platform_password_needs_rehash(text, text)', 'operator'),
        -- Search (search/): the API, and the helpers it calls that trust the
        -- tenant context.
        ('@extschema@.hybrid_search(text, vector, integer, text, integer, integer, double precision, double precision, text, uuid[], text, text)', 'everyone'),
        ('@extschema@.vector_search(vector, integer, text, uuid[])', 'everyone'),
        ('@extschema@.keyword_search(text, integer, text, uuid[], text, text)', 'everyone'),
        ('@extschema@.search_documents(text, vector, integer, text, integer, integer, double precision, double precision, text, text, text)', 'everyone'),
        ('@extschema@.ingest_document(text, text, text[], vector[], text, jsonb, vector, text)', 'everyone'),
        ('@extschema@.chunk_text(text, integer, integer, text, text)', 'everyone'),
        ('@extschema@.platform_common_lexemes(boolean, text[])', 'application'),
        ('@extschema@.platform_keyword_candidates(tsquery, text[], text, integer, uuid[], boolean, text)', 'application'),
        ('@extschema@.platform_tenant_knowledge_rows(boolean)', 'application'),
        -- Reads a sketch index for the context's tenant, not under row-level
        -- security (src/search/sketch_scan.rs): ids only.
        ('@extschema@.platform_nearest_sketches(oid, real[], integer, uuid[], text)', 'application'),
        -- Keyword statistics (search/keyword_statistics.sql): kept by
        -- definer triggers, checked and rebuilt by operators.
        ('@extschema@.platform_keyword_rows_changed()', 'operator'),
        ('@extschema@.platform_keyword_rows_truncated()', 'operator'),
        ('@extschema@.platform_apply_keyword_counts(boolean, platform_keyword_count[], platform_keyword_count[])', 'operator'),
        ('@extschema@.platform_keyword_statistics_expected(uuid)', 'operator'),
        ('@extschema@.platform_verify_keyword_statistics()', 'operator'),
        ('@extschema@.platform_rebuild_keyword_statistics(uuid)', 'operator'),
        -- Cost accounting (costs/): the API, whose readers are definers over
        -- the rollups, and the definer functions of its triggers, which need
        -- no grant at all (a trigger fires whoever writes).
        ('@extschema@.record_cost_event(text, numeric, text, text, integer, uuid, text, timestamptz, jsonb, uuid)', 'everyone'),
        ('@extschema@.compute_cost_summary(timestamptz, timestamptz)', 'everyone'),
        ('@extschema@.cost_summary(timestamptz, timestamptz, text, text, text)', 'application'),
        ('@extschema@.budget_status(uuid)', 'application'),
        ('@extschema@.budget_alert(uuid)', 'operator'),
        ('@extschema@.reserve_spend(numeric, uuid)', 'application'),
        ('@extschema@.settle_spend(uuid, text, numeric, text, text, integer, uuid, text, jsonb)', 'application'),
        ('@extschema@.release_spend(uuid)', 'application'),
        ('@extschema@.platform_locked_reservation(uuid, uuid, text)', 'operator'),
        ('@extschema@.platform_requested_widget_budget_settings(uuid, uuid, jsonb, text)', 'operator'),
        ('@extschema@.platform_cost_events_changed()', 'operator'),
        ('@extschema@.platform_tenant_cost_settings_changed()', 'operator'),
        ('@extschema@.platform_fire_budget_alerts(uuid, uuid, text, timestamptz, numeric, jsonb)', 'operator'),
        ('@extschema@.platform_budget_spend(uuid, uuid, text, timestamptz, text)', 'operator'),
        ('@extschema@.platform_check_short_budgets(uuid, uuid, jsonb, date[], numeric[])', 'operator'),
        ('@extschema@.platform_daily_spend(integer[], numeric[])', 'operator'),
        ('@extschema@.platform_add_daily_spend(numeric[], numeric[])', 'operator'),
        ('@extschema@.platform_apply_cost_deltas(platform_cost_delta[], integer)', 'operator'),
        ('@extschema@.platform_cost_rollups_expected(uuid)', 'operator'),
        ('@extschema@.platform_cost_budget_periods_expected(uuid)', 'operator'),
        ('@extschema@.platform_cost_widget_budget_periods_expected(uuid)', 'operator'),
        ('@extschema@.platform_apply_widget_spend(uuid, uuid, timestamptz, integer[], numeric[], bigint, jsonb)', 'operator'),
        ('@extschema@.platform_fire_due_budget_alerts(uuid, uuid, jsonb)', 'operator'),
        ('@extschema@.platform_widget_cost_settings_changed()', 'operator'),
        ('@extschema@.platform_verify_cost_rollups()', 'operator'),
        ('@extschema@.platform_rebuild_cost_rollups(uuid)', 'operator'),
        -- Provisioning (tenancy/provisioning.sql).
        ('@extschema@.create_tenant(text, text, jsonb, text)', 'provisioning'),
        ('@extschema@.begin_new_tenant(uuid)', 'provisioning'),
        ('@extschema@.platform_may_provision()', 'everyone'),
        ('@extschema@.seed_demo_tenant(text, text)', 'operator'),
        -- Operations (operations/): the audit reads the catalogs, the slow
        -- queries show every session's statements.
        ('@extschema@.platform_audit()', 'operator'),
        ('@extschema@.platform_slow_queries(integer)', 'operator'),
        -- This file.
        ('@extschema@.platform_function_access()', 'operator'),
        ('@extschema@.platform_app_roles()', 'operator'),
        ('@extschema@.platform_app_privileges_check(regrole)', 'operator'),
        ('@extschema@.platform_app_privileges(regrole, boolean, boolean, text)', 'operator'),
        ('@extschema@.platform_execute_app_privileges(regrole, boolean, boolean, text)', 'operator'),
        ('@extschema@.grant_app_access(regrole, boolean, boolean)', 'operator'),
        ('@extschema@.grant_trusted_context(regrole)', 'operator'),
        ('@extschema@.revoke_app_access(regrole)', 'operator');
END
$$;

-- Refuses a role for which row-level security would mean nothing.
CREATE OR REPLACE FUNCTION platform_app_privileges_check(role regrole) RETURNS void
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
-- schema usage, DML (never TRUNCATE, which skips row security) on the 14
-- tenant-scoped tables, and EXECUTE on every function of the list for
-- everyone and for applications; with provisioning, on the provisioning
-- functions too. verification_tokens (Auth.js's e-mail sign-in tokens) has
-- no tenant: a role granted it may read and delete every pending token, so
-- a role that runs what tenants send it can be given app access without it
-- (and the Auth.js adapter a role of its own with it: docs/security.md).
CREATE OR REPLACE FUNCTION platform_app_privileges(role regrole, provisioning boolean,
                                                   verification_tokens boolean, verb text)
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
    SELECT format('%s SELECT, INSERT, UPDATE, DELETE ON TABLE %s %s %s', verb, t.table_name, d.word, role)
    FROM platform_tenant_tables() t, direction d
    UNION ALL
    -- Granting without verification_tokens takes them back.
    SELECT CASE WHEN verb = 'GRANT' AND verification_tokens
                THEN format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %s',
                            '@extschema@.verification_tokens'::regclass, role)
                ELSE format('REVOKE ALL ON TABLE %s FROM %s', '@extschema@.verification_tokens'::regclass, role)
           END
    UNION ALL
    SELECT format('%s EXECUTE ON FUNCTION %s %s %s', verb, f.function, d.word, role)
    FROM platform_function_access() f, direction d
    WHERE f.audience IN ('everyone', 'application')
       OR (f.audience = 'provisioning' AND provisioning)
       -- Trust is given only by grant_trusted_context(), and taken back
       -- with everything else.
       OR (f.audience = 'trusted' AND verb = 'REVOKE')
$$;

-- Runs the statements above; grant_app_access, revoke_app_access and the end
-- of this file come through here.
CREATE OR REPLACE FUNCTION platform_execute_app_privileges(role regrole, provisioning boolean,
                                                           verification_tokens boolean, verb text)
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
    -- Two GRANTs on the same object in concurrent transactions fail with
    -- "tuple concurrently updated"; take turns until commit instead.
    PERFORM pg_advisory_xact_lock(hashtext('platform.app_access'));
    FOR statement IN SELECT platform_app_privileges(role, provisioning, verification_tokens, verb) LOOP
        EXECUTE statement;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION grant_app_access(role regrole, provisioning boolean DEFAULT false,
                                            verification_tokens boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF role IS NOT NULL THEN
        PERFORM platform_app_privileges_check(role);
    END IF;
    PERFORM platform_execute_app_privileges(role, coalesce(provisioning, false),
                                            coalesce(verification_tokens, true), 'GRANT');
END
$$;
COMMENT ON FUNCTION grant_app_access(regrole, boolean, boolean) IS
    'Gives a NOSUPERUSER NOBYPASSRLS role what an application needs; refuses roles that bypass row-level security.';

CREATE OR REPLACE FUNCTION revoke_app_access(role regrole) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT platform_execute_app_privileges(role, true, false, 'REVOKE')
$$;
COMMENT ON FUNCTION revoke_app_access(regrole) IS
    'Takes back what grant_app_access() gave.';

-- The marker of trust in signed mode: set_tenant() accepts a session whose
-- login role may EXECUTE it (or a superuser). Calling it tells a role only
-- that it is trusted.
CREATE OR REPLACE FUNCTION platform_trusted_context() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT true
$$;
COMMENT ON FUNCTION platform_trusted_context() IS
    'Executable by the roles that may call set_tenant() in signed mode (grant_trusted_context).';

-- Lets an application role name any tenant with set_tenant() in signed mode:
-- for a job that runs no tenant input (billing, retention), never for a role
-- that serves requests. revoke_app_access() takes it back.
CREATE OR REPLACE FUNCTION grant_trusted_context(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'a role is required, got NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example: SELECT grant_trusted_context(''billing_job'');';
    END IF;
    PERFORM platform_app_privileges_check(role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s',
                   '@extschema@.platform_trusted_context()'::regprocedure, role);
END
$$;
COMMENT ON FUNCTION grant_trusted_context(regrole) IS
    'Lets a role call set_tenant() in signed mode (jobs that run no tenant input); revoke_app_access() takes it back.';

-- The roles grant_app_access() was given, read from the grants it made: a
-- role holding EXECUTE on a function for applications (or provisioning),
-- and whether it holds verification_tokens.
CREATE OR REPLACE FUNCTION platform_app_roles(OUT role regrole, OUT provisioning boolean,
                                              OUT verification_tokens boolean)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT a.grantee::regrole, bool_or(f.audience = 'provisioning'),
           EXISTS (SELECT FROM pg_class c, aclexplode(c.relacl) t
                   WHERE c.oid = '@extschema@.verification_tokens'::regclass
                     AND t.grantee = a.grantee AND t.privilege_type = 'INSERT')
    FROM platform_function_access() f
    JOIN pg_proc p ON p.oid = f.function
    CROSS JOIN LATERAL aclexplode(p.proacl) a
    WHERE f.audience IN ('application', 'provisioning')
      AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner)
    GROUP BY a.grantee
    ORDER BY 1
$$;
COMMENT ON FUNCTION platform_app_roles() IS
    'The roles given app access (grant_app_access), with or without provisioning and verification tokens.';

-- What is not for everyone is revoked from PUBLIC.
DO $privileges$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT a.function FROM platform_function_access() a WHERE a.audience <> 'everyone' LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$privileges$;
-- The monitoring views show every session's queries: operators only.
REVOKE ALL ON platform_active_queries, platform_index_usage FROM PUBLIC;
-- The cost rollups hold sums across tenants and are reached only through
-- SECURITY DEFINER functions: no privileges for anyone but the owner.
REVOKE ALL ON cost_rollups_hourly, cost_budget_periods, cost_widget_budget_periods FROM PUBLIC;
-- Spend reservations: reserve_spend, settle_spend and release_spend only.
REVOKE ALL ON cost_reservations FROM PUBLIC;
-- Keyword statistics: kept by triggers, read by the keyword search, both
-- SECURITY DEFINER (search/keyword_statistics.sql).
REVOKE ALL ON knowledge_keyword_totals, knowledge_lexeme_counts FROM PUBLIC;
-- Password hashes: read and written only by the definer functions of
-- tenancy/credentials.sql.
REVOKE ALL ON user_credentials FROM PUBLIC;

-- Roles given app access before an upgrade get what this release adds (a
-- fresh install has none yet).
SELECT platform_execute_app_privileges(r.role, r.provisioning, r.verification_tokens, 'GRANT')
FROM platform_app_roles() r;
