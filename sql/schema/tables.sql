-- The final state of every table: what a fresh install creates. An upgrade
-- reaches the same state through sql/upgrades/ (columns an upgrade adds are
-- therefore last, in the order it added them).
--
-- The 15 tables of the design document (shared/seed/database-schema.md),
-- under its names and with its columns, so its Drizzle schema and seed script
-- run unchanged, plus the two rollup tables that cost accounting keeps
-- (internal: no application role may read them). What differs from the
-- document, and why:
--   * every time is timestamptz;
--   * every enum the document lists is a CHECK constraint;
--   * the four child tables (messages, knowledge_chunks, accounts,
--     auth_sessions) carry tenant_id too, so every policy is one indexed
--     equality instead of an EXISTS over the parent;
--   * parents expose UNIQUE (tenant_id, id) and children reference
--     (tenant_id, parent_id): a row can never point at another tenant's row;
--   * tenant_id defaults to the tenant context, so an INSERT shaped like the
--     document's (which omits it on child tables) fills it in, and an INSERT
--     without a context fails with a clear error instead of a FK violation;
--   * money is numeric wide enough for a $0.0000004 embedding call;
--   * meetings.created_by is nullable: the document's NOT NULL with
--     ON DELETE SET NULL would make deleting a user fail.
-- Indexes live in indexes.sql, policies in row_security.sql; the functions
-- and triggers that act on these tables are code, under sql/<capability>/.

CREATE TABLE tenants (
    -- Inside a tenant context a new tenant row takes the context's id, so the
    -- document-shaped INSERT passes the INSERT policy (id = context); outside
    -- one it gets a random id and the policy refuses it.
    id uuid PRIMARY KEY DEFAULT coalesce(
        nullif(get_current_tenant_id(), '00000000-0000-0000-0000-000000000000'),
        gen_random_uuid()),
    name text NOT NULL,
    api_key text NOT NULL,
    plan text NOT NULL DEFAULT 'starter',
    settings jsonb,
    stripe_customer_id text,
    stripe_subscription_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The document plans tenant_api_key_idx on api_key; the UNIQUE constraint's
    -- index is that index, so it takes the name instead of a duplicate.
    CONSTRAINT tenant_api_key_idx UNIQUE (api_key),
    CONSTRAINT tenants_stripe_customer_id_key UNIQUE (stripe_customer_id),
    CONSTRAINT tenants_plan_check
        CHECK (plan IN ('starter', 'growth', 'business', 'enterprise')),
    -- The nil UUID means "no tenant" to get_current_tenant_id().
    CONSTRAINT tenants_id_not_nil
        CHECK (id <> '00000000-0000-0000-0000-000000000000'),
    CONSTRAINT tenants_settings_is_object
        CHECK (settings IS NULL OR jsonb_typeof(settings) = 'object')
);

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    email text NOT NULL,
    -- Nullable: users who sign in through OAuth or an e-mail link (Auth.js)
    -- have no password; the document itself says production users do.
    password_hash text,
    role text NOT NULL DEFAULT 'member',
    name text,
    avatar_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- When the address was verified (Auth.js's emailVerified), NULL until then.
    email_verified timestamptz,
    -- Per tenant, not global as in the document: one person may belong to
    -- several tenants, and a sign-up must not learn that an address is taken
    -- elsewhere. Login finds users by address through users_for_email()
    -- (lookups.sql, which also holds the document's user_email_idx).
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email),
    CONSTRAINT user_tenant_idx UNIQUE (tenant_id, id),
    CONSTRAINT users_role_check CHECK (role IN ('owner', 'admin', 'member'))
);

-- ==================== AUTH.JS ====================

CREATE TABLE accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id(),
    user_id uuid NOT NULL,
    type text NOT NULL,
    provider text NOT NULL,
    provider_account_id text NOT NULL,
    refresh_token text,
    access_token text,
    expires_at integer,
    token_type text,
    scope text,
    id_token text,
    session_state text,
    CONSTRAINT accounts_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    -- Per tenant, like e-mail addresses; Auth.js finds the users of an OAuth
    -- login through users_for_oauth_account() (lookups.sql).
    CONSTRAINT accounts_tenant_provider_account_key
        UNIQUE (tenant_id, provider, provider_account_id)
);

