-- Passwords checked inside the database (src/tenancy/passwords.rs): no
-- application role can read a password hash, yet the design document's seed
-- and its Drizzle client, which write users.password_hash and read whole
-- users rows, keep working.
--
-- * A hash written into users.password_hash (the document's SHA-256 hex, an
--   Argon2id PHC string, a bcrypt hash) moves to user_credentials, which only
--   the extension's owner reads, and the column keeps the marker
--   'platform:stored'. Writing the marker back changes nothing; NULL removes
--   the password; anything else, a password in clear most likely, is 22023.
-- * set_password() stores a new Argon2id hash; verify_password() returns the
--   users whose password matches, ids only, and replaces a legacy or weaker
--   hash with Argon2id at the current cost on success.
-- * Every check costs the same Argon2id work whether the address is unknown,
--   the password wrong or right, so timing does not tell them apart.

-- Whether this session may write a password for `tenant`: its own context's
-- tenant, or any tenant for a superuser session (seeds and restores that set
-- tenant_id themselves). Row security would refuse the row anyway, but only
-- after the BEFORE trigger has written the credential.
CREATE OR REPLACE FUNCTION platform_may_write_password_for(tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT tenant = get_current_tenant_id()
        OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false)
$$;

CREATE OR REPLACE FUNCTION platform_store_password() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    scheme text;
BEGIN
    IF NEW.password_hash IS NULL THEN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM user_credentials c WHERE c.tenant_id = OLD.tenant_id AND c.user_id = OLD.id;
        END IF;
        RETURN NEW;
    END IF;
    scheme := platform_password_scheme(NEW.password_hash);
    IF scheme IS NULL THEN
        RETURN NEW;  -- the marker: a row written back as it was read
    END IF;
    IF scheme = 'unrecognized' THEN
        RAISE EXCEPTION 'users.password_hash takes a password hash, and this is not one'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set a password with SELECT set_password(<user id>, <password>). Hashes '
                         'accepted here: Argon2id (PHC string), bcrypt, and the design document''s '
                         'SHA-256 hex.';
    END IF;
    IF NOT platform_may_write_password_for(NEW.tenant_id) THEN
        RAISE EXCEPTION 'new row violates row-level security policy for table "users"'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Write users of the tenant set with set_tenant() in this transaction.';
    END IF;
    -- An INSERT that finds its user already there (ON CONFLICT) does not
    -- change that user's password: it would, even when the conflict skips
    -- the row. Change a password with UPDATE or set_password().
    IF TG_OP = 'UPDATE'
       OR NOT EXISTS (SELECT FROM users u WHERE u.tenant_id = NEW.tenant_id AND u.id = NEW.id) THEN
        INSERT INTO user_credentials AS c (tenant_id, user_id, scheme, hash)
        VALUES (NEW.tenant_id, NEW.id, scheme, NEW.password_hash)
        ON CONFLICT ON CONSTRAINT user_credentials_pkey
        DO UPDATE SET scheme = excluded.scheme, hash = excluded.hash, updated_at = now();
    END IF;
    NEW.password_hash := 'platform:stored';
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER users_store_password
    BEFORE INSERT OR UPDATE OF password_hash ON users
    FOR EACH ROW EXECUTE FUNCTION platform_store_password();

CREATE OR REPLACE FUNCTION platform_forget_password() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    DELETE FROM user_credentials c WHERE c.tenant_id = OLD.tenant_id AND c.user_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER users_forget_password
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION platform_forget_password();

-- A new password for one of the current tenant's users.
CREATE OR REPLACE FUNCTION set_password(user_id uuid, password text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := platform_tenant_required_by('set_password');
BEGIN
    IF set_password.user_id IS NULL OR set_password.password IS NULL THEN
        RAISE EXCEPTION 'set_password() needs a user id and a password, got NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'To remove a user''s password, UPDATE users SET password_hash = NULL.';
    END IF;
    IF NOT EXISTS (SELECT FROM users u WHERE u.tenant_id = tenant AND u.id = set_password.user_id) THEN
        RAISE EXCEPTION 'set_password(): the current tenant has no user %', set_password.user_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the id of one of this tenant''s users, for instance from '
                         'SELECT id FROM users WHERE email = ...';
    END IF;
    INSERT INTO user_credentials AS c (tenant_id, user_id, scheme, hash)
    VALUES (tenant, set_password.user_id, 'argon2id', platform_password_hash(set_password.password))
    ON CONFLICT ON CONSTRAINT user_credentials_pkey
    DO UPDATE SET scheme = excluded.scheme, hash = excluded.hash, updated_at = now();
    UPDATE users u SET password_hash = 'platform:stored'
    WHERE u.tenant_id = tenant AND u.id = set_password.user_id
      AND u.password_hash IS DISTINCT FROM 'platform:stored';
END
$$;
COMMENT ON FUNCTION set_password(uuid, text) IS
    'Stores an Argon2id hash of a new password for one of the current tenant''s users.';

-- The users with this address whose password matches, one row per tenant
-- (only `tenant`'s when given): ids, never a hash. Call at login, before
-- set_tenant(). One Argon2id check per tenant that has the address, and one
-- when none has it; a legacy or weaker hash that matches is replaced (not in
-- a read-only transaction, where it is kept until a later login).
CREATE OR REPLACE FUNCTION verify_password(email text, password text, tenant uuid DEFAULT NULL)
RETURNS TABLE (user_id uuid, tenant_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    candidate record;
    checked integer := 0;
    writable constant boolean := NOT current_setting('transaction_read_only')::boolean;
BEGIN
    PERFORM platform_require_argument('verify_password', 'an e-mail address', verify_password.email);
    PERFORM platform_require_argument('verify_password', 'a password', verify_password.password);
    FOR candidate IN
        SELECT u.id, u.tenant_id, c.scheme, c.hash
        FROM users u
        LEFT JOIN user_credentials c ON c.tenant_id = u.tenant_id AND c.user_id = u.id
        WHERE u.email = verify_password.email
          AND (verify_password.tenant IS NULL OR u.tenant_id = verify_password.tenant)
        ORDER BY u.tenant_id
    LOOP
        checked := checked + 1;
        IF platform_password_matches(candidate.scheme, candidate.hash, verify_password.password) THEN
            IF writable AND platform_password_needs_rehash(candidate.scheme, candidate.hash) THEN
                UPDATE user_credentials c
                SET scheme = 'argon2id', hash = platform_password_hash(verify_password.password),
                    updated_at = now()
                WHERE c.tenant_id = candidate.tenant_id AND c.user_id = candidate.id;
            END IF;
            user_id := candidate.id;
            tenant_id := candidate.tenant_id;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF checked = 0 THEN
        -- An unknown address costs what a wrong password costs.
        PERFORM platform_password_matches(NULL, NULL, verify_password.password);
    END IF;
END
$$;
COMMENT ON FUNCTION verify_password(text, text, uuid) IS
    'The users (one per tenant) whose address and password match: call at login, before set_tenant().';
