-- FORCE row-level security on the 14 tenant-scoped tables, with exactly one
-- policy per command (4 x 14 = 56). Every policy is the same indexed equality
-- against the tenant context; the sub-SELECT makes the planner evaluate
-- get_current_tenant_id() once per query (an InitPlan) rather than per row.
--
-- FORCE makes the table owner obey the policies too. It does not bind
-- superusers or BYPASSRLS roles (nothing does), which is why applications
-- connect as a role prepared by grant_app_access().
--
-- INSERT and UPDATE check the new row: no session can write a row into, or
-- move a row to, a tenant other than its context. For tenants the tenant
-- column is id, so a tenant row can only be created under its own id (the
-- document's INSERT ... WITH CHECK (true) let any session create any tenant),
-- and creating or deleting one also takes provisioning rights: the context
-- alone is whatever the session sets it to.
DO $rls$
DECLARE
    t record;
    tenant_expr constant text := '(SELECT get_current_tenant_id())';
    provisioning_expr constant text := '(SELECT platform_may_provision())';
    insert_check text;
    delete_check text;
BEGIN
    FOR t IN SELECT table_name, tenant_column, c.relname
             FROM platform_tenant_tables() JOIN pg_class c ON c.oid = table_name
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t.table_name);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t.table_name);
        EXECUTE format('CREATE POLICY %I ON %s FOR SELECT USING (%I = %s)',
                       t.relname || '_select', t.table_name, t.tenant_column, tenant_expr);
        insert_check := format('%I = %s', t.tenant_column, tenant_expr);
        delete_check := insert_check;
        IF t.table_name = 'tenants'::regclass THEN
            insert_check := insert_check || ' AND ' || provisioning_expr;
            delete_check := insert_check;
        END IF;
        EXECUTE format('CREATE POLICY %I ON %s FOR INSERT WITH CHECK (%s)',
                       t.relname || '_insert', t.table_name, insert_check);
        EXECUTE format('CREATE POLICY %I ON %s FOR UPDATE USING (%I = %s) WITH CHECK (%I = %s)',
                       t.relname || '_update', t.table_name,
                       t.tenant_column, tenant_expr, t.tenant_column, tenant_expr);
        EXECUTE format('CREATE POLICY %I ON %s FOR DELETE USING (%s)',
                       t.relname || '_delete', t.table_name, delete_check);
    END LOOP;
END
$rls$;