CREATE TABLE auth_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id(),
    session_token text NOT NULL,
    user_id uuid NOT NULL,
    expires timestamptz NOT NULL,
    -- Per tenant: a global constraint would tell one tenant, through a
    -- 23505, that another holds a token, and let it claim one first.
    -- Sessions are looked up across tenants by token digest
    -- (user_for_session_token).
    CONSTRAINT auth_sessions_tenant_session_token_key UNIQUE (tenant_id, session_token),
    CONSTRAINT auth_sessions_user_fkey FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Global (no tenant): e-mail verification happens before a user has one.
CREATE TABLE verification_tokens (
    identifier text NOT NULL,
    token text NOT NULL,
    expires timestamptz NOT NULL,
    CONSTRAINT verification_tokens_pkey PRIMARY KEY (identifier, token),
    CONSTRAINT verification_tokens_token_key UNIQUE (token)
);

-- ==================== WIDGETS AND MEETINGS ====================

CREATE TABLE widgets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    domain_whitelist jsonb NOT NULL,
    settings jsonb,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT widget_tenant_idx UNIQUE (tenant_id, id),
    CONSTRAINT widgets_domain_whitelist_is_array
        CHECK (jsonb_typeof(domain_whitelist) = 'array')
);

CREATE TABLE meetings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    room_name text NOT NULL,
    livekit_room_id text NOT NULL,
    -- Nullable on purpose (the document says NOT NULL and ON DELETE SET NULL,
    -- which contradict each other): deleting a user keeps the meetings they
    -- created and clears the creator. Writers still always set it.
    created_by uuid,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    metadata jsonb,
    -- Per tenant, for the same reason as auth_sessions' tokens; LiveKit's
    -- own names are global per project, so the application makes them
    -- unique across tenants (docs/design-corrections.md).
    CONSTRAINT meetings_tenant_room_name_key UNIQUE (tenant_id, room_name),
    CONSTRAINT meetings_tenant_livekit_room_id_key UNIQUE (tenant_id, livekit_room_id),
    CONSTRAINT meeting_tenant_idx UNIQUE (tenant_id, id),
    -- SET NULL (created_by) clears only the user column, never tenant_id.
    CONSTRAINT meetings_created_by_fkey FOREIGN KEY (tenant_id, created_by)
        REFERENCES users (tenant_id, id) ON DELETE SET NULL (created_by),
    CONSTRAINT meetings_ended_after_start
        CHECK (ended_at IS NULL OR ended_at >= started_at)
);

-- ==================== SESSIONS AND MESSAGES ====================

CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    widget_id uuid,
    meeting_id uuid,
    mode text NOT NULL DEFAULT 'text',
    cost_usd numeric(24, 12) DEFAULT 0,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    CONSTRAINT session_tenant_idx UNIQUE (tenant_id, id),
    CONSTRAINT sessions_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE SET NULL (widget_id),
    CONSTRAINT sessions_meeting_fkey FOREIGN KEY (tenant_id, meeting_id)
        REFERENCES meetings (tenant_id, id) ON DELETE SET NULL (meeting_id),
    CONSTRAINT sessions_mode_check CHECK (mode IN ('text', 'meeting')),
    CONSTRAINT sessions_cost_usd_check
        CHECK (cost_usd >= 0 AND cost_usd <> 'NaN'::numeric)
);

CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id(),
    session_id uuid NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    attachments jsonb,
    metadata jsonb,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_session_fkey FOREIGN KEY (tenant_id, session_id)
        REFERENCES sessions (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant', 'system'))
);

-- ==================== KNOWLEDGE BASE ====================

CREATE TABLE knowledge_documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    title text NOT NULL,
    content text NOT NULL,
    category text,
    embedding vector(1024),
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Keyword search (docs/search.md): the name of the row's text search
    -- configuration (filled from the tenant's setting, and checked, by a
    -- trigger: a generated column cannot look the setting up), and the stored
    -- tsvector with titles weighing more than bodies and the tenant's lexeme
    -- (search/search_vector.sql).
    text_search_config text NOT NULL,
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(platform_tsvector(text_search_config, title), 'A')
        || setweight(platform_tsvector(text_search_config, content), 'B')
        || platform_tenant_tsvector(tenant_id)
    ) STORED,
    -- As knowledge_chunks' below (NULL where the embedding is).
    embedding_sketch bit(1024) GENERATED ALWAYS AS (binary_quantize(embedding)::bit(1024)) STORED,
    CONSTRAINT knowledge_tenant_idx UNIQUE (tenant_id, id)
);

