BEGIN;
SELECT set_config('app.current_tenant_id', :tenant, true);
SELECT body FROM proto.messages LIMIT 50;
COMMIT;
