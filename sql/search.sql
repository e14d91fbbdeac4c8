-- Search over the current tenant's knowledge base: vector_search,
-- keyword_search, hybrid_search (their fusion) over chunks, search_documents
-- over documents, and ingest_document.
--
-- Every function the application calls is SECURITY INVOKER: row-level
-- security scopes every row to the tenant context, so there is no tenant
-- parameter and no way to reach another tenant's rows. Two internal helpers
-- are SECURITY DEFINER, each for a reason given where it is defined
-- (platform_keyword_candidates: GIN under row-level security;
-- platform_common_lexemes: word statistics); neither returns row content. Arguments are checked in Rust (platform_checked_count,
-- platform_check_query_embedding); fusion is Rust (platform_fuse); the scans
-- stay in SQL with ORDER BY embedding <=> query, which is what lets the
-- planner use HNSW.
--
-- Why the vector branch does not starve. The design document orders the
-- shared HNSW index by distance and filters by tenant afterwards: the index
-- hands back ef_search (40) rows of all tenants, and a tenant owning 1% of
-- them keeps about none. Here, per call:
--   * a scope with fewer than platform_exact_scan_limit() chunks (counted
--     with a LIMIT, so counting is bounded) is scanned exactly: its own rows,
--     sorted by distance (recall 1, and faster than the graph for them);
--   * a larger scope uses HNSW with pgvector 0.8's iterative scan, which keeps
--     walking the graph until enough rows pass the tenant filter. The
--     settings are in the functions' SET clauses, so they last for the call
--     only. The limit was chosen with bench/search (see docs/search.md).
-- enable_sort = off is what makes the second case use HNSW at all: the
-- tenant filter comes from a policy whose value (an InitPlan) the planner
-- cannot see, so it guesses the tenant has a handful of rows and prefers
-- "tenant index, then sort", an exact scan of however many rows the tenant
-- really has. The exact path sorts a MATERIALIZED CTE, which has no other
-- plan, so it is unaffected.

-- Below this many rows in scope an exact scan is used: 3000 (bench/search.sh
-- large, 250,000 chunks, 2 cores). By median the two cross near 1,000 rows
-- (exact 2.4 ms against HNSW 4.5 ms at 894 rows, 8.1 against 3.4 ms at 2,678),
-- but under a tenant filter HNSW's tail is long when the tenant holds about
-- 1% of the table: the iterative scan visits (and checks the heap of) ~100
-- other tenants' rows per row it keeps, 57 ms for one query of a 2,113-row
-- tenant, while the exact scan of 3,000 rows stays under 10 ms. The setting
-- platform.exact_scan_limit overrides it, for operators tuning another
-- machine and for tests that need the HNSW path on a small table.
CREATE FUNCTION platform_exact_scan_limit() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('platform.exact_scan_limit', true), '')::integer, 3000) $$;

-- The documents a category / document-id filter allows (NULL: no filter).
CREATE FUNCTION platform_search_scope(category text, document_ids uuid[]) RETURNS uuid[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT CASE WHEN category IS NULL AND document_ids IS NULL THEN NULL ELSE ARRAY(
        SELECT d.id FROM knowledge_documents d
        -- Qualified: in an SQL function a bare name means the column first.
        WHERE (platform_search_scope.category IS NULL OR d.category = platform_search_scope.category)
          AND (document_ids IS NULL OR d.id = ANY (document_ids))) END
$$;

-- A word in more than this share of the rows says little about which row is
-- wanted ("customer", "account" in a support knowledge base). The setting
-- platform.common_word_share overrides it (the benchmark measures other
-- shares with it: 0.5% and 1% did not do better at 250,000 chunks).
CREATE FUNCTION platform_common_word_share() RETURNS real
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('platform.common_word_share', true), '')::real, 0.02::real) $$;

