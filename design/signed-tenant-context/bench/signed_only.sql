BEGIN;
SELECT proto.set_tenant_token(:token);
COMMIT;
