-- 0.2.0 to 0.3.0: the state changes, written by hand. Everything else in
-- sql/platform--0.2.0--0.3.0.sql is generated from the code that a fresh
-- install runs (scripts/upgrade-script.py).

-- Functions whose arguments or results changed, dropped here and created
-- again by the code that follows (CREATE OR REPLACE cannot change either):
-- the keyword query is built in Rust and hands its words on, instead of
-- being parsed back from tsquery text.
DROP FUNCTION platform_keyword_query(text, regconfig, text, boolean);
DROP FUNCTION platform_keyword_candidates(tsquery, integer, uuid[], boolean, text);
DROP FUNCTION platform_or_lexemes_rarest_first(tsquery, boolean);
-- Fusion takes which keyword candidates hold every distinctive word.
DROP FUNCTION platform_fuse(uuid[], double precision[], uuid[], double precision[], text, integer,
                            double precision, double precision, integer);
DROP FUNCTION platform_hybrid_candidates(text, vector, integer, text, uuid[], text, text);
DROP FUNCTION platform_document_candidates(text, vector, integer, text, text, text);
-- grant_app_access() can leave verification_tokens out.
DROP FUNCTION grant_app_access(regrole, boolean);
DROP FUNCTION platform_execute_app_privileges(regrole, boolean, text);
DROP FUNCTION platform_app_privileges(regrole, boolean, text);
-- users_for_email() returns no password hash any more.
DROP FUNCTION users_for_email(text);
-- chunk_text() takes the unit sizes count in and the text's format.
DROP FUNCTION chunk_text(text, integer, integer);

-- ==================== Budgets: periods and hard caps ====================
-- budget_status() reports a row per configured period (daily, weekly,
-- monthly) under new column names; the alert helpers take the period;
-- the expected budget months carry their days.
DROP FUNCTION budget_status();
DROP FUNCTION platform_fire_budget_alerts(uuid, timestamptz, numeric);
DROP FUNCTION platform_budget_crossed(numeric, numeric, jsonb);
DROP FUNCTION platform_cost_budget_periods_expected(uuid);
-- record_cost_event() takes the widget the event is spent for;
-- platform_verify_cost_rollups() names the widget of a difference.
DROP FUNCTION record_cost_event(text, numeric, text, text, integer, uuid, text, timestamptz, jsonb);
DROP FUNCTION platform_verify_cost_rollups();
-- Each budget month keeps its spend per local day (filled after the code,
-- below). A nullable column without a default: no rewrite here.
ALTER TABLE cost_budget_periods ADD COLUMN daily_spend numeric[];
ALTER TYPE platform_cost_delta ADD ATTRIBUTE day_of_month integer;
-- Spend reservations against hard caps (costs/reservations.sql): a new,
-- empty table, internal like the rollups.
CREATE TABLE cost_reservations (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    estimated_cost_usd numeric(24, 12) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'open',
    closed_at timestamptz,
    event_id uuid,
    idempotency_key text,
    widget_id uuid,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT cost_reservations_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE SET NULL (widget_id),
    CONSTRAINT cost_reservations_state_check
        CHECK (state IN ('open', 'settled', 'released', 'expired')),
    CONSTRAINT cost_reservations_estimate_check
        CHECK (estimated_cost_usd >= 0 AND estimated_cost_usd <> 'NaN'::numeric)
);
CREATE INDEX cost_reservations_open_idx ON cost_reservations (tenant_id, expires_at)
    WHERE state = 'open';
SELECT pg_extension_config_dump('cost_reservations', '');
-- Per-widget budgets: each event keeps the widget it was spent for (a
-- nullable column without a default: no rewrite). Adding the foreign key
-- and the partial index each read cost_events once, under the ACCESS
-- EXCLUSIVE lock the ADD COLUMN takes until the upgrade commits
-- (docs/upgrades.md); no event has a widget yet, so neither writes.
ALTER TABLE cost_events
    ADD COLUMN widget_id uuid,
    ADD CONSTRAINT cost_events_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE SET NULL (widget_id);
CREATE INDEX cost_widget_idx ON cost_events (tenant_id, widget_id) WHERE widget_id IS NOT NULL;
ALTER TYPE platform_cost_delta ADD ATTRIBUTE widget_id uuid;
-- Alerts of a widget's budget: the widget joins the alert's identity, so the
-- tenant's identity index becomes partial (every existing alert is the
-- tenant's and keeps its identity; budget_alerts holds a few rows per
-- tenant and period, rebuilt in moments).
ALTER TABLE budget_alerts
    ADD COLUMN widget_id uuid,
    ADD CONSTRAINT budget_alerts_widget_fkey FOREIGN KEY (tenant_id, widget_id)
        REFERENCES widgets (tenant_id, id) ON DELETE CASCADE;
