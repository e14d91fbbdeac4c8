BEGIN;
SELECT proto.set_tenant_token(:token);
SELECT body FROM proto.messages LIMIT 50;
COMMIT;
