BEGIN;
SELECT set_config('x.unused', :tenant, true);
SELECT body FROM proto.messages WHERE tenant_id = :tenant::uuid LIMIT 50;
COMMIT;
