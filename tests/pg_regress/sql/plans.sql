--
-- The plans the SQL relies on: EXPLAIN (COSTS OFF) of the statements the
-- functions run, written out here as each function writes them, run as the
-- role and with the settings (the functions' SET clauses) they run with.
-- regress.plan() (setup.sql) prints one plan line per row and shortens
-- vector and bit string literals.
--
-- Second in the schedule, so the statistics and indexes are those setup.sql
-- left (the GIN indexes' pending lists empty), whatever the later tests do.
--
-- Custom and generic plans: PL/pgSQL plans a statement with its variables'
-- values first (a custom plan: the literals below) and may later switch to
-- a generic plan ($n parameters, PREPARE ... EXECUTE below). $0 is the policies' InitPlan,
-- (SELECT get_current_tenant_id()).
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\pset format unaligned
\pset tuples_only on

-- ========== HNSW under row-level security ==========
-- vector_search (sql/search/vector.sql), the path for scopes of at least
-- platform_exact_scan_limit() rows, with its SET clause:
--   SELECT c.id FROM knowledge_chunks c
--   WHERE scope IS NULL OR c.document_id = ANY (scope)
--   ORDER BY c.embedding <=> query_embedding LIMIT wanted
-- as the application role: an Index Scan on knowledge_chunk_embedding_idx
-- ordered by <=>, the tenant policy as a Filter (the iterative scan keeps
-- walking until `wanted` rows pass it).
SET ROLE platform_regress_app;
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SET LOCAL hnsw.iterative_scan = 'relaxed_order';
SET LOCAL hnsw.ef_search = 100;
SET LOCAL enable_sort = off;
-- custom plan, no scope
SELECT * FROM regress.plan(format($$
    SELECT c.id FROM knowledge_chunks c
    WHERE NULL::uuid[] IS NULL OR c.document_id = ANY (NULL::uuid[])
    ORDER BY c.embedding <=> %L::vector LIMIT 10$$, regress.axis(1)));
-- custom plan, a scope (category or document_ids given)
SELECT * FROM regress.plan(format($$
    SELECT c.id FROM knowledge_chunks c
    WHERE '{a7000000-0000-4000-8000-000000000001}'::uuid[] IS NULL
       OR c.document_id = ANY ('{a7000000-0000-4000-8000-000000000001}'::uuid[])
    ORDER BY c.embedding <=> %L::vector LIMIT 10$$, regress.axis(1)));
-- generic plan
PREPARE vector_search_nearest(vector, uuid[], integer) AS
    SELECT c.id FROM knowledge_chunks c
    WHERE $2 IS NULL OR c.document_id = ANY ($2)
    ORDER BY c.embedding <=> $1 LIMIT $3;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT * FROM regress.plan($$EXECUTE vector_search_nearest(regress.axis(1), NULL, 10)$$);
RESET plan_cache_mode;
-- Why enable_sort = off is in the SET clause: without it the plan depends on
-- the planner's guess of how many rows the tenant has, which it cannot see;
-- where a table is small in pages it sorts all the tenant's rows instead
-- (these tables did, before embeddings were kept in their rows). With it,
-- HNSW is the only plan whatever the table's size. Here, without it:
SET LOCAL enable_sort = on;
SELECT * FROM regress.plan(format($$
    SELECT c.id FROM knowledge_chunks c
    WHERE NULL::uuid[] IS NULL OR c.document_id = ANY (NULL::uuid[])
    ORDER BY c.embedding <=> %L::vector LIMIT 10$$, regress.axis(1)));
SET LOCAL enable_sort = off;
-- vector_search, the exact path for small scopes: a MATERIALIZED CTE of
-- the scope's rows, sorted (the only plan, enable_sort = off or not).
SELECT * FROM regress.plan(format($$
    WITH scoped AS MATERIALIZED (
        SELECT c.id, c.document_id, c.embedding <=> %L::vector AS distance
        FROM knowledge_chunks c
        WHERE NULL::uuid[] IS NULL OR c.document_id = ANY (NULL::uuid[])
    )
    SELECT s.id, s.document_id, s.distance, row_number() OVER (ORDER BY s.distance, s.id)
    FROM scoped s ORDER BY s.distance, s.id LIMIT 10$$, regress.axis(1)));
-- The scan of larger scopes (platform_scanned_nearest_chunks): the chunks
-- ranked by embedding sketch in Rust, from knowledge_chunk_document_idx
-- alone (platform_nearest_sketches: the table's pages of vectors are not
-- read), then the best compared whole, fetched by primary key.
SELECT * FROM regress.plan(format($$
    WITH candidate AS MATERIALIZED (
        SELECT c.id, c.document_id, c.embedding <=> %1$L::vector AS distance
        FROM knowledge_chunks c
        WHERE c.id = ANY ((SELECT platform_nearest_sketches('knowledge_chunk_document_idx'::regclass,
                                                            %1$L::vector::real[], 200, NULL, NULL))::uuid[])
    )
    SELECT n.id, n.document_id, n.distance, row_number() OVER (ORDER BY n.distance, n.id)
    FROM candidate n ORDER BY n.distance, n.id LIMIT 10$$, regress.axis(1)));
ROLLBACK;

-- search_documents' vector branch (platform_document_candidates), the
-- path for large scopes, with its SET clause (ef_search 200):
--   SELECT d.id, d.embedding <=> query_embedding AS distance
--   FROM knowledge_documents d
--   WHERE d.embedding IS NOT NULL
--     AND (wanted_category IS NULL OR d.category = wanted_category)
--   ORDER BY d.embedding <=> query_embedding LIMIT candidates
-- as the application role: knowledge_embedding_idx.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SET LOCAL hnsw.iterative_scan = 'relaxed_order';
SET LOCAL hnsw.ef_search = 200;
SET LOCAL enable_sort = off;
SELECT * FROM regress.plan(format($$
    SELECT d.id, d.embedding <=> %1$L::vector AS distance FROM knowledge_documents d
    WHERE d.embedding IS NOT NULL AND (NULL::text IS NULL OR d.category = NULL::text)
    ORDER BY d.embedding <=> %1$L::vector LIMIT 40$$, regress.axis(1)));
ROLLBACK;

-- ========== GIN inside the SECURITY DEFINER keyword helper ==========
-- As the application role, `search_vector @@ q` is not an index condition:
-- @@ is not LEAKPROOF, so under row-level security it is only a Filter on
-- the tenant's rows (tenant c, 1,000 chunks, with the helper's settings).
-- This is why platform_keyword_candidates is SECURITY DEFINER.
BEGIN;
SELECT set_tenant('c0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_indexscan = off;
SELECT * FROM regress.plan($$
    SELECT c.id FROM knowledge_chunks c WHERE c.search_vector @@ '''warranti'''::tsquery$$);
ROLLBACK;
RESET ROLE;

-- platform_keyword_candidates (sql/search/keyword.sql) runs as the tables' owner
-- (the superuser here; CREATE EXTENSION needs one) with its SET clause:
-- enable_seqscan = off, enable_indexscan = off, generic plans (planned once
-- per session). Each of its statements reads platform_keyword_rows, inlined,
-- with `documents` a parameter: both tables are in the plan, the one it does
-- not name under a One-Time Filter that skips it at run time. Tenant c
-- (1,000 chunks and documents), query words warranti (1% of its rows) and
-- ship (25%). Expected: Bitmap Index Scans on the GIN indexes with the
-- query (the tenant's lexeme ANDed in) as the Index Cond, not the tenant's
-- btree index (the tenant filter compares text so that it cannot be one:
-- sql/search/keyword.sql says why).
BEGIN;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_indexscan = off;
SET LOCAL plan_cache_mode = force_generic_plan;
-- 'any' mode: the first tier (the rows with every word, at most
-- rank_limit) and each word's tier (without the rows already taken: a
-- Filter, not an index condition).
PREPARE keyword_tier(boolean, uuid, tsquery, uuid[], text, tsquery, tsquery, integer) AS
    SELECT r.id, ts_rank(r.search_vector, $6)::double precision AS score
    FROM platform_keyword_rows($1, $2, $3, $4, $5) r
    WHERE $7 IS NULL OR NOT r.search_vector @@ $7
    LIMIT $8;
SELECT * FROM regress.plan($$
    EXECUTE keyword_tier(false, 'c0000000-0000-4000-8000-000000000000',
                         '''warranti'''::tsquery
                         && platform_tenant_tsquery('c0000000-0000-4000-8000-000000000000'),
                         NULL, NULL, '''warranti'' | ''ship''', '''warranti'' & ''ship''', 150)$$);
-- 'all' mode (or platform.keyword_rank_limit = 0): every match ranked.
PREPARE keyword_ranked(boolean, uuid, tsquery, uuid[], text, tsquery, integer) AS
    SELECT r.id, ts_rank(r.search_vector, $6)::double precision AS score
    FROM platform_keyword_rows($1, $2, $3, $4, $5) r
    ORDER BY score DESC, r.id LIMIT $7;
SELECT * FROM regress.plan($$
    EXECUTE keyword_ranked(false, 'c0000000-0000-4000-8000-000000000000',
                           '''warranti'' & ''ship'''::tsquery
                           && platform_tenant_tsquery('c0000000-0000-4000-8000-000000000000'),
                           NULL, NULL, '''warranti'' & ''ship''', 40)$$);
ROLLBACK;

-- ========== list_sessions: keyset pagination ==========
-- list_sessions reads its page through platform_sessions_page
-- (sql/tenancy/pagination.sql), whose two statements, the first page and a
-- page after a cursor, are
--   SELECT s.* FROM sessions s
--   WHERE [(s.created_at, s.id) < (after.created_at, after.id) AND]
--         (widget IS NULL OR s.widget_id = widget)
--   ORDER BY s.created_at DESC, s.id DESC LIMIT wanted
-- as the application role, tenant c (3,000 sessions). Both, in the generic
-- plan PL/pgSQL may settle on: an Index Scan using session_created_at_idx
-- under the Limit, the tenant and (after a cursor) the row comparison in the
-- Index Cond, so a page reads page_size rows wherever it starts.
SET ROLE platform_regress_app;
BEGIN;
SELECT set_tenant('c0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE first_page(integer, uuid) AS
    SELECT s.* FROM sessions s
    WHERE $2::uuid IS NULL OR s.widget_id = $2
    ORDER BY s.created_at DESC, s.id DESC
    LIMIT $1;
SELECT * FROM regress.plan($$EXECUTE first_page(50, NULL)$$);
PREPARE next_page(integer, timestamptz, uuid, uuid) AS
    SELECT s.* FROM sessions s
    WHERE (s.created_at, s.id) < ($2, $3)
      AND ($4::uuid IS NULL OR s.widget_id = $4)
    ORDER BY s.created_at DESC, s.id DESC
    LIMIT $1;
SELECT * FROM regress.plan($$
    EXECUTE next_page(50, '2025-01-01 09:00:00+00', 'c5000000-0000-4000-8000-000000000bb8', NULL)$$);
ROLLBACK;
RESET ROLE;
