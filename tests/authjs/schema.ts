// Drizzle declarations of the four Auth.js tables as the platform extension
// creates them (sql/schema/tables.sql). The extension owns the DDL: never run
// drizzle-kit push or generate against these; they are for queries only.
//
// Two views of the same tables:
//
// - `users`, `accounts`, `authSessions`, `verificationTokens`: every column,
//   for the application's own queries (tenant_id is filled in from the tenant
//   context by its default, require_current_tenant_id()).
// - `authjsTables`: what @auth/drizzle-adapter is given. The adapter returns
//   whole rows of the tables it is handed (`select()` with no column list) and
//   Auth.js expects exactly its own fields, so these declare only the columns
//   Auth.js knows, under Auth.js's property names: `image` is avatar_url,
//   `emailVerified` is email_verified, an account's OAuth fields keep Auth.js's
//   snake_case names (the document's camelCase `accessToken` etc. would make
//   the adapter drop them silently on linkAccount). The columns left out
//   (tenant_id, password_hash, role, created_at, updated_at) take their
//   defaults on insert.

import { sql } from "drizzle-orm";
import {
  foreignKey,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";

const tenantId = () =>
  uuid("tenant_id").notNull().default(sql`require_current_tenant_id()`);
const timestamptz = (name: string) =>
  timestamp(name, { withTimezone: true, mode: "date" });

// ---------------------------------------------------------------- full tables

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    email: text("email").notNull(),
    // Nullable: OAuth and e-mail sign-ins have no password.
    passwordHash: text("password_hash"),
    role: text("role", { enum: ["owner", "admin", "member"] })
      .notNull()
      .default("member"),
    name: text("name"),
    avatarUrl: text("avatar_url"),
    // NULL until the address is verified.
    emailVerified: timestamptz("email_verified"),
    createdAt: timestamptz("created_at").notNull().defaultNow(),
    updatedAt: timestamptz("updated_at").notNull().defaultNow(),
  },
  (t) => [
    // Per tenant, not global as in the design document (docs/tenancy.md).
    unique("users_tenant_email_key").on(t.tenantId, t.email),
    unique("user_tenant_idx").on(t.tenantId, t.id),
  ],
);

export const accounts = pgTable(
  "accounts",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    userId: uuid("user_id").notNull(),
    type: text("type").notNull(),
    provider: text("provider").notNull(),
    providerAccountId: text("provider_account_id").notNull(),
    refreshToken: text("refresh_token"),
    accessToken: text("access_token"),
    expiresAt: integer("expires_at"),
    tokenType: text("token_type"),
    scope: text("scope"),
    idToken: text("id_token"),
    sessionState: text("session_state"),
  },
  (t) => [
    foreignKey({
      name: "accounts_user_fkey",
      columns: [t.tenantId, t.userId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete("cascade"),
    unique("accounts_tenant_provider_account_key").on(
      t.tenantId,
      t.provider,
      t.providerAccountId,
    ),
  ],
);

export const authSessions = pgTable(
  "auth_sessions",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: tenantId(),
    sessionToken: text("session_token").notNull(),
    userId: uuid("user_id").notNull(),
    expires: timestamptz("expires").notNull(),
  },
  (t) => [
    unique("auth_sessions_tenant_session_token_key").on(
      t.tenantId,
      t.sessionToken,
    ),
    foreignKey({
      name: "auth_sessions_user_fkey",
      columns: [t.tenantId, t.userId],
      foreignColumns: [users.tenantId, users.id],
    }).onDelete("cascade"),
  ],
);

// Global: no tenant column and no row-level security (e-mail verification
// happens before a user has a tenant).
export const verificationTokens = pgTable(
  "verification_tokens",
  {
    identifier: text("identifier").notNull(),
    token: text("token").notNull().unique("verification_tokens_token_key"),
    expires: timestamptz("expires").notNull(),
  },
  (t) => [
    primaryKey({
      name: "verification_tokens_pkey",
      columns: [t.identifier, t.token],
    }),
  ],
);

// ------------------------------------------- what @auth/drizzle-adapter gets

export const authjsUsers = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name"),
  email: text("email").notNull(),
  emailVerified: timestamptz("email_verified"),
  image: text("avatar_url"),
});

export const authjsAccounts = pgTable("accounts", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: uuid("user_id").notNull(),
  type: text("type").notNull(),
  provider: text("provider").notNull(),
  providerAccountId: text("provider_account_id").notNull(),
  refresh_token: text("refresh_token"),
  access_token: text("access_token"),
  expires_at: integer("expires_at"),
  token_type: text("token_type"),
  scope: text("scope"),
  id_token: text("id_token"),
  session_state: text("session_state"),
});

export const authjsSessions = pgTable("auth_sessions", {
  id: uuid("id").defaultRandom(),
  // The table's primary key is id; the adapter's types want the token marked
  // as the key (it is what Auth.js looks sessions up by). Nothing here creates
  // DDL, so the marking only satisfies the types. Tokens are unique per tenant.
  sessionToken: text("session_token").primaryKey(),
  userId: uuid("user_id").notNull(),
  expires: timestamptz("expires").notNull(),
});

export const authjsTables = {
  usersTable: authjsUsers,
  accountsTable: authjsAccounts,
  sessionsTable: authjsSessions,
  verificationTokensTable: verificationTokens,
};
