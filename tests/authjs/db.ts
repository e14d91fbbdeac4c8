// Connections of the application role, the tenant-scoped adapter, and the
// suite's `db` helpers. scripts/authjs.sh creates the database, the role and
// the tenants and passes them in the environment.

import type { Adapter } from "@auth/core/adapters";
import { DrizzleAdapter } from "@auth/drizzle-adapter";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";

import { authjsTables } from "./schema";

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the suite through scripts/authjs.sh`);
  }
  return value;
}

/** The application role's connection string (LOGIN NOSUPERUSER NOBYPASSRLS, grant_app_access). */
export const appUrl = env("AUTHJS_APP_URL");
/** The tenant the suite acts for, from create_tenant('Auth.js suite'). */
export const tenantId = env("AUTHJS_TENANT_ID");
/** A second tenant, for the isolation tests. */
export const otherTenantId = env("AUTHJS_OTHER_TENANT_ID");

// Drizzle takes over postgres.js's date parsing, so the helpers below, which
// read the tables directly, have a client of their own.
const adapterClient = postgres(appUrl, { max: 2 });
export const db = drizzle(adapterClient);
export const raw = postgres(appUrl, { max: 2 });

/** Closes both pools (each test file has its own). */
export async function closeAll(): Promise<void> {
  await Promise.all([adapterClient.end(), raw.end()]);
}

type Db = typeof db;
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Runs fn in a transaction of the application role that first calls set_tenant(tenant). */
export function inTenant<T>(tenant: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT set_tenant(${tenant}::uuid)`);
    return fn(tx);
  });
}

/**
 * The official Drizzle adapter, each of whose calls runs in its own
 * transaction under the tenant's context: what an application does per
 * request once it knows the tenant. The methods are exactly the adapter's.
 */
export function tenantAdapter(tenant: string): Adapter {
  const methods = Object.keys(DrizzleAdapter(db, authjsTables)) as (keyof Adapter)[];
  return Object.fromEntries(
    methods.map((method) => [
      method,
      (...args: unknown[]) =>
        inTenant(tenant, async (tx) => {
          const adapter = DrizzleAdapter(tx, authjsTables) as Record<string, (...a: unknown[]) => unknown>;
          return adapter[method](...args);
        }),
    ]),
  ) as Adapter;
}

/** The adapter on a bare connection: no transaction, so no tenant context. */
export const noContextAdapter = (): Adapter => DrizzleAdapter(db, authjsTables);

type RawTx = postgres.TransactionSql<Record<string, never>>;

/** A raw transaction of the application role under the tenant's context. */
export function rawInTenant<T>(tenant: string, fn: (tx: RawTx) => Promise<T>): Promise<T> {
  return raw.begin(async (tx) => {
    await tx`SELECT set_tenant(${tenant}::uuid)`;
    return fn(tx as unknown as RawTx);
  }) as Promise<T>;
}

const first = <T>(rows: readonly T[]): T | null => rows[0] ?? null;

/**
 * The suite's `db` helpers: plain SQL on the extension's own column names,
 * independent of the Drizzle mapping, each in a transaction under the tenant.
 */
export function suiteDb(tenant: string) {
  return {
    async connect() {
      // Refuse a setup that would prove nothing: a role that bypasses
      // row-level security, or tables without FORCE row-level security.
      const [role] = await raw`
        SELECT current_user AS name, rolsuper, rolbypassrls
        FROM pg_roles WHERE rolname = current_user`;
      if (role.rolsuper || role.rolbypassrls) {
        throw new Error(`${role.name} bypasses row-level security: use a grant_app_access role`);
      }
      const unforced = await raw`
        SELECT relname FROM pg_class
        WHERE oid IN ('users'::regclass, 'accounts'::regclass, 'auth_sessions'::regclass)
          AND NOT (relrowsecurity AND relforcerowsecurity)`;
      if (unforced.length > 0) {
        throw new Error(`no FORCE row-level security on ${unforced.map((r) => r.relname).join(", ")}`);
      }
      const [ctx] = await rawInTenant(tenant, (tx) => tx`SELECT get_current_tenant_id() AS id`);
      if (ctx.id !== tenant) throw new Error(`set_tenant did not take: ${ctx.id}`);
    },
    disconnect: closeAll,
    user: (id: string) =>
      rawInTenant(tenant, async (tx) =>
        first(await tx`
          SELECT id, name, email, email_verified AS "emailVerified", avatar_url AS image
          FROM users WHERE id = ${id}`),
      ),
    account: ({ provider, providerAccountId }: { provider: string; providerAccountId: string }) =>
      rawInTenant(tenant, async (tx) =>
        first(await tx`
          SELECT id, user_id AS "userId", type, provider,
                 provider_account_id AS "providerAccountId", refresh_token,
                 access_token, expires_at, token_type, scope, id_token, session_state
          FROM accounts
          WHERE provider = ${provider} AND provider_account_id = ${providerAccountId}`),
      ),
    session: (sessionToken: string) =>
      rawInTenant(tenant, async (tx) =>
        first(await tx`
          SELECT id, session_token AS "sessionToken", user_id AS "userId", expires
          FROM auth_sessions WHERE session_token = ${sessionToken}`),
      ),
    verificationToken: ({ identifier, token }: { identifier: string; token: string }) =>
      rawInTenant(tenant, async (tx) =>
        first(await tx`
          SELECT identifier, token, expires FROM verification_tokens
          WHERE identifier = ${identifier} AND token = ${token}`),
      ),
  };
}