DROP INDEX budget_alert_identity_idx;
CREATE UNIQUE INDEX budget_alert_identity_idx
    ON budget_alerts (period_start, tenant_id, period, threshold) WHERE widget_id IS NULL;
CREATE UNIQUE INDEX budget_alert_widget_identity_idx
    ON budget_alerts (period_start, tenant_id, widget_id, period, threshold) WHERE widget_id IS NOT NULL;
-- Spend per widget and budget month: new and empty (no event has a widget
-- yet), internal like cost_budget_periods.
CREATE TABLE cost_widget_budget_periods (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    widget_id uuid NOT NULL,
    period_start timestamptz NOT NULL,
    spend numeric NOT NULL,
    event_count bigint NOT NULL,
    daily_spend numeric[] NOT NULL,
    PRIMARY KEY (tenant_id, widget_id, period_start)
) WITH (fillfactor = 80);
SELECT pg_extension_config_dump('cost_widget_budget_periods', 'WHERE false');
-- ==================== end of budgets ====================

-- Values of tenant data unique per tenant instead of across tenants: a
-- global constraint told one tenant, through a 23505, that another holds a
-- value, and let it claim one first. Each builds its new unique index under
-- an ACCESS EXCLUSIVE lock on the table (docs/upgrades.md).
ALTER TABLE meetings
    DROP CONSTRAINT meetings_room_name_key,
    DROP CONSTRAINT meetings_livekit_room_id_key,
    ADD CONSTRAINT meetings_tenant_room_name_key UNIQUE (tenant_id, room_name),
    ADD CONSTRAINT meetings_tenant_livekit_room_id_key UNIQUE (tenant_id, livekit_room_id);
ALTER TABLE auth_sessions
    DROP CONSTRAINT auth_sessions_session_token_key,
    ADD CONSTRAINT auth_sessions_tenant_session_token_key UNIQUE (tenant_id, session_token);

-- What Auth.js needs of users: the time an address was verified, and no
-- password for users who sign in through OAuth or an e-mail link. Neither
-- rewrites the table (a nullable column without a default).
ALTER TABLE users ADD COLUMN email_verified timestamptz;
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

-- Password hashes move out of users, where every application role could
-- read them, into a table only the owner reads (tenancy/credentials.sql).
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
SELECT pg_extension_config_dump('user_credentials', '');

-- Each tenant's keyword statistics, for BM25 (search/keyword_statistics.sql);
-- counted at the end, once every search_vector is final.
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
SELECT pg_extension_config_dump('knowledge_keyword_totals', 'WHERE false');
SELECT pg_extension_config_dump('knowledge_lexeme_counts', 'WHERE false');

-- @after-code

-- 0.2.0 accepted any text search configuration, a session's temporary one
-- included: once that session ended, every UPDATE of the row (and every
-- restore of a dump) failed. Rows stored with a configuration they cannot
-- keep take their tenant's configuration again (english when that is not
-- usable either), chunks their document's. Triggers are off for these
-- statements only, so updated_at stays as it was; the search_vector is
-- computed again with the new configuration.
SELECT set_config('session_replication_role', 'replica', true);
DO $repair$
DECLARE
    tenant record;
    config regconfig;
BEGIN
    FOR tenant IN
        SELECT t.id, t.settings->>'textSearchConfig' AS setting FROM tenants t
        WHERE EXISTS (SELECT FROM knowledge_documents d WHERE d.tenant_id = t.id
                      AND platform_text_search_config_problem(d.text_search_config) IS NOT NULL)
           OR EXISTS (SELECT FROM knowledge_chunks c WHERE c.tenant_id = t.id
                      AND platform_text_search_config_problem(c.text_search_config) IS NOT NULL)
    LOOP
        BEGIN
            config := platform_text_search_config(NULL, tenant.setting);
        EXCEPTION WHEN undefined_object OR invalid_parameter_value THEN
            config := 'pg_catalog.english';
        END;
        UPDATE knowledge_documents d SET text_search_config = config
        WHERE d.tenant_id = tenant.id AND platform_text_search_config_problem(d.text_search_config) IS NOT NULL;
        UPDATE knowledge_chunks c SET text_search_config = d.text_search_config
        FROM knowledge_documents d
        WHERE c.tenant_id = tenant.id AND d.tenant_id = c.tenant_id AND d.id = c.document_id
          AND platform_text_search_config_problem(c.text_search_config) IS NOT NULL;
    END LOOP;
END
$repair$;
SELECT set_config('session_replication_role', 'origin', true);