CREATE TABLE knowledge_chunks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id(),
    document_id uuid NOT NULL,
    content text NOT NULL,
    embedding vector(1024) NOT NULL,
    position integer NOT NULL,
    metadata jsonb,
    -- Its document's configuration unless given (the trigger copies it).
    text_search_config text NOT NULL,
    search_vector tsvector GENERATED ALWAYS AS (
        platform_tsvector(text_search_config, content) || platform_tenant_tsvector(tenant_id)
    ) STORED,
    -- The embedding's signs, one bit per dimension (pgvector's binary
    -- quantization): vector search ranks a tenant's chunks by these first,
    -- from an index, and compares whole vectors only for the best of them
    -- (search/vector.sql).
    embedding_sketch bit(1024) GENERATED ALWAYS AS (binary_quantize(embedding)::bit(1024)) STORED,
    CONSTRAINT knowledge_chunks_document_fkey FOREIGN KEY (tenant_id, document_id)
        REFERENCES knowledge_documents (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT knowledge_chunks_position_check CHECK (position >= 0)
);

-- Embeddings stay in their row: a 1024-dimension vector (4 KB) is over the
-- 2 KB at which PostgreSQL otherwise moves a value out to the TOAST table,
-- and an exact scan of a tenant's rows would then fetch every vector from
-- there (docs/search.md has the measurement). STORAGE MAIN keeps a vector
-- inline, and a toast_tuple_target of a full page stops the row from being
-- shortened below that: long texts move out first, and a vector only as a
-- last resort, in a row that would not fit a page otherwise.
ALTER TABLE knowledge_documents ALTER COLUMN embedding SET STORAGE MAIN;
ALTER TABLE knowledge_documents SET (toast_tuple_target = 8160);
ALTER TABLE knowledge_chunks ALTER COLUMN embedding SET STORAGE MAIN;
ALTER TABLE knowledge_chunks SET (toast_tuple_target = 8160);

-- ==================== COST TRACKING ====================

-- numeric(24, 12): twelve decimals store a single token's cost exactly
-- (the document's numeric(10, 6) rounds a $0.0000004 call to zero), twelve
-- integer digits hold any realistic total.
CREATE TABLE cost_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    session_id uuid,
    service text NOT NULL,
    provider text,
    tokens_used integer,
    cost_usd numeric(24, 12) NOT NULL,
    metadata jsonb,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    -- record_cost_event()'s idempotency key: a client-chosen key, unique per
    -- tenant. NULL keys never conflict, so the document's INSERTs are unaffected.
    idempotency_key text,
    CONSTRAINT cost_events_session_fkey FOREIGN KEY (tenant_id, session_id)
        REFERENCES sessions (tenant_id, id) ON DELETE SET NULL (session_id),
    CONSTRAINT cost_events_service_check CHECK (service IN
        ('vision', 'voice_stt', 'voice_tts', 'llm', 'embedding', 'livekit')),
    CONSTRAINT cost_events_tokens_used_check CHECK (tokens_used >= 0),
    -- NaN sorts above every number, so ">= 0" alone would let it in.
    CONSTRAINT cost_events_cost_usd_check
        CHECK (cost_usd >= 0 AND cost_usd <> 'NaN'::numeric),
    CONSTRAINT cost_events_idempotency_key_check
        CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    CONSTRAINT cost_events_idempotency_key_key UNIQUE (tenant_id, idempotency_key),
    -- The widget the event is spent for, fixed when it is recorded (by
    -- record_cost_event's widget_id, else its session's widget; by the
    -- reservation it settles): what per-widget budgets count. The composite
    -- key makes another tenant's widget a foreign-key violation.
    widget_id uuid,
    CONSTRAINT cost_events_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE SET NULL (widget_id)
);

CREATE TABLE cost_summaries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    total_cost_usd numeric(24, 12) NOT NULL,
    breakdown jsonb NOT NULL,
    event_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cost_summaries_period_check CHECK (period_end > period_start),
    CONSTRAINT cost_summaries_total_check
        CHECK (total_cost_usd >= 0 AND total_cost_usd <> 'NaN'::numeric)
);

