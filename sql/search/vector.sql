-- Vector search over the current tenant's chunks.
--
-- Every search function the application calls (here, keyword.sql,
-- hybrid.sql) is SECURITY INVOKER: row-level security scopes every row to the
-- tenant context, so there is no tenant parameter and no way to reach another
-- tenant's rows. Two internal helpers of keyword search are SECURITY DEFINER,
-- each for a reason given where it is defined; neither returns row content.
-- Arguments are checked in Rust (platform_checked_count,
-- platform_check_query_embedding); fusion is Rust (platform_fuse); the scans
-- stay in SQL with ORDER BY embedding <=> query, which is what lets the
-- planner use HNSW.
--
-- Why the vector branch does not starve. The design document orders the
-- shared HNSW index by distance and filters by tenant afterwards: the index
-- hands back ef_search (40) rows of all tenants, and a tenant owning 1% of
-- them keeps about none. Here, per call:
--   * a scope with fewer chunks than platform_exact_scan_threshold() (below;
--     counted with a LIMIT, so counting is bounded) is scanned exactly: its
--     own rows, sorted by distance (recall 1, and faster than the graph for
--     them);
--   * a larger scope uses HNSW with pgvector 0.8's iterative scan, which keeps
--     walking the graph until enough rows pass the tenant filter. The
--     settings are in the functions' SET clauses, so they last for the call
--     only.
-- enable_sort = off is what makes the second case use HNSW at all: the
-- tenant filter comes from a policy whose value (an InitPlan) the planner
-- cannot see, so it guesses the tenant has a handful of rows and prefers
-- "tenant index, then sort", an exact scan of however many rows the tenant
-- really has. The exact path sorts a MATERIALIZED CTE, which has no other
-- plan, so it is unaffected.

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

-- Below how many rows in scope a search of `wanted` rows scans exactly
-- instead of through HNSW, over the chunks or (`documents`) the documents:
-- platform.exact_scan_limit, or where it is -1, where the two cost about the
-- same. The exact scan reads each row of the scope once. The HNSW walk, under
-- the tenant filter, visits about wanted * table rows / scope rows rows to
-- keep `wanted` of the scope, each dearer than a row of the exact scan (a
-- graph step and a heap check); so the exact scan is cheaper below
-- sqrt(ratio * wanted * table rows), where the ratio is the cost of a visited
-- row to that of a scanned one. Never below a floor, the rows an exact scan
-- reads in the time the walk's own work takes (ef_search candidates and
-- their neighbours), whatever the share. Both constants were measured on the
-- real-text benchmark (docs/search.md). The table's rows: its statistics, or
-- its pages where those lag behind (a page holds about one row with a
-- 1024-dimension vector). Both are public in pg_class: the choice tells a
-- tenant nothing new.
CREATE OR REPLACE FUNCTION platform_exact_scan_threshold(documents boolean, wanted integer) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT CASE
        WHEN platform_exact_scan_limit() >= 0 THEN platform_exact_scan_limit()
        ELSE least(greatest(3000, ceil(sqrt(16.0 * greatest(wanted, 1)
                                            * greatest(c.reltuples,
                                                       pg_relation_size(c.oid) / current_setting('block_size')::real,
                                                       0)))),
                   2147483647)::integer
    END
    FROM pg_class c
    WHERE c.oid = CASE WHEN documents THEN '@extschema@.knowledge_documents'::regclass
                       ELSE '@extschema@.knowledge_chunks'::regclass END
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
    exact_below integer := platform_exact_scan_threshold(false, wanted);
    small boolean;
    nearest_ids uuid[];
BEGIN
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'vector_search needs a query embedding, got NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For a search by words alone use keyword_search, or hybrid_search with a NULL embedding.';
    END IF;
    PERFORM platform_check_query_embedding(query_embedding);
    SELECT count(*) < exact_below INTO small
    FROM (SELECT FROM knowledge_chunks c
          WHERE scope IS NULL OR c.document_id = ANY (scope)
          LIMIT exact_below) AS counted;
    IF NOT small THEN
        SELECT array_agg(n.id) INTO nearest_ids
        FROM (SELECT c.id FROM knowledge_chunks c
              WHERE scope IS NULL OR c.document_id = ANY (scope)
              ORDER BY c.embedding <=> query_embedding
              LIMIT wanted) AS n;
    END IF;
    -- HNSW can come back short: the iterative scan stops at
    -- hnsw.max_scan_tuples, and a graph need not reach every row. Then the
    -- exact scan answers instead, so a scope with wanted rows returns them.
    IF cardinality(nearest_ids) >= wanted THEN
        RETURN QUERY
        SELECT c.id, c.document_id, c.embedding <=> query_embedding,
               row_number() OVER (ORDER BY c.embedding <=> query_embedding, c.id)
        FROM knowledge_chunks c WHERE c.id = ANY (nearest_ids)
        ORDER BY 4;
    ELSE
        -- MATERIALIZED: sort the scope's own rows, never walk the graph.
        RETURN QUERY
        WITH scoped AS MATERIALIZED (
            SELECT c.id, c.document_id, c.embedding <=> query_embedding AS distance
            FROM knowledge_chunks c
            WHERE scope IS NULL OR c.document_id = ANY (scope)
        )
        SELECT s.id, s.document_id, s.distance, row_number() OVER (ORDER BY s.distance, s.id)
        FROM scoped s ORDER BY s.distance, s.id LIMIT wanted;
    END IF;
END
$$;
COMMENT ON FUNCTION vector_search(vector, integer, text, uuid[]) IS
    'The current tenant''s chunks nearest to an embedding (cosine), never fewer than the tenant has up to match_count.';
