-- Privileges, last, once every function exists. Functions are executable by
-- PUBLIC by default; the provisioning and access-management ones must not be.
REVOKE EXECUTE ON FUNCTION
    create_tenant(text, text, jsonb, text),
    seed_demo_tenant(text, text),
    grant_app_access(regrole, boolean),
    revoke_app_access(regrole),
    platform_app_privileges(regrole, boolean, text),
    platform_app_privileges_check(regrole),
    platform_execute_app_privileges(regrole, boolean, text)
FROM PUBLIC;
-- The lookups see every tenant's rows: application roles only.
REVOKE EXECUTE ON FUNCTION
    tenant_for_api_key(text),
    user_for_session_token(text),
    users_for_email(text),
    users_for_oauth_account(text, text)
FROM PUBLIC;
-- Operators only: the audit reads the catalogs, the monitoring views show
-- every session's queries.
REVOKE EXECUTE ON FUNCTION platform_audit(), platform_slow_queries(integer) FROM PUBLIC;
REVOKE ALL ON platform_active_queries, platform_index_usage FROM PUBLIC;
-- Search's definer helpers read every tenant's index (and statistics) and
-- trust the tenant context: application roles only.
REVOKE EXECUTE ON FUNCTION
    platform_common_lexemes(boolean, text[]),
    platform_keyword_candidates(tsquery, integer, uuid[], boolean, text)
FROM PUBLIC;
-- Cost accounting: the definer functions an application calls are granted
-- to application roles; the definer triggers' functions need no grant at all
-- (a trigger fires whoever writes).
REVOKE EXECUTE ON FUNCTION
    cost_summary(timestamptz, timestamptz, text, text, text),
    budget_status(),
    platform_cost_events_changed(),
    platform_tenant_cost_settings_changed()
FROM PUBLIC;
