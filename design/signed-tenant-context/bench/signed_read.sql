BEGIN;
SELECT proto.set_tenant_token(:token);
SELECT proto.current_tenant();
COMMIT;
