-- Keyword search over the current tenant's chunks: the stored search_vector
-- (schema/tables.sql) through its GIN index, ranked by BM25 with the
-- tenant's own statistics (keyword_statistics.sql, src/search/bm25.rs). The
-- keyword query is built in Rust (platform_keyword_query, platform_lexemes_any
-- and platform_lexemes_all in src/search/text_search.rs); nothing here
-- splices text into tsquery syntax.

-- The share of the current tenant's chunks (or documents) holding each of
-- `lexemes` that any of them holds. The statistics are the owner's, so this
-- answers only inside the SECURITY DEFINER functions below. Plain SQL
-- without SET clauses, so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION platform_lexeme_frequencies(documents boolean, lexemes text[])
RETURNS TABLE (lexeme text, frequency real)
LANGUAGE sql STABLE
AS $$
    SELECT w.lexeme,
           CASE WHEN platform_lexeme_frequencies.documents THEN w.documents::real / nullif(t.documents, 0)
                ELSE w.chunks::real / nullif(t.chunks, 0) END
    FROM @extschema@.knowledge_lexeme_counts w
    JOIN @extschema@.knowledge_keyword_totals t ON t.tenant_id = w.tenant_id
    WHERE w.tenant_id = @extschema@.get_current_tenant_id() AND w.lexeme = ANY (lexemes)
$$;

-- `lexemes` (the 'any' mode's words) rarest first in the current tenant's
-- rows. Called by platform_keyword_candidates, so it runs as the owner and
-- sees the statistics.
CREATE OR REPLACE FUNCTION platform_lexemes_rarest_first(lexemes text[], documents boolean) RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN ARRAY(
        SELECT w FROM unnest(lexemes) AS w
        LEFT JOIN platform_lexeme_frequencies(documents, lexemes) f ON f.lexeme = w
        ORDER BY coalesce(f.frequency, 0), w);
END
$$;

-- Which of `lexemes` narrow nothing in the current tenant's chunks (or
-- documents): the common ones, in more than platform.common_word_share of
-- them, and the ones none of them holds (which match nothing: left in, they
-- would be all an 'any' query of common words searched for). SECURITY
-- DEFINER because only the owner reads the statistics; it tells a tenant
-- about its own rows only, what a search of them would tell.
CREATE OR REPLACE FUNCTION platform_common_lexemes(documents boolean, lexemes text[]) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN ARRAY(
        SELECT w FROM unnest(lexemes) AS w
        LEFT JOIN platform_lexeme_frequencies(documents, lexemes) f ON f.lexeme = w
        WHERE coalesce(f.frequency, 0) = 0 OR f.frequency > platform_common_word_share());
END
$$;

-- The rows of `tenant` matching `query` with their stored tsvectors: its
-- chunks (within `scope`, a document list, NULL for all), or its documents
-- (of `category`, NULL for all) when `documents`. The row source of every
-- statement of platform_keyword_candidates, which passes the context's
-- tenant; any other caller reads under row-level security besides. SQL
-- without SET clauses, so that it is inlined into its caller's statements.
--
-- The tenant filter compares text on purpose: it is only a recheck, since
-- `query` carries the tenant's lexeme and so limits the GIN scan to the
-- tenant's rows. As a uuid equality it matches the tenant btree index, and
-- the planner, which cannot know that the lexeme and the column agree, ANDs
-- in a bitmap of every row of the tenant, which in a large tenant costs more
-- than the search.
CREATE OR REPLACE FUNCTION platform_keyword_rows(documents boolean, tenant uuid, query tsquery,
                                                 scope uuid[], category text)
RETURNS TABLE (id uuid, search_vector tsvector)
LANGUAGE sql STABLE
AS $$
    -- Arguments qualified: in SQL a column of the same name would win.
    SELECT c.id, c.search_vector FROM @extschema@.knowledge_chunks c
    WHERE NOT platform_keyword_rows.documents
      AND c.tenant_id::text = platform_keyword_rows.tenant::text
      AND c.search_vector @@ platform_keyword_rows.query
      AND (platform_keyword_rows.scope IS NULL OR c.document_id = ANY (platform_keyword_rows.scope))
    UNION ALL
    SELECT d.id, d.search_vector FROM @extschema@.knowledge_documents d
    WHERE platform_keyword_rows.documents
      AND d.tenant_id::text = platform_keyword_rows.tenant::text
      AND d.search_vector @@ platform_keyword_rows.query
      AND (platform_keyword_rows.category IS NULL OR d.category = platform_keyword_rows.category)
$$;

