-- Each tenant's keyword statistics (schema/tables.sql: knowledge_keyword_totals,
-- knowledge_lexeme_counts), kept exact by statement triggers on
-- knowledge_chunks and knowledge_documents, and what BM25 reads of them.
--
-- Counted in the tenant's own rows: a word's weight in a tenant's search
-- depends on that tenant's knowledge base only, never on what other tenants
-- wrote (ANALYZE's statistics in pg_stats mix every tenant's rows).

-- The counts one row contributes: to its tenant's totals (lexeme NULL: one
-- row of this length) and to each of its words (one row holding it). The
-- tenant's own lexeme (search/search_vector.sql) is not a word. Plain SQL
-- without SET clauses, so that it is inlined into its callers.
CREATE OR REPLACE FUNCTION platform_keyword_entries(tenant uuid, vector tsvector)
RETURNS SETOF platform_keyword_count
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT tenant, NULL::text, 1::bigint, @extschema@.platform_keyword_length(vector)
    UNION ALL
    SELECT tenant, w.lexeme, 1, 0
    FROM pg_catalog.unnest(pg_catalog.tsvector_to_array(vector)) AS w(lexeme)
    WHERE w.lexeme <> @extschema@.platform_tenant_lexeme(tenant)
$$;

-- Applies the counts of the rows one statement on knowledge_chunks (or
-- knowledge_documents, with `of_documents`) added and removed, netted per tenant
-- and word, so an UPDATE that leaves the text alone changes no word.
-- Lock order: the tenants' totals rows first, in tenant order, then words in
-- (tenant, word) order. A totals row is taken by every statement that
-- changes its tenant's rows and held to commit, so writers of one tenant
-- queue there and never deadlock on words; other tenants' rows are never
-- touched. Tenants deleted by the statement that caused this (a cascade)
-- are skipped: their counts are deleted with them.
CREATE OR REPLACE FUNCTION platform_apply_keyword_counts(
    of_documents boolean, added platform_keyword_count[], removed platform_keyword_count[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    net platform_keyword_count[];
BEGIN
    net := ARRAY(
        SELECT (c.tenant_id, c.lexeme, sum(c.rows * c.sign), sum(c.length * c.sign))::platform_keyword_count
        FROM (SELECT a.*, 1 AS sign FROM unnest(added) a
              UNION ALL SELECT r.*, -1 FROM unnest(removed) r) c
        WHERE EXISTS (SELECT FROM tenants t WHERE t.id = c.tenant_id)
        GROUP BY c.tenant_id, c.lexeme
        HAVING c.lexeme IS NULL OR sum(c.rows * c.sign) <> 0);

    INSERT INTO knowledge_keyword_totals AS t (tenant_id, chunks, chunk_length, documents, document_length)
    SELECT c.tenant_id,
           CASE WHEN of_documents THEN 0 ELSE c.rows END, CASE WHEN of_documents THEN 0 ELSE c.length END,
           CASE WHEN of_documents THEN c.rows ELSE 0 END, CASE WHEN of_documents THEN c.length ELSE 0 END
    FROM unnest(net) c
    WHERE c.lexeme IS NULL
    ORDER BY c.tenant_id
    ON CONFLICT (tenant_id) DO UPDATE
        SET chunks = t.chunks + excluded.chunks, chunk_length = t.chunk_length + excluded.chunk_length,
            documents = t.documents + excluded.documents,
            document_length = t.document_length + excluded.document_length;

    INSERT INTO knowledge_lexeme_counts AS w (tenant_id, lexeme, chunks, documents)
    SELECT c.tenant_id, c.lexeme,
           CASE WHEN of_documents THEN 0 ELSE c.rows END, CASE WHEN of_documents THEN c.rows ELSE 0 END
    FROM unnest(net) c
    WHERE c.lexeme IS NOT NULL
    ORDER BY c.tenant_id, c.lexeme
    ON CONFLICT (tenant_id, lexeme) DO UPDATE
        SET chunks = w.chunks + excluded.chunks, documents = w.documents + excluded.documents;

    DELETE FROM knowledge_lexeme_counts w
    USING unnest(net) c
    WHERE c.lexeme IS NOT NULL AND c.rows < 0
      AND w.tenant_id = c.tenant_id AND w.lexeme = c.lexeme
      AND w.chunks <= 0 AND w.documents <= 0;
END
$$;

-- One trigger function for the six triggers below; each declares the
-- transition tables its command has (INSERT: new_rows, DELETE: old_rows,
-- UPDATE: both), and a branch only names the ones it is given. Rows are
-- summed as they are read: only the (tenant, word) sums are held in memory.
CREATE OR REPLACE FUNCTION platform_keyword_rows_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    added platform_keyword_count[] := '{}';
    removed platform_keyword_count[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        removed := ARRAY(
            SELECT (e.tenant_id, e.lexeme, sum(e.rows), sum(e.length))::platform_keyword_count
            FROM old_rows r, platform_keyword_entries(r.tenant_id, r.search_vector) e
            GROUP BY e.tenant_id, e.lexeme);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        added := ARRAY(
            SELECT (e.tenant_id, e.lexeme, sum(e.rows), sum(e.length))::platform_keyword_count
            FROM new_rows r, platform_keyword_entries(r.tenant_id, r.search_vector) e
            GROUP BY e.tenant_id, e.lexeme);
    END IF;
    PERFORM platform_apply_keyword_counts(TG_TABLE_NAME = 'knowledge_documents', added, removed);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER knowledge_chunks_keywords_insert AFTER INSERT ON knowledge_chunks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_changed();
CREATE OR REPLACE TRIGGER knowledge_chunks_keywords_update AFTER UPDATE ON knowledge_chunks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_changed();
CREATE OR REPLACE TRIGGER knowledge_chunks_keywords_delete AFTER DELETE ON knowledge_chunks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_changed();
CREATE OR REPLACE TRIGGER knowledge_documents_keywords_insert AFTER INSERT ON knowledge_documents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_changed();
CREATE OR REPLACE TRIGGER knowledge_documents_keywords_update AFTER UPDATE ON knowledge_documents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_changed();
CREATE OR REPLACE TRIGGER knowledge_documents_keywords_delete AFTER DELETE ON knowledge_documents
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_changed();

-- TRUNCATE (an operator's) empties the table for every tenant at once.
CREATE OR REPLACE FUNCTION platform_keyword_rows_truncated() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'knowledge_documents' THEN
        UPDATE knowledge_keyword_totals SET documents = 0, document_length = 0;
        UPDATE knowledge_lexeme_counts SET documents = 0 WHERE documents <> 0;
    ELSE
        UPDATE knowledge_keyword_totals SET chunks = 0, chunk_length = 0;
        UPDATE knowledge_lexeme_counts SET chunks = 0 WHERE chunks <> 0;
    END IF;
    DELETE FROM knowledge_lexeme_counts WHERE chunks = 0 AND documents = 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER knowledge_chunks_keywords_truncate AFTER TRUNCATE ON knowledge_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_truncated();
CREATE OR REPLACE TRIGGER knowledge_documents_keywords_truncate AFTER TRUNCATE ON knowledge_documents
    FOR EACH STATEMENT EXECUTE FUNCTION platform_keyword_rows_truncated();

-- What the statistics must hold, computed from the tables alone: the
-- reference for platform_verify_keyword_statistics() and the source of
-- platform_rebuild_keyword_statistics().
CREATE OR REPLACE FUNCTION platform_keyword_statistics_expected(tenant uuid DEFAULT NULL)
RETURNS TABLE (tenant_id uuid, lexeme text, chunks bigint, chunk_length bigint,
               documents bigint, document_length bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT e.tenant_id, e.lexeme,
           coalesce(sum(e.rows) FILTER (WHERE NOT e.of_documents), 0),
           coalesce(sum(e.length) FILTER (WHERE NOT e.of_documents), 0),
           coalesce(sum(e.rows) FILTER (WHERE e.of_documents), 0),
           coalesce(sum(e.length) FILTER (WHERE e.of_documents), 0)
    FROM (SELECT false AS of_documents, e.*
          FROM knowledge_chunks k, platform_keyword_entries(k.tenant_id, k.search_vector) e
          WHERE tenant IS NULL OR k.tenant_id = tenant
          UNION ALL
          SELECT true, e.*
          FROM knowledge_documents d, platform_keyword_entries(d.tenant_id, d.search_vector) e
          WHERE tenant IS NULL OR d.tenant_id = tenant) e
    GROUP BY e.tenant_id, e.lexeme
$$;

-- Every difference between the keyword statistics and the rows they count,
-- across all tenants (an operator's function). No rows: they are exact.
CREATE OR REPLACE FUNCTION platform_verify_keyword_statistics()
RETURNS TABLE (tenant_id uuid, lexeme text, expected_chunks bigint, actual_chunks bigint,
               expected_documents bigint, actual_documents bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH expected AS MATERIALIZED (SELECT * FROM platform_keyword_statistics_expected()),
    actual AS (
        SELECT t.tenant_id, NULL::text AS lexeme, t.chunks, t.chunk_length, t.documents, t.document_length
        FROM knowledge_keyword_totals t
        WHERE t.chunks <> 0 OR t.documents <> 0 OR t.chunk_length <> 0 OR t.document_length <> 0
        UNION ALL
        SELECT w.tenant_id, w.lexeme, w.chunks, NULL, w.documents, NULL FROM knowledge_lexeme_counts w
    )
    SELECT coalesce(x.tenant_id, a.tenant_id), coalesce(x.lexeme, a.lexeme),
           x.chunks, a.chunks, x.documents, a.documents
    FROM expected x
    FULL JOIN actual a ON a.tenant_id = x.tenant_id AND a.lexeme IS NOT DISTINCT FROM x.lexeme
    WHERE (x.chunks, x.documents) IS DISTINCT FROM (a.chunks, a.documents)
       OR (coalesce(x.lexeme, a.lexeme) IS NULL
           AND (x.chunk_length, x.document_length) IS DISTINCT FROM (a.chunk_length, a.document_length))
$$;
COMMENT ON FUNCTION platform_verify_keyword_statistics() IS
    'Every difference between the keyword statistics and the chunks and documents; none on a healthy database.';

-- Counts the rows again (after a load with triggers disabled, or if
-- platform_verify_keyword_statistics() ever reports a difference), for one
-- tenant or for all. Holds off the tenants' writers of chunks and documents
-- until commit: for one tenant by its totals row, which every writer takes
-- first; for all by locks on both tables.
CREATE OR REPLACE FUNCTION platform_rebuild_keyword_statistics(tenant uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF tenant IS NULL THEN
        LOCK TABLE knowledge_documents, knowledge_chunks IN SHARE MODE;
    ELSE
        INSERT INTO knowledge_keyword_totals AS t VALUES (tenant, 0, 0, 0, 0)
        ON CONFLICT (tenant_id) DO UPDATE SET chunks = t.chunks;
    END IF;
    DELETE FROM knowledge_keyword_totals t WHERE tenant IS NULL OR t.tenant_id = tenant;
    DELETE FROM knowledge_lexeme_counts w WHERE tenant IS NULL OR w.tenant_id = tenant;
    CREATE TEMPORARY TABLE platform_keyword_statistics ON COMMIT DROP AS
    SELECT * FROM platform_keyword_statistics_expected(tenant);
    INSERT INTO knowledge_keyword_totals
    SELECT x.tenant_id, x.chunks, x.chunk_length, x.documents, x.document_length
    FROM pg_temp.platform_keyword_statistics x WHERE x.lexeme IS NULL;
    INSERT INTO knowledge_lexeme_counts
    SELECT x.tenant_id, x.lexeme, x.chunks, x.documents
    FROM pg_temp.platform_keyword_statistics x WHERE x.lexeme IS NOT NULL;
    DROP TABLE pg_temp.platform_keyword_statistics;
END
$$;

-- BM25's view of the current tenant's chunks (or documents): the average
-- row length and the weight of each of `lexemes`, in their order. Plain SQL
-- for inlining into the SECURITY DEFINER keyword search, the only caller
-- that can read the statistics.
CREATE OR REPLACE FUNCTION platform_keyword_weights(documents boolean, lexemes text[],
                                                    OUT average_length double precision,
                                                    OUT weights double precision[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH totals AS (
        SELECT CASE WHEN platform_keyword_weights.documents THEN t.documents ELSE t.chunks END AS rows,
               CASE WHEN platform_keyword_weights.documents THEN t.document_length ELSE t.chunk_length END AS length
        FROM (SELECT get_current_tenant_id() AS tenant) c
        LEFT JOIN knowledge_keyword_totals t ON t.tenant_id = c.tenant
    )
    SELECT coalesce(t.length::double precision / nullif(t.rows, 0), 0),
           platform_bm25_weights(coalesce(t.rows, 0), ARRAY(
               SELECT coalesce(CASE WHEN platform_keyword_weights.documents THEN w.documents ELSE w.chunks END, 0)::bigint
               FROM unnest(lexemes) WITH ORDINALITY AS q(lexeme, position)
               LEFT JOIN knowledge_lexeme_counts w
                 ON w.tenant_id = get_current_tenant_id() AND w.lexeme = q.lexeme
               ORDER BY q.position))
    FROM totals t
$$;
