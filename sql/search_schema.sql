-- Keyword search over the knowledge base: a stored tsvector on every chunk and
-- document, indexed with GIN, instead of the design document's to_tsvector()
-- over every row on every query.
--
-- Which text search configuration? A generated column needs an immutable
-- expression, so it cannot look up the tenant's setting itself. Each row
-- therefore carries its configuration in `text_search_config regconfig`, and
-- the column is `to_tsvector(text_search_config, ...)`: immutable, yet per
-- tenant. A row inserted without one gets its tenant's
-- `settings->>'textSearchConfig'` (default 'english') from a BEFORE INSERT
-- trigger, and a chunk gets its document's, so a document and its chunks are
-- always stemmed alike. Changing the tenant setting affects new rows; to
-- restem old ones, UPDATE their text_search_config (the vector follows).
--
-- Statements here are ALTERs, so the same text runs on a fresh install and on
-- top of 0.1.0.

-- The configuration named by `requested`, else by the tenant's setting
-- (`tenant_setting`, the text of settings->>'textSearchConfig'), else
-- 'english'. An unknown name is an error (42704) rather than a silent
-- fallback: a typo would otherwise make every keyword query miss.
CREATE FUNCTION platform_text_search_config(requested text, tenant_setting text)
RETURNS regconfig
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    name text := coalesce(nullif(btrim(requested), ''), nullif(btrim(tenant_setting), ''));
    config regconfig;
BEGIN
    IF name IS NULL THEN
        RETURN 'pg_catalog.english'::regconfig;
    END IF;
    BEGIN
        config := name::regconfig;
    EXCEPTION WHEN undefined_object OR invalid_name OR syntax_error OR invalid_schema_name THEN
        RAISE EXCEPTION 'text search configuration "%" (from %) does not exist', left(name, 64),
                CASE WHEN nullif(btrim(requested), '') IS NULL
                     THEN 'the tenant setting textSearchConfig' ELSE 'the text_search_config argument' END
            USING ERRCODE = 'undefined_object',
                  HINT = 'Use one of SELECT cfgname FROM pg_ts_config, for example ''english'' or ''simple''.';
    END;
    RETURN config;
END
$$;

-- A tenant's own setting (row-level security applies: an application role
-- can only read its own tenant's row).
CREATE FUNCTION platform_tenant_text_search_setting(tenant uuid) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT t.settings->>'textSearchConfig' FROM tenants t WHERE t.id = tenant
$$;

ALTER TABLE knowledge_documents ADD COLUMN text_search_config regconfig;
ALTER TABLE knowledge_chunks ADD COLUMN text_search_config regconfig;
-- Rows of an installed 0.1.0 (none on a fresh install) take their tenant's
-- configuration, chunks their document's.
UPDATE knowledge_documents
    SET text_search_config = platform_text_search_config(NULL, platform_tenant_text_search_setting(tenant_id));
UPDATE knowledge_chunks c SET text_search_config = d.text_search_config
FROM knowledge_documents d WHERE d.tenant_id = c.tenant_id AND d.id = c.document_id;
ALTER TABLE knowledge_documents ALTER COLUMN text_search_config SET NOT NULL;
ALTER TABLE knowledge_chunks ALTER COLUMN text_search_config SET NOT NULL;

-- Fills text_search_config when an INSERT leaves it out. Generated columns are
-- computed after BEFORE triggers, so the tsvector sees the value set here.
CREATE FUNCTION platform_fill_text_search_config() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF NEW.text_search_config IS NULL THEN
        IF TG_TABLE_NAME = 'knowledge_chunks' THEN
            SELECT d.text_search_config INTO NEW.text_search_config
            FROM knowledge_documents d
            WHERE d.tenant_id = NEW.tenant_id AND d.id = NEW.document_id;
        END IF;
        -- A chunk whose document is missing fails its foreign key anyway;
        -- this only keeps the error that one rather than a NOT NULL one.
        NEW.text_search_config := coalesce(NEW.text_search_config, platform_text_search_config(
            NULL, platform_tenant_text_search_setting(NEW.tenant_id)));
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER knowledge_documents_text_search_config
    BEFORE INSERT ON knowledge_documents
    FOR EACH ROW EXECUTE FUNCTION platform_fill_text_search_config();
CREATE TRIGGER knowledge_chunks_text_search_config
    BEFORE INSERT ON knowledge_chunks
    FOR EACH ROW EXECUTE FUNCTION platform_fill_text_search_config();

-- Every search_vector also holds one lexeme naming its tenant, and every
-- keyword query ANDs it in. A GIN index cannot lead with tenant_id (that
-- needs btree_gin), so without it a query for common words collects their
-- matches in every tenant, and a large tenant's query visits thousands of
-- other tenants' rows only for row-level security to drop them. With it, the
-- index intersects the words' posting lists with the tenant's own. It never
-- widens what a query sees: row-level security still applies.
CREATE FUNCTION platform_tenant_lexeme(tenant uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT 'tenant:' || replace(tenant::text, '-', '') $$;

CREATE FUNCTION platform_tenant_tsvector(tenant uuid) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$ SELECT array_to_tsvector(ARRAY[platform_tenant_lexeme(tenant)]) $$;

CREATE FUNCTION platform_tenant_tsquery(tenant uuid) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$ SELECT format('''%s''', platform_tenant_lexeme(tenant))::tsquery $$;

-- Titles weigh more than bodies (A over B) in ts_rank.
ALTER TABLE knowledge_documents ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (
        setweight(to_tsvector(text_search_config, title), 'A')
        || setweight(to_tsvector(text_search_config, content), 'B')
        || platform_tenant_tsvector(tenant_id)
    ) STORED;
ALTER TABLE knowledge_chunks ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (
        to_tsvector(text_search_config, content) || platform_tenant_tsvector(tenant_id)
    ) STORED;

CREATE INDEX knowledge_search_idx ON knowledge_documents USING gin (search_vector);
CREATE INDEX knowledge_chunk_search_idx ON knowledge_chunks USING gin (search_vector);

-- The HNSW indexes are rebuilt with ef_construction = 200 instead of the
-- document's 64. Under a tenant filter, with chunks clustered by document and
-- topic, the graph built with 64 misses close neighbours: vector_search's
-- recall@10 against an exact tenant-scoped scan was 0.90 for tenants holding
-- 1-9% of 250,000 chunks (ef_search 200, iterative scan), and 0.98 with 200
-- (ef_search 100 or 200). The build takes about twice as long (106 s against
-- 195 s for 250,000 chunks on 2 cores): docs/search.md. m stays 16.
DROP INDEX knowledge_embedding_idx;
CREATE INDEX knowledge_embedding_idx ON knowledge_documents
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
DROP INDEX knowledge_chunk_embedding_idx;
CREATE INDEX knowledge_chunk_embedding_idx ON knowledge_chunks
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);