CREATE TABLE budget_alerts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    threshold numeric(10, 2) NOT NULL,
    current_spend numeric(24, 12) NOT NULL,
    period text NOT NULL DEFAULT 'monthly',
    severity text NOT NULL DEFAULT 'warning',
    notifications_sent integer NOT NULL DEFAULT 0,
    triggered_at timestamptz NOT NULL DEFAULT now(),
    resolved boolean NOT NULL DEFAULT false,
    resolved_at timestamptz,
    metadata jsonb,
    -- The start of the budget period an alert belongs to, part of its
    -- identity (budget_alert_identity_idx). Alerts written by hand, without
    -- one, never conflict.
    period_start timestamptz,
    CONSTRAINT budget_alerts_period_check
        CHECK (period IN ('daily', 'weekly', 'monthly')),
    CONSTRAINT budget_alerts_severity_check
        CHECK (severity IN ('warning', 'critical')),
    -- The widget whose budget the alert is about; NULL for the tenant's own
    -- budget. An alert goes with its widget.
    widget_id uuid,
    CONSTRAINT budget_alerts_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE CASCADE
);

-- ==================== AI PERSONALITIES ====================

CREATE TABLE ai_personalities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL DEFAULT require_current_tenant_id()
        REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    system_prompt text NOT NULL,
    temperature numeric(3, 2) NOT NULL DEFAULT 0.7,
    max_tokens integer DEFAULT 2000,
    top_p numeric(3, 2) DEFAULT 1.0,
    frequency_penalty numeric(3, 2) DEFAULT 0.0,
    presence_penalty numeric(3, 2) DEFAULT 0.0,
    preferred_model text,
    is_default boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true,
    metadata jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_personality_tenant_idx UNIQUE (tenant_id, id)
);

-- ==================== CREDENTIALS (internal) ====================
-- Users' password hashes, moved here from users.password_hash by its triggers
-- (tenancy/credentials.sql) so that no application role can read one: no
-- grants, reached only through SECURITY DEFINER functions that return ids.
-- No foreign key to users: the BEFORE INSERT trigger of users writes here
-- before the user's row exists; an AFTER DELETE trigger removes the row of a
-- deleted user.
CREATE TABLE user_credentials (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    scheme text NOT NULL,
    hash text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT user_credentials_scheme_check
        CHECK (scheme IN ('argon2id', 'sha256', 'bcrypt', 'unrecognized'))
);

-- ==================== KEYWORD STATISTICS (internal) ====================
-- What BM25 needs to know of each tenant's knowledge base, counted in the
-- tenant's own rows so that no other tenant's text changes its ranking: how
-- many chunks and documents it has with their summed lengths, and how many of
-- them hold each word. Kept by the triggers of search/keyword_statistics.sql
-- in the same transaction as every change to knowledge_chunks and
-- knowledge_documents, and read only by the SECURITY DEFINER keyword search.
-- The totals row is also the tenant's lock: every change of the counts takes
-- it first, so that two transactions of one tenant never deadlock on words.
CREATE TABLE knowledge_keyword_totals (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chunks bigint NOT NULL,
    chunk_length bigint NOT NULL,
    documents bigint NOT NULL,
    document_length bigint NOT NULL
) WITH (fillfactor = 80);  -- room for HOT updates: every ingestion rewrites its row

-- A word is a lexeme of the rows' search_vector (stemmed as each row's text
-- search configuration stems it). A word no row holds any more is deleted.
CREATE TABLE knowledge_lexeme_counts (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    lexeme text NOT NULL,
    chunks integer NOT NULL,     -- the tenant's chunks holding it
    documents integer NOT NULL,  -- the tenant's documents holding it
    PRIMARY KEY (tenant_id, lexeme)
) WITH (fillfactor = 80);

-- One tenant's change of the counts (a tenant's totals when lexeme is NULL),
-- as the keyword triggers pass it on.
CREATE TYPE platform_keyword_count AS (
    tenant_id uuid,
    lexeme text,
    rows bigint,
    length bigint
);