-- The GIN half of keyword search: the current tenant's rows matching `query`
-- (chunks, or documents when `documents`), best BM25 score for `lexemes`
-- first, as ids and scores only, and whether each is exact: holds every one
-- of `lexemes` when none of them is in more than
-- platform.exact_match_word_share of the tenant's rows (a query of rare
-- words, such as an error code, names what it wants; a question in common
-- words does not). In the 'any' `keyword_match` `query` is any of `lexemes`,
-- and a common word cannot crowd the rarer ones out (below); an 'all' query
-- is matched as a whole (every row it matches holds every word) and
-- `lexemes` are its words.
--
-- Why SECURITY DEFINER: under row-level security the planner may not use an
-- index condition whose operator is not LEAKPROOF before the policy's own
-- condition, and tsvector @@ tsquery is not. As the application role the GIN
-- index is therefore never used: every keyword query tests the tenant's rows
-- one by one (14 ms instead of 0.5 ms for a tenant of 4,000 chunks, and
-- seconds at 50,000). Running as the extension's owner, this function
-- applies the tenant filter itself, from the tenant context (never from an
-- argument), and also ANDs in the tenant's lexeme so the index reads only the
-- tenant's postings (platform_keyword_rows). Callers join the ids back to the
-- tables as the invoker, under row-level security, before returning anything.
CREATE OR REPLACE FUNCTION platform_keyword_candidates(query tsquery, lexemes text[], keyword_match text,
                                                       wanted integer, scope uuid[], documents boolean,
                                                       category text DEFAULT NULL)
