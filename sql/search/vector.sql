-- Vector search over the current tenant's chunks.
--
-- Every search function the application calls (here, keyword.sql,
-- hybrid.sql) is SECURITY INVOKER: row-level security scopes every row to the
-- tenant context, so there is no tenant parameter and no way to reach another
-- tenant's rows. Three internal helpers are SECURITY DEFINER (two of keyword
-- search, one here), and one reads an index itself for the context's tenant
-- (platform_nearest_sketches, src/search/sketch_scan.rs), each for a reason
-- given where it is defined; none returns row content.
-- Arguments are checked in Rust (platform_checked_count,
-- platform_check_query_embedding); fusion is Rust (platform_fuse); the graph
-- walk stays in SQL with ORDER BY embedding <=> query, which is what lets the
-- planner use HNSW.
--
-- Why the vector branch does not starve. The design document orders the
-- shared HNSW index by distance and filters by tenant afterwards: the index
-- hands back ef_search (40) rows of all tenants, and a tenant owning 1% of
-- them keeps about none. Here, per call:
--   * a scope with fewer chunks than platform_exact_scan_threshold() (below;
--     the tenant's count, or a narrower scope's counted with a LIMIT, so
--     counting is bounded) is scanned: its own rows, ranked by their
--     embedding sketches and the best of them compared whole
--     (platform_scanned_nearest_chunks), faster than the graph for them
--     and never starved;
--   * a larger scope uses HNSW with pgvector 0.8's iterative scan, which keeps
--     walking the graph until enough rows pass the tenant filter. The
--     settings are in the functions' SET clauses, so they last for the call
--     only.
-- enable_sort = off is what makes the second case use HNSW at all: the
-- tenant filter comes from a policy whose value (an InitPlan) the planner
-- cannot see, so it guesses the tenant has a handful of rows and prefers
-- "tenant index, then sort", an exact scan of however many rows the tenant
-- really has. The scan ranks sketches in Rust or sorts a MATERIALIZED CTE,
-- which have no other plan, so it is unaffected.

-- The documents a category / document-id filter allows (NULL: no filter).
-- At most 10,000 document ids may be given: the filter is a list the scans
-- compare every row with.
CREATE OR REPLACE FUNCTION platform_search_scope(category text, document_ids uuid[]) RETURNS uuid[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF cardinality(document_ids) > 10000 THEN
        RAISE EXCEPTION 'document_ids has % entries, more than 10000', cardinality(document_ids)
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Filter by category, or search fewer documents at once.';
    END IF;
    IF category IS NULL AND document_ids IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(
        SELECT d.id FROM knowledge_documents d
        -- Qualified: a bare name would be ambiguous with the column.
        WHERE (platform_search_scope.category IS NULL OR d.category = platform_search_scope.category)
          AND (platform_search_scope.document_ids IS NULL OR d.id = ANY (platform_search_scope.document_ids)));
END
$$;

-- Below how many rows in scope a search of `wanted` rows scans the scope
-- (platform_scanned_nearest_chunks) instead of walking HNSW, over the chunks
-- or (`documents`) the documents: platform.exact_scan_limit, or where it is
-- -1, where the two cost about the same. The scan reads each row's sketch
-- once, from an index. The HNSW walk, under the tenant filter, visits about
-- wanted * table rows / scope rows rows to keep `wanted` of the scope, each
-- far dearer than a sketch (a graph step, whole-vector distances and a heap
-- check); so the scan is cheaper below sqrt(ratio * wanted * table rows),
-- where the ratio is the cost of a visited row to that of a scanned one.
-- Never below a floor, the rows a scan reads in the time the walk's own work
-- takes (ef_search candidates and their neighbours), whatever the share.
-- Both constants were measured on the real-text benchmark (docs/search.md).
-- The table's rows: its statistics, or its pages where those lag behind (a
-- page holds about one row with a 1024-dimension vector). Both are public in
-- pg_class: the choice tells a tenant nothing new.
CREATE OR REPLACE FUNCTION platform_exact_scan_threshold(documents boolean, wanted integer) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT CASE
        WHEN platform_exact_scan_limit() >= 0 THEN platform_exact_scan_limit()
        ELSE least(greatest(20000, ceil(sqrt(100.0 * greatest(wanted, 1)
                                            * greatest(c.reltuples,
                                                       pg_relation_size(c.oid) / current_setting('block_size')::real,
                                                       0)))),
                   2147483647)::integer
    END
    FROM pg_class c
    WHERE c.oid = CASE WHEN documents THEN '@extschema@.knowledge_documents'::regclass
                       ELSE '@extschema@.knowledge_chunks'::regclass END
