// Auth.js's official adapter test suite (runBasicTests), imported at run time
// from the vendored copy (vitest.config.ts resolves "authjs-adapter-suite"),
// through the official @auth/drizzle-adapter, every adapter call and every
// helper query in a transaction of the application role under one tenant's
// context.

import { runBasicTests } from "authjs-adapter-suite";

import { suiteDb, tenantAdapter, tenantId } from "./db";

runBasicTests({
  adapter: tenantAdapter(tenantId),
  db: suiteDb(tenantId),
});