RETURNS TABLE (id uuid, score double precision, exact boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
-- Planned once per session, not at every call: a call runs one statement
-- per query word, and planning each anew cost a large part of the branch
-- in large tenants (docs/benchmarks.md). With the settings below a bitmap
-- scan of the GIN index is every statement's only plan, whatever the
-- values, and the table `documents` does not name is skipped at run time
-- (a one-time filter).
SET plan_cache_mode = force_generic_plan
-- Bitmap scans of the GIN index only: under a LIMIT without ORDER BY the
-- planner may otherwise start walking the tenant's rows one by one, hoping
-- a common word fills the limit soon.
SET enable_seqscan = off
SET enable_indexscan = off
-- Where a disabled plan node is the only way, PostgreSQL before 18 prices it
-- at a huge cost, and a build with JIT then compiles the query, which takes
-- far longer than the search itself.
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    tenant uuid := get_current_tenant_id();
    tenant_lexeme tsquery;
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
    exacts boolean[] := '{}';
    every_word tsquery;
    distinctive boolean;
    average_length double precision;
    weights double precision[];
BEGIN
    IF query IS NULL OR numnode(query) = 0
       OR tenant = '00000000-0000-0000-0000-000000000000' THEN
        RETURN;
    END IF;
    -- Called directly it takes any tsquery and word list: bounded like the
    -- queries keyword_search builds (at most platform.max_query_terms words,
    -- and the operators between them), since each word costs an index probe.
    IF cardinality(lexemes) > platform_max_query_terms()
       OR numnode(query) > 4 * platform_max_query_terms() THEN
        RAISE EXCEPTION 'the keyword query has more than % words', platform_max_query_terms()
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Shorten the query, or have an operator raise platform.max_query_terms.';
    END IF;
    wanted := platform_checked_count('wanted', wanted, 1000);
    IF keyword_match IS NULL OR keyword_match NOT IN ('any', 'all') THEN
        RAISE EXCEPTION 'keyword_match must be ''any'' or ''all'', got %', coalesce(keyword_match, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass ''any'' or ''all'', as keyword_search() takes them.';
    END IF;
    lexemes := coalesce(lexemes, '{}');
    tenant_lexeme := platform_tenant_tsquery(tenant);
    in_tenant := query && tenant_lexeme;
    -- NULL in the 'all' mode: every match holds every word.
    every_word := CASE WHEN keyword_match = 'any' THEN coalesce(platform_lexemes_all(lexemes), query) END;
    distinctive := cardinality(lexemes) > 0 AND NOT EXISTS (
        SELECT FROM platform_lexeme_frequencies(documents, lexemes) f
        WHERE f.frequency > platform_exact_match_word_share());
    SELECT w.average_length, w.weights INTO average_length, weights
    FROM platform_keyword_weights(documents, lexemes) w;
    IF keyword_match = 'any' AND rank_limit > 0 AND cardinality(lexemes) > 0 THEN
        words := platform_lexemes_rarest_first(lexemes, documents);
    END IF;
    IF rank_limit < 1 OR words IS NULL THEN
        RETURN QUERY
        SELECT r.id, platform_bm25(r.search_vector, lexemes, weights, average_length) AS score,
               distinctive AND (every_word IS NULL OR r.search_vector @@ every_word)
        FROM platform_keyword_rows(documents, tenant, in_tenant, scope, platform_keyword_candidates.category) r
        ORDER BY score DESC, r.id LIMIT wanted;
    ELSE
        -- At most rank_limit rows are ranked: first the rows with every
        -- word, then rarest word first: the rows with
        -- the rarest word, then those with the next one but not the rarer
        -- ones (so no row is taken twice), until the limit. Each word may
        -- take its share of what is left (what a rarer word leaves unused
        -- passes on), so that a common word cannot crowd out a rare one.
        IF cardinality(words) > 1 THEN
            taken := platform_lexemes_all(words);
            SELECT coalesce(array_agg(t.id), '{}'), coalesce(array_agg(t.score), '{}'),
                   coalesce(array_agg(distinctive), '{}')
            INTO ids, scores, exacts
            FROM (SELECT r.id, platform_bm25(r.search_vector, lexemes, weights, average_length) AS score
                  FROM platform_keyword_rows(documents, tenant, taken && tenant_lexeme, scope,
                                             platform_keyword_candidates.category) r
                  LIMIT rank_limit) AS t;
        END IF;
        FOR word_number IN 1 .. cardinality(words) LOOP
            word := words[word_number];
            words_left := cardinality(words) - word_number + 1;
            tier := platform_lexemes_any(ARRAY[word]);
            -- After the first tier only a one-word query's rows hold every word.
            -- The index reads the word's and the tenant's postings only (a
            -- row with the word matches the 'any' query), and the rows already
            -- taken are left out by a recheck: in the index condition, every
            -- tier would read the postings of every word, which grows with
            -- the square of the words.
            SELECT ids || array_agg(t.id), scores || array_agg(t.score),
                   exacts || array_agg(distinctive AND cardinality(words) = 1)
            INTO ids, scores, exacts
            FROM (SELECT r.id, platform_bm25(r.search_vector, lexemes, weights, average_length) AS score
                  FROM platform_keyword_rows(documents, tenant, tier && tenant_lexeme, scope,
                                             platform_keyword_candidates.category) r
                  WHERE taken IS NULL OR NOT r.search_vector @@ taken
                  LIMIT (rank_limit - cardinality(ids) + words_left - 1) / words_left) AS t;
            EXIT WHEN cardinality(ids) >= rank_limit;
            taken := CASE WHEN taken IS NULL THEN tier ELSE taken || tier END;
        END LOOP;
        RETURN QUERY
        SELECT u.id, u.score, u.exact FROM unnest(ids, scores, exacts) AS u(id, score, exact)
        ORDER BY u.score DESC, u.id LIMIT wanted;
    END IF;
END
$$;

-- The keyword branch over the current tenant's chunks, as keyword_search
-- and hybrid_search take it: ids best first with their BM25 scores and
-- whether each holds every distinctive word, from the SECURITY DEFINER
-- candidates (callers read the rows back as the invoker).
CREATE OR REPLACE FUNCTION platform_keyword_branch(
    query_text text, wanted integer, category text, document_ids uuid[],
    text_search_config text, keyword_match text,
    OUT ids uuid[], OUT scores double precision[], OUT exact boolean[]
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    config regconfig := platform_text_search_config(text_search_config,
        platform_tenant_text_search_setting(get_current_tenant_id()));
    scope uuid[] := platform_search_scope(category, document_ids);
    query tsquery;
    lexemes text[];
BEGIN
    wanted := platform_checked_count('match_count', wanted, 1000);
    SELECT q.query, q.lexemes INTO query, lexemes
    FROM platform_keyword_query(query_text, config, keyword_match, false) q;
    IF query IS NULL THEN
        RETURN;  -- no words left (blank, or stop words only): nothing matches
    END IF;
    SELECT array_agg(k.id ORDER BY k.score DESC, k.id), array_agg(k.score ORDER BY k.score DESC, k.id),
           array_agg(k.exact ORDER BY k.score DESC, k.id)
    INTO ids, scores, exact
    FROM platform_keyword_candidates(query, lexemes, keyword_match, wanted, scope, false) k;
END
$$;

-- The current tenant's chunks matching query_text, best BM25 score first.
CREATE OR REPLACE FUNCTION keyword_search(
    query_text text,
    match_count integer DEFAULT 10,
    category text DEFAULT NULL,
    document_ids uuid[] DEFAULT NULL,
    text_search_config text DEFAULT NULL,
    keyword_match text DEFAULT 'any'
) RETURNS TABLE (chunk_id uuid, document_id uuid, keyword_score double precision, rank bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    -- Read back as the invoker, so row-level security has the last word, and
    -- by primary key: a join would let the planner hash the tenant's rows.
    WITH branch AS MATERIALIZED (
        SELECT b.ids, b.scores
        FROM platform_keyword_branch(query_text, match_count, category, document_ids,
                                     text_search_config, keyword_match) b
    ),
    visible AS MATERIALIZED (
        SELECT c.id, c.document_id FROM knowledge_chunks c
        WHERE c.id = ANY (ARRAY(SELECT unnest(branch.ids) FROM branch))
    )
    SELECT u.id, v.document_id, u.score, u.ordinality
    FROM branch, unnest(branch.ids, branch.scores) WITH ORDINALITY AS u(id, score, ordinality)
    JOIN visible v ON v.id = u.id
    ORDER BY u.ordinality
$$;
COMMENT ON FUNCTION keyword_search(text, integer, text, uuid[], text, text) IS
    'The current tenant''s chunks matching a websearch-style query, best BM25 score first.';

