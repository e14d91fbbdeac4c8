-- Provisioning without ever turning FORCE off: SECURITY DEFINER functions with
-- a pinned search_path (pg_temp last, so no temporary object can stand in for
-- ours) whose EXECUTE is revoked from PUBLIC (see privileges.sql) and granted by
-- grant_app_access(role, provisioning => true) where a role needs it.
--
-- Each function acts as the tenant it creates: it sets the context for the
-- new id (platform_enter_tenant, which works in both modes of
-- platform.tenant_context), so its INSERTs pass the same policies an
-- application's would (that holds even where the extension's owner is not a
-- superuser and FORCE binds it). The SET clause restores the caller's context
-- when the function returns.

-- 244 random bits from the server's strong random source (gen_random_uuid).
CREATE OR REPLACE FUNCTION platform_new_api_key() RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT 'pk_live_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
$$;

CREATE OR REPLACE FUNCTION create_tenant(
    name text,
    plan text DEFAULT 'starter',
    settings jsonb DEFAULT '{}'::jsonb,
    api_key text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET app.current_tenant_id = ''
AS $$
DECLARE
    new_id uuid := gen_random_uuid();
BEGIN
    IF create_tenant.name IS NULL OR btrim(create_tenant.name) = '' THEN
        RAISE EXCEPTION 'create_tenant() needs a non-empty tenant name'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: SELECT create_tenant(''Acme Corporation'');';
    END IF;
    IF create_tenant.plan IS NULL
       OR create_tenant.plan NOT IN ('starter', 'growth', 'business', 'enterprise') THEN
        RAISE EXCEPTION 'unknown plan %', coalesce(quote_literal(create_tenant.plan), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The plans are starter, growth, business and enterprise.';
    END IF;
    IF create_tenant.settings IS NOT NULL AND jsonb_typeof(create_tenant.settings) <> 'object' THEN
        RAISE EXCEPTION 'tenant settings must be a JSON object, got a JSON %',
                jsonb_typeof(create_tenant.settings)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: ''{"maxMonthlySpend": 1000}''::jsonb';
    END IF;
    IF create_tenant.api_key IS NOT NULL AND btrim(create_tenant.api_key) = '' THEN
        RAISE EXCEPTION 'an API key must not be blank'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave api_key NULL to have a random key generated.';
    END IF;

    PERFORM platform_enter_tenant(new_id, false);
    INSERT INTO tenants (id, name, plan, settings, api_key)
    VALUES (new_id, create_tenant.name, create_tenant.plan, create_tenant.settings,
            coalesce(create_tenant.api_key, platform_new_api_key()));
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION create_tenant(text, text, jsonb, text) IS
    'Creates a tenant under FORCE row-level security and returns its id.';

-- Whether the current role may create and delete tenants: roles granted
-- provisioning => true, the owner (so create_tenant(), which runs as the
-- owner) and superusers. The tenants INSERT and DELETE policies require it,
-- so that a context set by hand to a fresh id is not enough to create a
-- tenant, nor one's own context enough to delete it with all its data. It
-- tells a role only about its own rights.
CREATE OR REPLACE FUNCTION platform_may_provision() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT has_function_privilege('create_tenant(text, text, jsonb, text)'::regprocedure, 'EXECUTE')
$$;
COMMENT ON FUNCTION platform_may_provision() IS
    'Whether the current role may create and delete tenants (grant_app_access(role, provisioning => true)).';

-- Sets the context of the current transaction to a tenant that does not exist
-- yet, so that a provisioning role can run the design document's seed
-- (INSERT INTO tenants ..., then its users, widgets ...) in either mode of
-- platform.tenant_context. The id is checked under that very context, which
-- lets the tenants policy show the row if it exists, so an existing tenant is
-- refused even where the owner is not a superuser. Pinned like
-- set_tenant_token(): the transaction stays with this tenant.
CREATE OR REPLACE FUNCTION begin_new_tenant(id uuid DEFAULT gen_random_uuid()) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF begin_new_tenant.id IS NULL OR begin_new_tenant.id = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'begin_new_tenant() needs a new tenant id, got %',
                coalesce(begin_new_tenant.id::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave the argument out for a random id.';
    END IF;
    PERFORM platform_enter_tenant(begin_new_tenant.id, true);
    IF EXISTS (SELECT FROM tenants t WHERE t.id = begin_new_tenant.id) THEN
        RAISE EXCEPTION 'tenant % already exists', begin_new_tenant.id
            USING ERRCODE = 'unique_violation',
                  HINT = 'begin_new_tenant() is for a tenant that is about to be created; act for an existing one with set_tenant_token().';
    END IF;
    RETURN begin_new_tenant.id;
END
$$;
COMMENT ON FUNCTION begin_new_tenant(uuid) IS
    'Sets the transaction''s context to a tenant about to be created (INSERT INTO tenants next), in either mode.';

-- The document's seed data (Acme Corporation, its owner and an Auth.js
-- session, a widget, a knowledge document, an AI personality) for any tenant
-- name and domain, loaded through the policies like everything else.
CREATE OR REPLACE FUNCTION seed_demo_tenant(
    tenant_name text DEFAULT 'Acme Corporation',
    domain text DEFAULT 'acme.com'
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET app.current_tenant_id = ''
AS $$
DECLARE
    tenant uuid;
    owner_id uuid;
    site text := 'https://' || seed_demo_tenant.domain;
BEGIN
    IF seed_demo_tenant.domain IS NULL
       OR seed_demo_tenant.domain !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$' THEN
        RAISE EXCEPTION 'seed_demo_tenant() needs a lower-case domain name, got %',
                coalesce(quote_literal(seed_demo_tenant.domain), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: SELECT seed_demo_tenant(''Globex'', ''globex.com'');';
    END IF;

    tenant := create_tenant(
        seed_demo_tenant.tenant_name, 'business',
        jsonb_build_object(
            'maxMonthlySpend', 1000,
            'allowedDomains', jsonb_build_array(site),
            'features', jsonb_build_array('chat', 'meetings', 'knowledge-base')));
    PERFORM platform_enter_tenant(tenant, false);

    -- Development only, as in the document: real users sign in through OAuth.
    INSERT INTO users (email, password_hash, role, name)
    VALUES ('admin@' || seed_demo_tenant.domain, encode(sha256('password123'), 'hex'),
            'owner', 'John Doe')
    RETURNING id INTO owner_id;

    INSERT INTO auth_sessions (session_token, user_id, expires)
    VALUES (gen_random_uuid()::text, owner_id, now() + interval '30 days');

    INSERT INTO widgets (name, domain_whitelist, settings)
    VALUES ('Main Website Widget',
            jsonb_build_array(site, 'https://www.' || seed_demo_tenant.domain),
            '{"theme": "auto", "position": "bottom-right",
              "greeting": "Hi! How can I help you today?"}');

    INSERT INTO knowledge_documents (title, content, category, metadata)
    VALUES ('Getting Started Guide',
            'Welcome to our platform! Here is how to get started with our AI assistant...',
            'onboarding', '{"source": "docs", "tags": ["beginner", "tutorial"]}');

    INSERT INTO ai_personalities (name, description, system_prompt, temperature,
                                  max_tokens, is_default, is_active)
    VALUES ('Helpful Assistant', 'A friendly and knowledgeable assistant',
            format('You are a helpful AI assistant for %s. Be friendly, professional, '
                   'and concise in your responses.', seed_demo_tenant.tenant_name),
            0.7, 2000, true, true);
    RETURN tenant;
END
$$;
COMMENT ON FUNCTION seed_demo_tenant(text, text) IS
    'Creates a tenant with the design document''s demo data and returns its id.';