-- Rows store their text search configuration by name instead of by oid:
-- pg_upgrade refuses tables with regconfig columns (their oids differ
-- between major versions). One rewrite of each table, which computes its
-- search_vector again and rebuilds its indexes, HNSW included, under an
-- ACCESS EXCLUSIVE lock until the upgrade commits (docs/upgrades.md). The
-- same rewrite brings the embeddings back into their rows and gives chunks
-- their embedding sketches (schema/tables.sql).
ALTER TABLE knowledge_documents
    ALTER COLUMN embedding SET STORAGE MAIN,
    SET (toast_tuple_target = 8160),
    DROP COLUMN search_vector,
    ALTER COLUMN text_search_config TYPE text USING platform_text_search_config_name(text_search_config),
    ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(platform_tsvector(text_search_config, title), 'A')
        || setweight(platform_tsvector(text_search_config, content), 'B')
        || platform_tenant_tsvector(tenant_id)
    ) STORED,
    ADD COLUMN embedding_sketch bit(1024) GENERATED ALWAYS AS (binary_quantize(embedding)::bit(1024)) STORED;
CREATE INDEX knowledge_search_idx ON knowledge_documents USING gin (search_vector);
ALTER TABLE knowledge_chunks
    ALTER COLUMN embedding SET STORAGE MAIN,
    SET (toast_tuple_target = 8160),
    DROP COLUMN search_vector,
    ALTER COLUMN text_search_config TYPE text USING platform_text_search_config_name(text_search_config),
    ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        platform_tsvector(text_search_config, content) || platform_tenant_tsvector(tenant_id)
    ) STORED,
    ADD COLUMN embedding_sketch bit(1024) GENERATED ALWAYS AS (binary_quantize(embedding)::bit(1024)) STORED;
CREATE INDEX knowledge_chunk_search_idx ON knowledge_chunks USING gin (search_vector);
-- Vector search reads the ids and sketches from an index of each table
-- (schema/indexes.sql): built again with them.
DROP INDEX knowledge_category_idx;
CREATE INDEX knowledge_category_idx ON knowledge_documents (tenant_id, category)
    INCLUDE (id, embedding_sketch);
DROP INDEX knowledge_chunk_document_idx;
CREATE INDEX knowledge_chunk_document_idx ON knowledge_chunks (tenant_id, document_id, position)
    INCLUDE (id, embedding_sketch);

-- Creating and deleting a tenant takes provisioning rights, not only a
-- context, which any session can set (tenancy/provisioning.sql). Catalog
-- only: no lock beyond the moment the policies change.
ALTER POLICY tenants_insert ON tenants
    WITH CHECK (id = (SELECT get_current_tenant_id()) AND (SELECT platform_may_provision()));
ALTER POLICY tenants_delete ON tenants
    USING (id = (SELECT get_current_tenant_id()) AND (SELECT platform_may_provision()));

-- Every stored password hash, whatever its form, is kept: the document's
-- SHA-256 hex and bcrypt work at once and become Argon2id at each user's next
-- login; a value that is no known hash is kept as 'unrecognized' (it never
-- matches, and platform_audit() counts such users). The column then holds
-- the marker. Triggers are off for that UPDATE only, so updated_at stays; it
-- writes a new version of every user row with a password (docs/upgrades.md).
INSERT INTO user_credentials (tenant_id, user_id, scheme, hash)
SELECT u.tenant_id, u.id, platform_password_scheme(u.password_hash), u.password_hash
FROM users u
WHERE u.password_hash IS NOT NULL AND platform_password_scheme(u.password_hash) IS NOT NULL;
SELECT set_config('session_replication_role', 'replica', true);
UPDATE users SET password_hash = 'platform:stored'
WHERE password_hash IS NOT NULL AND password_hash <> 'platform:stored';
SELECT set_config('session_replication_role', 'origin', true);

-- The keyword statistics of every tenant, counted from the final rows. Holds
-- a SHARE lock on knowledge_documents and knowledge_chunks until the upgrade
-- commits (docs/upgrades.md).
SELECT platform_rebuild_keyword_statistics();

-- ==================== Budgets: periods and hard caps ====================
-- Every budget month's days, computed from its events (one pass over
-- cost_events; cost_budget_periods is locked ACCESS EXCLUSIVE since the
-- ADD COLUMN above, so cost writes wait for the upgrade: docs/upgrades.md).
UPDATE cost_budget_periods p SET daily_spend = x.daily_spend
FROM platform_cost_budget_periods_expected() x
WHERE x.tenant_id = p.tenant_id AND x.period_start = p.period_start;
-- A month whose events are gone (it cannot have any spend left) starts from zeros.
UPDATE cost_budget_periods SET daily_spend = platform_daily_spend('{}', '{}') WHERE daily_spend IS NULL;
ALTER TABLE cost_budget_periods ALTER COLUMN daily_spend SET NOT NULL;
-- ==================== end of budgets ====================
