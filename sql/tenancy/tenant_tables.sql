-- The 14 tenant-scoped tables and the column that names each row's tenant.
-- One list, read by the RLS setup, grant_app_access() and the tests, so a
-- table cannot be protected in one place and forgotten in another.
-- (verification_tokens, the 15th table, is global by design.)
CREATE OR REPLACE FUNCTION platform_tenant_tables(OUT table_name regclass, OUT tenant_column name)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    VALUES
        ('@extschema@.tenants'::regclass, 'id'::name),
        ('@extschema@.users', 'tenant_id'),
        ('@extschema@.accounts', 'tenant_id'),
        ('@extschema@.auth_sessions', 'tenant_id'),
        ('@extschema@.widgets', 'tenant_id'),
        ('@extschema@.meetings', 'tenant_id'),
        ('@extschema@.sessions', 'tenant_id'),
        ('@extschema@.messages', 'tenant_id'),
        ('@extschema@.knowledge_documents', 'tenant_id'),
        ('@extschema@.knowledge_chunks', 'tenant_id'),
        ('@extschema@.cost_events', 'tenant_id'),
        ('@extschema@.cost_summaries', 'tenant_id'),
        ('@extschema@.budget_alerts', 'tenant_id'),
        ('@extschema@.ai_personalities', 'tenant_id')
$$;
COMMENT ON FUNCTION platform_tenant_tables() IS
    'The tenant-scoped tables of the platform extension and their tenant column.';