-- At most this many matching rows are ranked by one 'any' keyword query. A
-- query's distinctive words can still match thousands of a large tenant's
-- rows (a topic's words in a tenant that writes about little else), and
-- ranking them all was the tail of hybrid_search (p95 38 ms at 250,000
-- chunks). Rows with every word come first, then rows by their rarest word
-- (platform_keyword_candidates), so the rows a rare word picks out are always
-- among those ranked. 300: at 250,000 chunks hybrid_search's p95 fell from
-- 35-38 ms to 21-24 ms, for MRR@10 0.645-0.651 against 0.653-0.660 ranking
-- every match, while 1,000 still left 36-38 ms (docs/search.md). The setting
-- platform.keyword_rank_limit overrides it; 0 ranks every match.
CREATE FUNCTION platform_keyword_rank_limit() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('platform.keyword_rank_limit', true), '')::integer, 300) $$;

-- The share of the chunks' (or documents') search_vector rows holding each of
-- `lexemes`, by the statistics ANALYZE keeps (most_common_elems); a word they
-- do not list is left out. pg_stats hides tables under row-level security, so
-- this answers only where the current user is the owner: inside the SECURITY
-- DEFINER functions below. Plain SQL without SET clauses, so that it is
-- inlined into its callers' cached plans.
CREATE FUNCTION platform_lexeme_frequencies(documents boolean, lexemes text[])
RETURNS TABLE (lexeme text, frequency real)
LANGUAGE sql STABLE
AS $$
    SELECT e.lexeme, max(e.frequency)
    FROM pg_catalog.pg_stats s,
         unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e(lexeme, frequency)
    WHERE s.schemaname = '@extschema@'
      AND s.tablename = CASE WHEN documents THEN 'knowledge_documents' ELSE 'knowledge_chunks' END
      AND s.attname = 'search_vector'
      AND e.lexeme = ANY (lexemes)
    GROUP BY e.lexeme
$$;

