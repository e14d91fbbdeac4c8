-- The indexes the document plans, under its names, with tenant_id leading
-- wherever queries filter by tenant (every tenant query does: it is in every
-- policy). Where a constraint's index already is the planned index, the
-- constraint carries the name (see tables.sql): tenant_api_key_idx,
-- user_tenant_idx, session_tenant_idx, knowledge_tenant_idx,
-- ai_personality_tenant_idx. Every composite foreign key also gets an index
-- on its referencing columns, so deleting a parent never scans the child.
-- Beyond the plan: the indexes of keyword search (GIN), of the lookups before
-- a tenant is known, and of budget alerts' identity.

-- Sessions (most frequent): listing is newest first, keyset on (created_at, id).
CREATE INDEX session_widget_idx ON sessions (tenant_id, widget_id);
CREATE INDEX session_meeting_idx ON sessions (tenant_id, meeting_id);
CREATE INDEX session_created_at_idx ON sessions (tenant_id, created_at DESC, id DESC);

-- Messages (high volume): a session's transcript in order, and recent activity.
CREATE INDEX message_session_idx ON messages (tenant_id, session_id, "timestamp");
CREATE INDEX message_timestamp_idx ON messages (tenant_id, "timestamp");

-- Auth.js children and meetings, for lookups by user and cascading deletes.
CREATE INDEX account_user_idx ON accounts (tenant_id, user_id);
CREATE INDEX auth_session_user_idx ON auth_sessions (tenant_id, user_id);
CREATE INDEX meeting_created_by_idx ON meetings (tenant_id, created_by);

-- Knowledge base: HNSW for approximate nearest neighbours (cosine), built
-- with ef_construction = 200 instead of the document's 64: under a tenant
-- filter, with chunks clustered by document and topic, the graph built with
-- 64 misses close neighbours (recall against an exact tenant-scoped scan in
-- docs/search.md). m stays 16.
CREATE INDEX knowledge_embedding_idx ON knowledge_documents
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
CREATE INDEX knowledge_chunk_embedding_idx ON knowledge_chunks
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
-- Keyword search over the stored tsvectors (each holds its tenant's lexeme,
-- so a query reads only its tenant's postings: search/search_vector.sql).
CREATE INDEX knowledge_search_idx ON knowledge_documents USING gin (search_vector);
CREATE INDEX knowledge_chunk_search_idx ON knowledge_chunks USING gin (search_vector);
-- The design document's index by category also holds each document's id
-- and embedding sketch, for search_documents' scan (as
-- knowledge_chunk_document_idx below does for chunks).
CREATE INDEX knowledge_category_idx ON knowledge_documents (tenant_id, category)
    INCLUDE (id, embedding_sketch);
-- A document's chunks in order; and, from the same index, each chunk's id and
-- embedding sketch, which vector search reads without visiting the table's
-- pages of 4 KB vectors (an index-only scan: search/vector.sql).
CREATE INDEX knowledge_chunk_document_idx ON knowledge_chunks (tenant_id, document_id, position)
    INCLUDE (id, embedding_sketch);

-- Cost tracking.
CREATE INDEX cost_tenant_timestamp_idx ON cost_events (tenant_id, "timestamp");
CREATE INDEX cost_session_idx ON cost_events (tenant_id, session_id);
-- For the foreign key's ON DELETE SET NULL when a widget is deleted (and
-- for rebuilding one widget's budget months). Partial: an event without a
-- widget, the common case, costs this index nothing.
CREATE INDEX cost_widget_idx ON cost_events (tenant_id, widget_id) WHERE widget_id IS NOT NULL;
CREATE INDEX cost_summary_tenant_period_idx ON cost_summaries (tenant_id, period_start, period_end);

-- Budget alerts: a tenant's recent alerts, its open ones, and (across
-- tenants, for operators) everything triggered in a time range.
CREATE INDEX budget_alert_tenant_idx ON budget_alerts (tenant_id, triggered_at DESC);
CREATE INDEX budget_alert_active_idx ON budget_alerts (tenant_id, resolved);
CREATE INDEX budget_alert_triggered_idx ON budget_alerts (triggered_at);

-- An alert's identity is (tenant, widget, period, period start, threshold):
-- the unique indexes are what make concurrent writers fire it exactly once
-- (INSERT ... ON CONFLICT DO NOTHING), one for the tenant's own budgets and
-- one for its widgets'. period_start leads: the indexes exist for
-- uniqueness, and the planned tenant-leading indexes serve the tenant's reads.
CREATE UNIQUE INDEX budget_alert_identity_idx
    ON budget_alerts (period_start, tenant_id, period, threshold) WHERE widget_id IS NULL;
CREATE UNIQUE INDEX budget_alert_widget_identity_idx
    ON budget_alerts (period_start, tenant_id, widget_id, period, threshold) WHERE widget_id IS NOT NULL;

-- Spend reservations: a tenant's open ones, summed under its lock by every
-- reserve_spend() (settled and released ones leave the index).
CREATE INDEX cost_reservations_open_idx ON cost_reservations (tenant_id, expires_at)
    WHERE state = 'open';

-- AI personalities: the tenant's default, active personality.
CREATE INDEX ai_personality_default_idx ON ai_personalities (tenant_id, is_default, is_active);

-- Lookups before a tenant is known (tenancy/lookups.sql): sessions by the
-- digest of their token, users by e-mail address and by OAuth account, across
-- tenants (each unique only per tenant).
CREATE INDEX auth_sessions_token_digest_idx
    ON auth_sessions (platform_secret_digest(session_token));
CREATE INDEX user_email_idx ON users (email);
CREATE INDEX accounts_provider_account_idx ON accounts (provider, provider_account_id);
