BEGIN;
SELECT set_config('app.current_tenant_id', :tenant, true);
SELECT proto.current_tenant();
COMMIT;
