// What the suite cannot show: that the adapter's rows are tenant-scoped, and
// how a request finds its tenant from an Auth.js credential before it can
// call set_tenant (the lookups of docs/tenancy.md).

import { randomUUID } from "node:crypto";

import { afterAll, describe, expect, test } from "vitest";

import { closeAll, noContextAdapter, otherTenantId, raw, tenantAdapter, tenantId } from "./db";

const a = tenantAdapter(tenantId);
const b = tenantAdapter(otherTenantId);
const bare = noContextAdapter();

const newUser = (email: string) => ({ id: randomUUID(), email, emailVerified: null, name: email });
const sqlstate = (code: string) => ({ cause: expect.objectContaining({ code }) });

afterAll(closeAll);

describe("tenant isolation through the adapter", () => {
  test("a tenant's users are invisible and untouchable without its context", async () => {
    const user = await a.createUser(newUser("isolated@example.com"));
    expect(await a.getUser(user.id)).toMatchObject({ email: "isolated@example.com" });

    // No context: reads find nothing, a sign-up has no tenant to go to.
    expect(await bare.getUser(user.id)).toBeNull();
    expect(await bare.getUserByEmail(user.email)).toBeNull();
    await expect(bare.createUser(newUser("nobody@example.com"))).rejects.toMatchObject(sqlstate("42501"));

    // Another tenant: reads find nothing, writes change nothing.
    expect(await b.getUser(user.id)).toBeNull();
    expect(await b.getUserByEmail(user.email)).toBeNull();
    await expect(b.updateUser({ id: user.id, name: "taken over" })).rejects.toThrow("No user found.");
    await b.deleteUser!(user.id);
    expect(await a.getUser(user.id)).toMatchObject({ name: "isolated@example.com" });
  });

  test("an address is unique per tenant, not globally", async () => {
    const email = "two-tenants@example.com";
    const inA = await a.createUser(newUser(email));
    const inB = await b.createUser(newUser(email));
    expect(inB.id).not.toBe(inA.id);
    expect((await a.getUserByEmail(email))?.id).toBe(inA.id);
    expect((await b.getUserByEmail(email))?.id).toBe(inB.id);
    await expect(a.createUser(newUser(email))).rejects.toMatchObject(sqlstate("23505"));

    // Before the tenant is known (e-mail sign-in): one row per tenant.
    const rows = await raw`SELECT user_id, tenant_id FROM users_for_email(${email})`;
    expect(rows.map((r) => r.tenant_id).sort()).toEqual([tenantId, otherTenantId].sort());
  });

  test("a request finds its tenant from the session cookie or the OAuth account", async () => {
    const user = await a.createUser(newUser("cookie@example.com"));
    const sessionToken = randomUUID();
    await a.createSession({ sessionToken, userId: user.id, expires: new Date(Date.now() + 3_600_000) });
    const providerAccountId = randomUUID();
    await a.linkAccount({ userId: user.id, type: "oauth", provider: "google", providerAccountId });

    // Auth.js calls getSessionAndUser with nothing but the cookie: without a
    // tenant context row-level security hides the session.
    expect(await bare.getSessionAndUser(sessionToken)).toBeNull();
    expect(await bare.getUserByAccount({ provider: "google", providerAccountId })).toBeNull();

    // So the application looks the tenant up first, then sets it.
    const [session] = await raw`SELECT user_id, tenant_id FROM user_for_session_token(${sessionToken})`;
    expect(session).toMatchObject({ user_id: user.id, tenant_id: tenantId });
    expect((await tenantAdapter(session.tenant_id).getSessionAndUser(sessionToken))?.user.id).toBe(user.id);

    const accounts = await raw`
      SELECT user_id, tenant_id FROM users_for_oauth_account('google', ${providerAccountId})`;
    expect([...accounts]).toEqual([{ user_id: user.id, tenant_id: tenantId }]);
    expect((await tenantAdapter(accounts[0].tenant_id).getUserByAccount({ provider: "google", providerAccountId }))?.id).toBe(user.id);
  });
});