$$;

-- How many chunks (or documents) the current tenant has: its keyword totals
-- (keyword_statistics.sql), which every change of its rows keeps up to date,
-- so a search learns its tenant's size without counting rows. SECURITY
-- DEFINER because the totals are the owner's; a tenant learns the number of
-- its own rows, which count(*) tells it anyway.
CREATE OR REPLACE FUNCTION platform_tenant_knowledge_rows(documents boolean) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT coalesce((SELECT CASE WHEN platform_tenant_knowledge_rows.documents THEN t.documents ELSE t.chunks END
                     FROM knowledge_keyword_totals t
                     WHERE t.tenant_id = get_current_tenant_id()), 0)
$$;

-- The `wanted` chunks of the scope nearest to query_embedding, found by a
-- scan of the scope instead of the graph. A 1024-dimension vector fills half
-- a page, so comparing every chunk's vector reads a page per chunk. Instead
-- the chunks are ranked by the Hamming distance of their embedding sketches
-- (the signs of the vector's coordinates, 128 bytes) to the query's, which
-- platform_nearest_sketches (src/search/sketch_scan.rs) reads from
-- knowledge_chunk_document_idx at dozens of chunks per page, and only the
-- platform.sketch_candidates nearest by sketch are compared whole, by
-- cosine distance; the ranking and the distances returned are the exact
-- ones among those. A scope of no more chunks than that (and
-- platform.sketch_candidates = 0) compares every chunk: exact.
CREATE OR REPLACE FUNCTION platform_scanned_nearest_chunks(
    query_embedding vector, wanted integer, scope uuid[], scope_chunks bigint
) RETURNS TABLE (chunk_id uuid, document_id uuid, distance double precision, rank bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    compared integer := greatest(platform_sketch_candidates(), wanted);
    nearest_ids uuid[];
BEGIN
    IF platform_sketch_candidates() = 0 OR scope_chunks <= compared THEN
        -- MATERIALIZED: sort the scope's own rows, never walk the graph.
        RETURN QUERY
        WITH scoped AS MATERIALIZED (
            SELECT c.id, c.document_id, c.embedding <=> query_embedding AS distance
            FROM knowledge_chunks c
            WHERE scope IS NULL OR c.document_id = ANY (scope)
        )
        SELECT s.id, s.document_id, s.distance, row_number() OVER (ORDER BY s.distance, s.id)
        FROM scoped s ORDER BY s.distance, s.id LIMIT wanted;
    ELSE
        nearest_ids := platform_nearest_sketches('@extschema@.knowledge_chunk_document_idx'::regclass,
                                                 query_embedding::real[], compared, scope, NULL);
        RETURN QUERY
        WITH candidate AS MATERIALIZED (
            SELECT c.id, c.document_id, c.embedding <=> query_embedding AS distance
            FROM knowledge_chunks c WHERE c.id = ANY (nearest_ids)
        )
        SELECT n.id, n.document_id, n.distance, row_number() OVER (ORDER BY n.distance, n.id)
        FROM candidate n ORDER BY n.distance, n.id LIMIT wanted;
    END IF;
END
$$;

-- The same for search_documents: the `wanted` documents with an embedding,
-- of `category` (NULL: all), nearest to query_embedding, ranked by sketch
-- through knowledge_category_idx and the best compared whole.
CREATE OR REPLACE FUNCTION platform_scanned_nearest_documents(
    query_embedding vector, wanted integer, category text, scope_documents bigint
) RETURNS TABLE (document_id uuid, distance double precision, rank bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    wanted_category text := category;  -- "category" alone would be ambiguous with the column
    compared integer := greatest(platform_sketch_candidates(), wanted);
    nearest_ids uuid[];
BEGIN
    IF platform_sketch_candidates() = 0 OR scope_documents <= compared THEN
        RETURN QUERY
        WITH scoped AS MATERIALIZED (
            SELECT d.id, d.embedding <=> query_embedding AS distance FROM knowledge_documents d
            WHERE d.embedding IS NOT NULL AND (wanted_category IS NULL OR d.category = wanted_category)
        )
        SELECT s.id, s.distance, row_number() OVER (ORDER BY s.distance, s.id)
        FROM scoped s ORDER BY s.distance, s.id LIMIT wanted;
    ELSE
        -- The sketch is NULL exactly where the embedding is: those are left out.
        nearest_ids := platform_nearest_sketches('@extschema@.knowledge_category_idx'::regclass,
                                                 query_embedding::real[], compared, NULL, wanted_category);
        RETURN QUERY
        WITH candidate AS MATERIALIZED (
            SELECT d.id, d.embedding <=> query_embedding AS distance
            FROM knowledge_documents d WHERE d.id = ANY (nearest_ids)
        )
        SELECT n.id, n.distance, row_number() OVER (ORDER BY n.distance, n.id)
        FROM candidate n ORDER BY n.distance, n.id LIMIT wanted;
    END IF;
END
$$;

-- The current tenant's chunks nearest to query_embedding, nearest first.
CREATE OR REPLACE FUNCTION vector_search(
    query_embedding vector(1024),
    match_count integer DEFAULT 10,
    category text DEFAULT NULL,
    document_ids uuid[] DEFAULT NULL
) RETURNS TABLE (chunk_id uuid, document_id uuid, distance double precision, rank bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = 100
SET enable_sort = off
-- Where a disabled plan node is the only way, PostgreSQL before 18 prices it
-- at a huge cost, and a build with JIT then compiles the query, which takes
-- far longer than the search itself.
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    wanted integer := platform_checked_count('match_count', vector_search.match_count, 1000);
    scope uuid[] := platform_search_scope(vector_search.category, vector_search.document_ids);
    graph_from integer := platform_exact_scan_threshold(false, wanted);
    scope_chunks bigint;
    nearest_ids uuid[];
BEGIN
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'vector_search needs a query embedding, got NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For a search by words alone use keyword_search, or hybrid_search with a NULL embedding.';
    END IF;
    PERFORM platform_check_query_embedding(query_embedding);
    -- The tenant's own count where the scope is all its chunks; a narrower
    -- scope is counted, up to where the graph takes over.
    IF scope IS NULL THEN
        scope_chunks := platform_tenant_knowledge_rows(false);
    ELSE
        SELECT count(*) INTO scope_chunks
        FROM (SELECT FROM knowledge_chunks c WHERE c.document_id = ANY (scope) LIMIT graph_from) AS counted;
    END IF;
    IF scope_chunks >= graph_from THEN
        SELECT array_agg(n.id) INTO nearest_ids
        FROM (SELECT c.id FROM knowledge_chunks c
              WHERE scope IS NULL OR c.document_id = ANY (scope)
              ORDER BY c.embedding <=> query_embedding
              LIMIT wanted) AS n;
    END IF;
    -- HNSW can come back short: the iterative scan stops at
    -- hnsw.max_scan_tuples, and a graph need not reach every row. Then the
    -- scan answers instead, so a scope with wanted rows returns them.
    IF cardinality(nearest_ids) >= wanted THEN
        RETURN QUERY
        SELECT c.id, c.document_id, c.embedding <=> query_embedding,
               row_number() OVER (ORDER BY c.embedding <=> query_embedding, c.id)
        FROM knowledge_chunks c WHERE c.id = ANY (nearest_ids)
        ORDER BY 4;
    ELSE
        RETURN QUERY SELECT * FROM platform_scanned_nearest_chunks(query_embedding, wanted, scope, scope_chunks);
    END IF;
END
$$;
COMMENT ON FUNCTION vector_search(vector, integer, text, uuid[]) IS
    'The current tenant''s chunks nearest to an embedding (cosine), never fewer than the tenant has up to match_count.';