-- The lexemes of a tsquery that is a plain OR of lexemes (what the 'any'
-- mode builds), rarest first by ANALYZE's statistics (a word they do not list
-- is rarer than every word they list); NULL for any other tsquery ('all'
-- mode: AND, phrases, negation), which must be matched as a whole. Called by
-- platform_keyword_candidates, so it runs as the owner and sees the statistics.
CREATE FUNCTION platform_or_lexemes_rarest_first(query tsquery, documents boolean) RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
-- Its caller forces custom plans; planning the pg_stats view takes milliseconds.
SET plan_cache_mode = auto
AS $$
DECLARE
    words text[] := ARRAY(SELECT replace(m[1], '''''', '''')
                          FROM regexp_matches(query::text, '''((?:[^'']|'''')*)''', 'g') AS m);
BEGIN
    IF cardinality(words) = 0
       OR (SELECT string_agg(format('''%s''', replace(replace(w, '\', '\\'), '''', '''''')), ' | ')::tsquery
           FROM unnest(words) AS w)::text <> query::text THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY(
        SELECT w FROM unnest(words) AS w
        LEFT JOIN platform_lexeme_frequencies(documents, words) f ON f.lexeme = w
        ORDER BY coalesce(f.frequency, 0), w);
END
$$;

-- Which of `lexemes` are common in the chunks' (or documents') search_vector.
-- SECURITY DEFINER because pg_stats hides tables under row-level security; it
-- only answers for these two columns, and only what EXPLAIN already shows to
-- any role that may read the table (the planner's estimate for a word).
-- PL/pgSQL for its plan cache: planning the pg_stats view takes milliseconds.
CREATE FUNCTION platform_common_lexemes(documents boolean, lexemes text[]) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(f.lexeme), '{}')
            FROM platform_lexeme_frequencies(documents, lexemes) f
            WHERE f.frequency > platform_common_word_share());
END
$$;

-- The tsquery of a query text (NULL when it has no words left).
--   'all': websearch_to_tsquery, which never raises a syntax error: every
--          word must match, quotes make phrases, -word excludes.
--   'any': a row matching any of the query's distinctive words: the words
--          (stemmed, stop words dropped) that are not common in the table,
--          or all of them if every one is. A natural-language question then
--          still finds rows sharing only its rare words with it, and ts_rank
--          puts rows matching more of them first. ts_rank has no inverse
--          document frequency, so without the cut a row with "customer" and
--          "error" would outrank the one row with the error code asked about.
CREATE FUNCTION platform_keyword_query(query_text text, config regconfig, keyword_match text,
                                       documents boolean DEFAULT false)
RETURNS tsquery
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    words text[];
    kept text[];
    every_word tsquery;
BEGIN
    IF keyword_match = 'all' THEN
        every_word := websearch_to_tsquery(config, query_text);
        RETURN CASE WHEN numnode(every_word) > 0 THEN every_word END;
    ELSIF keyword_match = 'any' THEN
        words := tsvector_to_array(to_tsvector(config, query_text));
        kept := ARRAY(SELECT w FROM unnest(words) AS w
                      WHERE w <> ALL (platform_common_lexemes(documents, words)));
        IF cardinality(kept) = 0 THEN
            kept := words;
        END IF;
        -- Lexemes quoted the way tsquery input wants them (backslash and
        -- quote escaped), so each is matched as it is, never re-parsed.
        RETURN (SELECT string_agg(format('''%s''', replace(replace(w, '\', '\\'), '''', '''''')), ' | ')::tsquery
                FROM unnest(kept) AS w);
    END IF;
    RAISE EXCEPTION 'keyword_match must be ''any'' or ''all'', got %', coalesce(quote_literal(left(keyword_match, 64)), 'NULL')
        USING ERRCODE = 'invalid_parameter_value',
              HINT = '''any'': rows sharing any distinctive word; ''all'': every word (websearch syntax).';
END
$$;

-- The current tenant's chunks nearest to query_embedding, nearest first.
CREATE FUNCTION vector_search(
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
AS $$
#variable_conflict use_column
DECLARE
    wanted integer := platform_checked_count('match_count', vector_search.match_count, 1000);
    scope uuid[] := platform_search_scope(vector_search.category, vector_search.document_ids);
    small boolean;
    nearest_ids uuid[];
BEGIN
    IF query_embedding IS NULL THEN
        RAISE EXCEPTION 'vector_search needs a query embedding, got NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For a search by words alone use keyword_search, or hybrid_search with a NULL embedding.';
    END IF;
    PERFORM platform_check_query_embedding(query_embedding);
    SELECT count(*) < platform_exact_scan_limit() INTO small
    FROM (SELECT FROM knowledge_chunks c
          WHERE scope IS NULL OR c.document_id = ANY (scope)
          LIMIT platform_exact_scan_limit()) AS counted;
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

-- The GIN half of keyword search: the current tenant's rows matching `query`
-- (chunks, or documents when `documents`), best ts_rank first, as ids and
-- scores only.
--
-- Why SECURITY DEFINER: under row-level security the planner may not use an
-- index condition whose operator is not LEAKPROOF before the policy's own
-- condition, and tsvector @@ tsquery is not. As the application role the GIN
-- index is therefore never used: every keyword query tests the tenant's rows
-- one by one (14 ms instead of 0.5 ms for a tenant of 4,000 chunks, and
-- seconds at 50,000). Running as the extension's owner, this function
-- applies the tenant filter itself, from the tenant context (never from an
-- argument), and also ANDs in the tenant's lexeme so the index reads only the
-- tenant's postings. Callers join the ids back to the tables as the invoker,
-- under row-level security, before returning anything.
CREATE FUNCTION platform_keyword_candidates(query tsquery, wanted integer, scope uuid[],
                                            documents boolean, category text DEFAULT NULL)
RETURNS TABLE (id uuid, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
SET plan_cache_mode = force_custom_plan
-- Bitmap scans of the GIN index only: under a LIMIT without ORDER BY the
-- planner may otherwise start walking the tenant's rows one by one, hoping
-- a common word fills the limit soon.
SET enable_seqscan = off
SET enable_indexscan = off
AS $$
#variable_conflict use_column
DECLARE
    tenant uuid := get_current_tenant_id();
    in_tenant tsquery;
    rank_limit integer := platform_keyword_rank_limit();
    words text[];
    word text;
    word_number integer;
    words_left integer;
    tier tsquery;
    taken tsquery;
    ids uuid[] := '{}';
    scores double precision[] := '{}';
BEGIN
    IF query IS NULL OR numnode(query) = 0
       OR tenant = '00000000-0000-0000-0000-000000000000' THEN
        RETURN;
    END IF;
    in_tenant := query && platform_tenant_tsquery(tenant);
    IF NOT documents AND rank_limit > 0 THEN
        words := platform_or_lexemes_rarest_first(query, documents);
    END IF;
    IF documents THEN
        RETURN QUERY
        SELECT d.id, ts_rank(d.search_vector, query)::double precision AS score
        FROM knowledge_documents d
        WHERE d.tenant_id = tenant AND d.search_vector @@ in_tenant
          AND (platform_keyword_candidates.category IS NULL OR d.category = platform_keyword_candidates.category)
        ORDER BY score DESC, d.id LIMIT wanted;
    ELSIF rank_limit < 1 OR words IS NULL THEN
        RETURN QUERY
        SELECT c.id, ts_rank(c.search_vector, query)::double precision AS score
        FROM knowledge_chunks c
        WHERE c.tenant_id = tenant AND c.search_vector @@ in_tenant
          AND (scope IS NULL OR c.document_id = ANY (scope))
        ORDER BY score DESC, c.id LIMIT wanted;
    ELSE
        -- At most rank_limit rows are ranked: first the rows with every
        -- word (ts_rank's favourites), then rarest word first: the rows with
        -- the rarest word, then those with the next one but not the rarer
        -- ones (so no row is taken twice), until the limit. Each word may
        -- take its share of what is left (what a rarer word leaves unused
        -- passes on), so that when the statistics cannot tell the words
        -- apart (no ANALYZE yet) a common word cannot crowd out a rare one.
        IF cardinality(words) > 1 THEN
            taken := (SELECT string_agg(format('''%s''', replace(replace(w, '\', '\\'), '''', '''''')), ' & ')::tsquery
                      FROM unnest(words) AS w);
            SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.score), '{}') INTO ids, scores
            FROM (SELECT c.id, ts_rank(c.search_vector, query)::double precision AS score
                  FROM knowledge_chunks c
                  WHERE c.tenant_id = tenant AND c.search_vector @@ (taken && in_tenant)
                    AND (scope IS NULL OR c.document_id = ANY (scope))
                  LIMIT rank_limit) AS t;
        END IF;
        FOR word_number IN 1 .. cardinality(words) LOOP
            word := words[word_number];
            words_left := cardinality(words) - word_number + 1;
            tier := format('''%s''', replace(replace(word, '\', '\\'), '''', ''''''))::tsquery;
            SELECT ids || array_agg(t.id), scores || array_agg(t.score) INTO ids, scores
            FROM (SELECT c.id, ts_rank(c.search_vector, query)::double precision AS score
                  FROM knowledge_chunks c
                  WHERE c.tenant_id = tenant
                    AND c.search_vector @@ (CASE WHEN taken IS NULL THEN tier ELSE tier && (!! taken) END && in_tenant)
                    AND (scope IS NULL OR c.document_id = ANY (scope))
                  LIMIT (rank_limit - cardinality(ids) + words_left - 1) / words_left) AS t;
            EXIT WHEN cardinality(ids) >= rank_limit;
            taken := CASE WHEN taken IS NULL THEN tier ELSE taken || tier END;
        END LOOP;
        RETURN QUERY
        SELECT u.id, u.score FROM unnest(ids, scores) AS u(id, score)
        ORDER BY u.score DESC, u.id LIMIT wanted;
    END IF;
END
$$;

-- The current tenant's chunks matching query_text, best ts_rank first.
CREATE FUNCTION keyword_search(
    query_text text,
    match_count integer DEFAULT 10,
    category text DEFAULT NULL,
    document_ids uuid[] DEFAULT NULL,
    text_search_config text DEFAULT NULL,
    keyword_match text DEFAULT 'any'
) RETURNS TABLE (chunk_id uuid, document_id uuid, keyword_score double precision, rank bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    wanted integer := platform_checked_count('match_count', keyword_search.match_count, 1000);
    config regconfig := platform_text_search_config(keyword_search.text_search_config,
        platform_tenant_text_search_setting(get_current_tenant_id()));
    query tsquery := platform_keyword_query(coalesce(query_text, ''), config, keyword_search.keyword_match);
    scope uuid[] := platform_search_scope(keyword_search.category, keyword_search.document_ids);
    ids uuid[];
    scores double precision[];
BEGIN
    IF query IS NULL OR numnode(query) = 0 THEN
        RETURN;  -- no words left (blank, or stop words only): nothing matches
    END IF;
    SELECT array_agg(k.id ORDER BY k.score DESC, k.id), array_agg(k.score ORDER BY k.score DESC, k.id)
    INTO ids, scores
    FROM platform_keyword_candidates(query, wanted, scope, false) k;
    -- Read back as the invoker, so row-level security has the last word, and
    -- by primary key: a join would let the planner hash the tenant's rows.
    RETURN QUERY
    WITH visible AS MATERIALIZED (
        SELECT c.id, c.document_id FROM knowledge_chunks c WHERE c.id = ANY (ids)
    )
    SELECT u.id, v.document_id, u.score, u.ordinality
    FROM unnest(ids, scores) WITH ORDINALITY AS u(id, score, ordinality)
    JOIN visible v ON v.id = u.id
    ORDER BY u.ordinality;
END
$$;
COMMENT ON FUNCTION keyword_search(text, integer, text, uuid[], text, text) IS
    'The current tenant''s chunks matching a websearch-style query, best ts_rank first.';

-- platform_fuse returns at most match_count rows: say so, or the planner
-- expects 1000 and joins them to the chunks with a hash over the tenant's rows.
ALTER FUNCTION platform_fuse(uuid[], double precision[], uuid[], double precision[], text, integer,
                             double precision, double precision, integer) ROWS 10;

-- A search needs words, a vector or both.
CREATE FUNCTION platform_check_search_terms(query_text text, query_embedding vector) RETURNS void
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
CREATE FUNCTION platform_branch_size(candidates integer, match_count integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT greatest(platform_checked_count('candidates', candidates, 1000),
                    platform_checked_count('match_count', match_count, 1000))
$$;

-- Both branches' candidate lists in the shape platform_fuse takes.
CREATE FUNCTION platform_hybrid_candidates(
    query_text text, query_embedding vector, candidates integer, category text,
    document_ids uuid[], text_search_config text, keyword_match text,
    OUT vector_ids uuid[], OUT vector_scores double precision[],
    OUT keyword_ids uuid[], OUT keyword_scores double precision[]
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
        SELECT array_agg(k.chunk_id ORDER BY k.rank), array_agg(k.keyword_score ORDER BY k.rank)
        INTO keyword_ids, keyword_scores
        FROM keyword_search(query_text, candidates, category, document_ids, text_search_config, keyword_match) k;
    END IF;
END
$$;

-- The current tenant's best chunks for a question: the vector and keyword
-- branches fused. A NULL or blank query_text searches by vector alone, a NULL
-- query_embedding by words alone. The defaults (convex fusion of min-max
-- normalised scores, equal weights, the 'any' keyword mode, 40 candidates per
-- branch) are what bench/search.sh measured best for MRR@10 against RRF,
-- 'all', other weights and 20 or 100 candidates (docs/search.md).
CREATE FUNCTION hybrid_search(
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
             platform_fuse(b.vector_ids, b.vector_scores, b.keyword_ids, b.keyword_scores, fusion,
                           rrf_k, vector_weight, keyword_weight, match_count) AS f
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
-- document's query searches documents. Same scan strategy and fusion.
CREATE FUNCTION platform_document_candidates(
    query_text text, query_embedding vector, candidates integer, category text,
    text_search_config text, keyword_match text,
    OUT vector_ids uuid[], OUT vector_scores double precision[],
    OUT keyword_ids uuid[], OUT keyword_scores double precision[]
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = 200
SET enable_sort = off
AS $$
DECLARE
    wanted_category text := category;  -- "category" alone would be ambiguous with the column
    config regconfig;
    query tsquery;
    small boolean;
BEGIN
    PERFORM platform_check_search_terms(query_text, query_embedding);
    IF query_embedding IS NOT NULL THEN
        PERFORM platform_check_query_embedding(query_embedding);
        SELECT count(*) < platform_exact_scan_limit() INTO small
        FROM (SELECT FROM knowledge_documents d
              WHERE d.embedding IS NOT NULL AND (wanted_category IS NULL OR d.category = wanted_category)
              LIMIT platform_exact_scan_limit()) AS counted;
        IF small THEN
            WITH scoped AS MATERIALIZED (
                SELECT d.id, d.embedding <=> query_embedding AS distance FROM knowledge_documents d
                WHERE d.embedding IS NOT NULL AND (wanted_category IS NULL OR d.category = wanted_category)
            ), best AS (SELECT * FROM scoped s ORDER BY s.distance, s.id LIMIT candidates)
            SELECT array_agg(b.id ORDER BY b.distance, b.id), array_agg(1 - b.distance ORDER BY b.distance, b.id)
            INTO vector_ids, vector_scores FROM best b;
        ELSE
            WITH nearest AS MATERIALIZED (
                SELECT d.id, d.embedding <=> query_embedding AS distance FROM knowledge_documents d
                WHERE d.embedding IS NOT NULL AND (wanted_category IS NULL OR d.category = wanted_category)
                ORDER BY d.embedding <=> query_embedding LIMIT candidates
            )
            SELECT array_agg(n.id ORDER BY n.distance, n.id), array_agg(1 - n.distance ORDER BY n.distance, n.id)
            INTO vector_ids, vector_scores FROM nearest n;
        END IF;
    END IF;
    IF nullif(btrim(query_text), '') IS NOT NULL THEN
        config := platform_text_search_config(text_search_config,
            platform_tenant_text_search_setting(get_current_tenant_id()));
        query := platform_keyword_query(query_text, config, keyword_match, true);
        SELECT array_agg(k.id ORDER BY k.score DESC, k.id), array_agg(k.score ORDER BY k.score DESC, k.id)
        INTO keyword_ids, keyword_scores
        FROM platform_keyword_candidates(query, candidates, NULL, true, wanted_category) k;
        -- Only ids leave here; search_documents reads the rows as the invoker.
    END IF;
END
$$;

CREATE FUNCTION search_documents(
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
             platform_fuse(b.vector_ids, b.vector_scores, b.keyword_ids, b.keyword_scores, fusion,
                           rrf_k, vector_weight, keyword_weight, match_count) AS f
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

-- Stores a document with its chunks and their embeddings in one call, as the
-- current tenant. The caller chunks (chunk_text) and embeds: the extension
-- never calls the network. chunks[i] is stored at position i - 1 with
-- embeddings[i].
CREATE FUNCTION ingest_document(
    title text,
    content text,
    chunks text[],
    embeddings vector[],
    category text DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    document_embedding vector DEFAULT NULL,
    text_search_config text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    document uuid;
BEGIN
    IF cardinality(coalesce(chunks, '{}')) <> cardinality(coalesce(embeddings, '{}'))
       OR array_position(chunks, NULL) IS NOT NULL OR array_position(embeddings, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'ingest_document needs one embedding per chunk and no NULLs: got % chunks and % embeddings',
                cardinality(coalesce(chunks, '{}')), cardinality(coalesce(embeddings, '{}'))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass chunk_text(content, size, overlap) and the embedding of each chunk, in the same order.';
    END IF;
    PERFORM platform_check_query_embedding(e) FROM unnest(embeddings) AS e;
    PERFORM platform_check_query_embedding(document_embedding);
    INSERT INTO knowledge_documents (title, content, category, metadata, embedding, text_search_config)
    VALUES (title, content, category, metadata, document_embedding,
            platform_text_search_config(text_search_config,
                platform_tenant_text_search_setting(require_current_tenant_id())))
    RETURNING id INTO document;
    INSERT INTO knowledge_chunks (document_id, content, embedding, position)
    SELECT document, u.chunk, u.embedding, u.ordinality - 1
    FROM unnest(chunks, embeddings) WITH ORDINALITY AS u(chunk, embedding, ordinality);
    RETURN document;
END
$$;
COMMENT ON FUNCTION ingest_document(text, text, text[], vector[], text, jsonb, vector, text) IS
    'Stores a document, its chunks and their (caller-supplied) embeddings for the current tenant.';