-- ==================== COST ROLLUPS (internal) ====================
-- Kept by the cost triggers (costs/rollups.sql) in the same transaction as
-- every change to cost_events, and reached only through SECURITY DEFINER
-- functions.

-- Spend per tenant, UTC hour, service, provider and model: what cost_summary()
-- reads for whole hours. Sums, never floats: the totals are exact. A row with
-- no events left is deleted, so every row stands for at least one event.
-- token_events counts the events that carried tokens_used, so a sum over rows
-- can be NULL exactly when SUM(tokens_used) over the raw rows would be.
-- (No CHECK on the counts: ON CONFLICT checks the proposed row, which for a
-- delete is a negative delta; platform_verify_cost_rollups() is the check.)
CREATE TABLE cost_rollups_hourly (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    service text NOT NULL,
    provider text,
    model text,
    total_cost_usd numeric NOT NULL,
    total_tokens bigint NOT NULL,
    token_events bigint NOT NULL,
    event_count bigint NOT NULL,
    CONSTRAINT cost_rollups_hourly_key
        UNIQUE NULLS NOT DISTINCT (tenant_id, hour, service, provider, model),
    CONSTRAINT cost_rollups_hourly_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC'))
) WITH (fillfactor = 80);  -- room for HOT updates: every event rewrites its row

-- Spend per tenant and budget month (in the tenant's time zone), with the
-- month's spend per local day (daily_spend[d] for day d of the month, 31
-- entries): one row to lock and read, so budget checks and budget_status()
-- never sum events. A day is one entry, a month the row, a week (Monday to
-- Sunday) the sum of its seven days over at most two rows. Days live in
-- the month's row rather than rows of their own so that an event still
-- costs one budget upsert.
CREATE TABLE cost_budget_periods (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    spend numeric NOT NULL,
    event_count bigint NOT NULL,
    daily_spend numeric[] NOT NULL,
    PRIMARY KEY (tenant_id, period_start)
) WITH (fillfactor = 80);

-- The same per widget (widgets.settings holds a widget's budgets): the
-- spend of the events attributed to it (cost_events.widget_id), per budget
-- month of the tenant's calendar and local day. Kept for every widget with
-- events, budget or not, so that a budget set mid-month starts from the
-- month's true spend. No foreign key to widgets: deleting a widget sets its
-- events' widget_id to NULL, and the cost triggers subtract them here, which
-- deletes its rows.
CREATE TABLE cost_widget_budget_periods (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    widget_id uuid NOT NULL,
    period_start timestamptz NOT NULL,
    spend numeric NOT NULL,
    event_count bigint NOT NULL,
    daily_spend numeric[] NOT NULL,
    PRIMARY KEY (tenant_id, widget_id, period_start)
) WITH (fillfactor = 80);

-- ==================== SPEND RESERVATIONS (internal) ====================
-- What reserve_spend() granted against the tenant's hard caps before an AI
-- call (costs/reservations.sql): open until settled (with the cost event
-- that recorded the call) or released, and counting against the caps until
-- then or until expires_at. Reached only through SECURITY DEFINER
-- functions, so an application can neither forge nor drop one.
CREATE TABLE cost_reservations (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    estimated_cost_usd numeric(24, 12) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'open',
    closed_at timestamptz,
    -- The cost event that settled it, and that event's idempotency key.
    event_id uuid,
    idempotency_key text,
    -- The widget whose hard caps it was also checked against (NULL: the
    -- tenant's only); its settling event is attributed to it.
    widget_id uuid,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT cost_reservations_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE SET NULL (widget_id),
    CONSTRAINT cost_reservations_state_check
        CHECK (state IN ('open', 'settled', 'released', 'expired')),
    CONSTRAINT cost_reservations_estimate_check
        CHECK (estimated_cost_usd >= 0 AND estimated_cost_usd <> 'NaN'::numeric)
);

-- One group of cost events' contribution to both tables (a delta), as the
-- cost triggers pass it on.
CREATE TYPE platform_cost_delta AS (
    tenant_id uuid,
    hour timestamptz,
    month_start timestamptz,   -- the budget month, in the tenant's zone
    service text,
    provider text,
    model text,
    cost numeric,
    tokens bigint,
    token_events bigint,
    events bigint,
    day_of_month integer,      -- the local day of the budget month
    widget_id uuid             -- the events' widget (NULL: none)
);
