-- Lookups before the tenant is known: a widget's API key, an Auth.js session
-- token, an OAuth account and an e-mail address each lead to a tenant (and a
-- user), which the application then passes to set_tenant().
--
-- Row-level security hides every row while there is no context, so these are
-- SECURITY DEFINER (owned by the extension's owner, a superuser: CREATE
-- EXTENSION needs one) with a pinned search_path, return only the ids the
-- application needs, and are executable only by roles given app access.
--
-- Secrets are found through their digest (see src/tenancy/secrets.rs and the
-- indexes at the end of schema/indexes.sql): the index probe
-- compares digests, which says nothing about any key, and the last comparison
-- is constant-time in Rust. A wrong key takes the same path as a right one and
-- returns nothing; only a NULL argument is an error.

-- API keys are stored as 'sha256:<hex>' in the document's api_key column.
CREATE OR REPLACE FUNCTION platform_api_key_digest(api_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT 'sha256:' || encode(@extschema@.platform_secret_digest(api_key), 'hex')
$$;

-- Whatever an INSERT or UPDATE writes into tenants.api_key (the document's
-- seed, Drizzle, create_tenant(), rotate_api_key()), only its digest is kept.
-- A value that already is a digest is kept as it is: a dump being restored,
-- or an UPDATE that writes the row back unchanged.
CREATE OR REPLACE FUNCTION platform_store_api_key_digest() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF NEW.api_key ~ '^sha256:[0-9a-f]{64}$' THEN
        RETURN NEW;
    END IF;
    -- An unsalted digest of a short key could be brute-forced from a leak.
    IF length(NEW.api_key) < 32 THEN
        RAISE EXCEPTION 'an API key needs at least 32 characters, this one has %', length(NEW.api_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Generate one: rotate_api_key() under the tenant''s context, or platform_new_api_key().';
    END IF;
    NEW.api_key := platform_api_key_digest(NEW.api_key);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER platform_api_key_digest
    BEFORE INSERT OR UPDATE OF api_key ON tenants
    FOR EACH ROW EXECUTE FUNCTION platform_store_api_key_digest();

-- A lookup argument: NULL is a caller's bug (22004); anything else, however
-- wrong, is only a key that matches nothing.
CREATE OR REPLACE FUNCTION platform_require_argument(function_name text, argument_name text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '%() needs %, got NULL', function_name, argument_name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the value the client presented; a wrong one simply matches nothing.';
    END IF;
END
$$;

-- The tenant whose widget presents this API key, or NULL.
CREATE OR REPLACE FUNCTION tenant_for_api_key(api_key text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    presented text;
    found_id uuid;
    stored text;
BEGIN
    PERFORM platform_require_argument('tenant_for_api_key', 'an API key', api_key);
    presented := platform_api_key_digest(api_key);
    SELECT t.id, t.api_key INTO found_id, stored
    FROM tenants t WHERE t.api_key = presented;
    -- Compared even when nothing was found, so both outcomes take one path.
    IF platform_secret_equal(convert_to(coalesce(stored, presented || '!'), 'UTF8'),
                             convert_to(presented, 'UTF8')) THEN
        RETURN found_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_for_api_key(text) IS
    'The tenant of a widget API key, or NULL: call before set_tenant(). Keys are stored as SHA-256 digests.';

-- The user and tenant of an unexpired Auth.js session, or no row.
CREATE OR REPLACE FUNCTION user_for_session_token(session_token text)
RETURNS TABLE (user_id uuid, tenant_id uuid, expires timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    presented bytea;
BEGIN
    PERFORM platform_require_argument('user_for_session_token', 'a session token', session_token);
    presented := platform_secret_digest(session_token);
    -- Tokens are unique per tenant only: a token found in two tenants (which
    -- only someone who knew it could have copied into a second one) is
    -- ambiguous and finds nothing, so an application that takes the first
    -- row can never sign a user into the wrong tenant.
    RETURN QUERY
    WITH found AS (
        SELECT s.user_id, s.tenant_id, s.expires
        FROM auth_sessions s
        WHERE platform_secret_digest(s.session_token) = presented
          AND platform_secret_equal(platform_secret_digest(s.session_token), presented)
          AND s.expires > now()
    )
    SELECT f.user_id, f.tenant_id, f.expires FROM found f
    WHERE (SELECT count(*) FROM found) = 1;
END
$$;
COMMENT ON FUNCTION user_for_session_token(text) IS
    'The user and tenant of an unexpired Auth.js session token, or no row: call before set_tenant().';

-- E-mail addresses and OAuth accounts are unique per tenant (one person can
-- belong to several tenants, and a sign-up never learns that an address is
-- taken elsewhere), so these return one row per tenant that has them.

-- The users with this exact e-mail address, one per tenant: what an e-mail
-- sign-in (Auth.js getUserByEmail) needs to pick a tenant. Never a password
-- hash: a password login calls verify_password() (credentials.sql).
-- Normalise case in the application before storing and before calling.
CREATE OR REPLACE FUNCTION users_for_email(email text)
RETURNS TABLE (user_id uuid, tenant_id uuid, role text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_require_argument('users_for_email', 'an e-mail address', email);
    RETURN QUERY
    SELECT u.id, u.tenant_id, u.role
    FROM users u
    WHERE u.email = users_for_email.email
    ORDER BY u.tenant_id;
END
$$;
COMMENT ON FUNCTION users_for_email(text) IS
    'The users with this e-mail address, one row per tenant: call at login, before set_tenant().';

-- The users an OAuth sign-in (Auth.js getUserByAccount) belongs to.
CREATE OR REPLACE FUNCTION users_for_oauth_account(provider text, provider_account_id text)
RETURNS TABLE (user_id uuid, tenant_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_require_argument('users_for_oauth_account', 'a provider', provider);
    PERFORM platform_require_argument('users_for_oauth_account', 'a provider account id', provider_account_id);
    RETURN QUERY
    SELECT a.user_id, a.tenant_id
    FROM accounts a
    WHERE a.provider = users_for_oauth_account.provider
      AND a.provider_account_id = users_for_oauth_account.provider_account_id
    ORDER BY a.tenant_id;
END
$$;
COMMENT ON FUNCTION users_for_oauth_account(text, text) IS
    'The users of an OAuth account, one row per tenant: call at sign-in, before set_tenant().';

-- A new API key for the current tenant, returned once and stored only as a
-- digest; the old key stops working at commit. Runs as the caller, through
-- the policies: a tenant can rotate only its own key.
CREATE OR REPLACE FUNCTION rotate_api_key() RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    new_key text := platform_new_api_key();
BEGIN
    UPDATE tenants SET api_key = new_key WHERE id = platform_tenant_required_by('rotate_api_key');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the current tenant % does not exist', get_current_tenant_id()
            USING ERRCODE = 'no_data_found',
                  HINT = 'set_tenant() to an existing tenant first.';
    END IF;
    RETURN new_key;
END
$$;
COMMENT ON FUNCTION rotate_api_key() IS
    'Replaces the current tenant''s API key and returns the new one; only its digest is stored.';
