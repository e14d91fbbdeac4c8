-- Hybrid search: the vector and keyword branches (vector.sql, keyword.sql)
-- fused in Rust (platform_fuse), over chunks (hybrid_search) and over
-- documents (search_documents, as the design document's query searches).

-- platform_fuse returns at most match_count rows: say so, or the planner
-- expects 1000 and joins them to the chunks with a hash over the tenant's rows.
ALTER FUNCTION platform_fuse(uuid[], double precision[], uuid[], double precision[], boolean[], text,
                             integer, double precision, double precision, integer) ROWS 10;

-- A search needs words, a vector or both.
CREATE OR REPLACE FUNCTION platform_check_search_terms(query_text text, query_embedding vector) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF query_embedding IS NULL AND nullif(btrim(query_text), '') IS NULL THEN
        RAISE EXCEPTION 'nothing to search for: the query text is blank and the query embedding is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a query text, a query embedding, or both.';
    END IF;
END
$$;

-- How many candidates each branch hands to fusion: `candidates`, and never
-- fewer than the rows wanted.
CREATE OR REPLACE FUNCTION platform_branch_size(candidates integer, match_count integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT greatest(platform_checked_count('candidates', candidates, 1000),
                    platform_checked_count('match_count', match_count, 1000))
$$;

-- Both branches' candidate lists in the shape platform_fuse takes.
CREATE OR REPLACE FUNCTION platform_hybrid_candidates(
    query_text text, query_embedding vector, candidates integer, category text,
    document_ids uuid[], text_search_config text, keyword_match text,
    OUT vector_ids uuid[], OUT vector_scores double precision[],
    OUT keyword_ids uuid[], OUT keyword_scores double precision[], OUT keyword_exact boolean[]
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_check_search_terms(query_text, query_embedding);
    IF query_embedding IS NOT NULL THEN
        SELECT array_agg(v.chunk_id ORDER BY v.rank), array_agg(1 - v.distance ORDER BY v.rank)
        INTO vector_ids, vector_scores
        FROM vector_search(query_embedding, candidates, category, document_ids) v;
    END IF;
    IF nullif(btrim(query_text), '') IS NOT NULL THEN
        SELECT k.ids, k.scores, k.exact INTO keyword_ids, keyword_scores, keyword_exact
        FROM platform_keyword_branch(query_text, candidates, category, document_ids,
                                     text_search_config, keyword_match) k;
    END IF;
END
$$;

-- The current tenant's best chunks for a question: the vector and keyword
-- branches fused. A NULL or blank query_text searches by vector alone, a NULL
-- query_embedding by words alone. The defaults (convex fusion of min-max
-- normalised scores, equal weights, the 'any' keyword mode, 40 candidates per
-- branch) are what bench/search.sh measured best for MRR@10 against RRF,
-- 'all', other weights and 20 or 100 candidates (docs/search.md).
CREATE OR REPLACE FUNCTION hybrid_search(
    query_text text,
    query_embedding vector(1024),
    match_count integer DEFAULT 10,
    fusion text DEFAULT 'convex',
    candidates integer DEFAULT 40,
    rrf_k integer DEFAULT 60,
    vector_weight double precision DEFAULT 1,
    keyword_weight double precision DEFAULT 1,
    category text DEFAULT NULL,
    document_ids uuid[] DEFAULT NULL,
    text_search_config text DEFAULT NULL,
    keyword_match text DEFAULT 'any'
) RETURNS TABLE (
    chunk_id uuid,
    document_id uuid,
    title text,
    content text,
    score double precision,
    vector_rank bigint,
    keyword_rank bigint
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH fused AS MATERIALIZED (
        SELECT f.*
        FROM platform_hybrid_candidates(
                query_text, query_embedding,
                platform_branch_size(candidates, match_count),
                category, document_ids, text_search_config, keyword_match) AS b,
             platform_fuse(b.vector_ids, b.vector_scores, b.keyword_ids, b.keyword_scores,
                           b.keyword_exact, fusion, rrf_k, vector_weight, keyword_weight,
                           match_count) AS f
    ),
    -- By primary key (a join would let the planner hash all the tenant's
    -- rows), as the invoker: row-level security applies.
    chunk AS MATERIALIZED (
        SELECT c.id, c.document_id, c.content FROM knowledge_chunks c
        WHERE c.id = ANY (ARRAY(SELECT fused.id FROM fused))
    ),
    document AS MATERIALIZED (
        SELECT d.id, d.title FROM knowledge_documents d
        WHERE d.id = ANY (ARRAY(SELECT chunk.document_id FROM chunk))
    )
    SELECT f.id, c.document_id, d.title, c.content, f.score, f.vector_rank, f.keyword_rank
    FROM fused f JOIN chunk c ON c.id = f.id JOIN document d ON d.id = c.document_id
    ORDER BY f.position
$$;
COMMENT ON FUNCTION hybrid_search(text, vector, integer, text, integer, integer, double precision,
                                  double precision, text, uuid[], text, text) IS
    'The current tenant''s best chunks for a question: vector and keyword search fused (RRF or convex).';

-- The document-level counterpart of hybrid_search, over knowledge_documents
-- (their own embedding, and title + content for keywords), as the design
-- document's query searches documents. Same scan strategy, exact fallback
-- and fusion.
CREATE OR REPLACE FUNCTION platform_document_candidates(
    query_text text, query_embedding vector, candidates integer, category text,
    text_search_config text, keyword_match text,
    OUT vector_ids uuid[], OUT vector_scores double precision[],
    OUT keyword_ids uuid[], OUT keyword_scores double precision[], OUT keyword_exact boolean[]
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = 200
SET enable_sort = off
-- Where a disabled plan node is the only way, PostgreSQL before 18 prices it
-- at a huge cost, and a build with JIT then compiles the query, which takes
-- far longer than the search itself.
SET jit = off
AS $$
DECLARE
    wanted_category text := category;  -- "category" alone would be ambiguous with the column
    config regconfig;
    query tsquery;
    lexemes text[];
    graph_from integer;
    scope_documents bigint;
BEGIN
    PERFORM platform_check_search_terms(query_text, query_embedding);
    IF query_embedding IS NOT NULL THEN
        PERFORM platform_check_query_embedding(query_embedding);
        graph_from := platform_exact_scan_threshold(true, candidates);
        IF wanted_category IS NULL THEN
            scope_documents := platform_tenant_knowledge_rows(true);
        ELSE
            SELECT count(*) INTO scope_documents
            FROM (SELECT FROM knowledge_documents d
                  WHERE d.embedding IS NOT NULL AND d.category = wanted_category
                  LIMIT graph_from) AS counted;
        END IF;
        IF scope_documents >= graph_from THEN
            WITH nearest AS MATERIALIZED (
                SELECT d.id, d.embedding <=> query_embedding AS distance FROM knowledge_documents d
                WHERE d.embedding IS NOT NULL AND (wanted_category IS NULL OR d.category = wanted_category)
                ORDER BY d.embedding <=> query_embedding LIMIT candidates
            )
            SELECT array_agg(n.id ORDER BY n.distance, n.id), array_agg(1 - n.distance ORDER BY n.distance, n.id)
            INTO vector_ids, vector_scores FROM nearest n;
        END IF;
        -- As in vector_search: when HNSW comes back short, the scan answers
        -- instead, so a scope with enough rows returns them.
        IF coalesce(cardinality(vector_ids), 0) < candidates THEN
            SELECT array_agg(n.document_id ORDER BY n.rank), array_agg(1 - n.distance ORDER BY n.rank)
            INTO vector_ids, vector_scores
            FROM platform_scanned_nearest_documents(query_embedding, candidates, wanted_category,
                                                    scope_documents) n;
        END IF;
    END IF;
    IF nullif(btrim(query_text), '') IS NOT NULL THEN
        config := platform_text_search_config(text_search_config,
            platform_tenant_text_search_setting(get_current_tenant_id()));
        SELECT q.query, q.lexemes INTO query, lexemes
        FROM platform_keyword_query(query_text, config, keyword_match, true) q;
        SELECT array_agg(k.id ORDER BY k.score DESC, k.id), array_agg(k.score ORDER BY k.score DESC, k.id),
               array_agg(k.exact ORDER BY k.score DESC, k.id)
        INTO keyword_ids, keyword_scores, keyword_exact
        FROM platform_keyword_candidates(query, lexemes, keyword_match, candidates, NULL, true, wanted_category) k;
        -- Only ids leave here; search_documents reads the rows as the invoker.
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION search_documents(
    query_text text,
    query_embedding vector(1024),
    match_count integer DEFAULT 10,
    fusion text DEFAULT 'convex',
    candidates integer DEFAULT 40,
    rrf_k integer DEFAULT 60,
    vector_weight double precision DEFAULT 1,
    keyword_weight double precision DEFAULT 1,
    category text DEFAULT NULL,
    text_search_config text DEFAULT NULL,
    keyword_match text DEFAULT 'any'
) RETURNS TABLE (
    document_id uuid,
    title text,
    content text,
    category text,
    score double precision,
    vector_rank bigint,
    keyword_rank bigint
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH fused AS MATERIALIZED (
        SELECT f.*
        FROM platform_document_candidates(
                query_text, query_embedding,
                platform_branch_size(candidates, match_count),
                category, text_search_config, keyword_match) AS b,
             platform_fuse(b.vector_ids, b.vector_scores, b.keyword_ids, b.keyword_scores,
                           b.keyword_exact, fusion, rrf_k, vector_weight, keyword_weight,
                           match_count) AS f
    ),
    document AS MATERIALIZED (  -- by primary key, as the invoker
        SELECT d.id, d.title, d.content, d.category FROM knowledge_documents d
        WHERE d.id = ANY (ARRAY(SELECT fused.id FROM fused))
    )
    SELECT f.id, d.title, d.content, d.category, f.score, f.vector_rank, f.keyword_rank
    FROM fused f JOIN document d ON d.id = f.id
    ORDER BY f.position
$$;
COMMENT ON FUNCTION search_documents(text, vector, integer, text, integer, integer, double precision,
                                     double precision, text, text, text) IS
    'The current tenant''s best documents for a question (title and content), vector and keyword fused.';
