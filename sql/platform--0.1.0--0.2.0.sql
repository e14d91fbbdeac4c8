-- platform 0.1.0 -> 0.2.0. Loaded by ALTER EXTENSION platform UPDATE, in one
-- transaction with the extension's owner (a superuser) as the current user.
-- Every change since 0.1.0 is here, in the order it must run; the upgrade
-- test (pgrx-tests/tests/upgrade.rs) checks that the result is the same
-- catalog as a fresh CREATE EXTENSION of 0.2.0, with every row intact.
\echo Use "ALTER EXTENSION platform UPDATE TO '0.2.0'" to load this file. \quit

-- ==================== Lookups before the tenant is known ====================

-- src/secrets.rs
CREATE FUNCTION platform_secret_digest(secret text) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'secret_digest_wrapper';

CREATE FUNCTION platform_secret_equal(stored bytea, presented bytea) RETURNS boolean
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'secret_equal_wrapper';

-- E-mail addresses and OAuth accounts become unique per tenant (tables.sql).
ALTER TABLE users DROP CONSTRAINT user_email_idx;
ALTER TABLE users ADD CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email);
ALTER TABLE accounts DROP CONSTRAINT accounts_provider_account_key;
ALTER TABLE accounts ADD CONSTRAINT accounts_tenant_provider_account_key
    UNIQUE (tenant_id, provider, provider_account_id);

-- sql/lookups.sql, whole.
-- Lookups before the tenant is known: a widget's API key, an Auth.js session
-- token, an OAuth account and an e-mail address each lead to a tenant (and a
-- user), which the application then passes to set_tenant().
--
-- Row-level security hides every row while there is no context, so these are
-- SECURITY DEFINER (owned by the extension's owner, a superuser: CREATE
-- EXTENSION needs one) with a pinned search_path, return only the ids the
-- application needs, and are executable only by roles given app access.
--
-- Secrets are found through their digest (see src/secrets.rs): the index probe
-- compares digests, which says nothing about any key, and the last comparison
-- is constant-time in Rust. A wrong key takes the same path as a right one and
-- returns nothing; only a NULL argument is an error.

-- API keys are stored as 'sha256:<hex>' in the document's api_key column.
CREATE FUNCTION platform_api_key_digest(api_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT 'sha256:' || encode(@extschema@.platform_secret_digest(api_key), 'hex')
$$;

-- Whatever an INSERT or UPDATE writes into tenants.api_key (the document's
-- seed, Drizzle, create_tenant(), rotate_api_key()), only its digest is kept.
-- A value that already is a digest is kept as it is: a dump being restored,
-- or an UPDATE that writes the row back unchanged.
CREATE FUNCTION platform_store_api_key_digest() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF NEW.api_key ~ '^sha256:[0-9a-f]{64}$' THEN
        RETURN NEW;
    END IF;
    -- An unsalted digest of a short key could be brute-forced from a leak.
    IF length(NEW.api_key) < 32 THEN
        RAISE EXCEPTION 'an API key needs at least 32 characters, this one has %', length(NEW.api_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Generate one: rotate_api_key() under the tenant''s context, or platform_new_api_key().';
    END IF;
    NEW.api_key := platform_api_key_digest(NEW.api_key);
    RETURN NEW;
END
$$;

CREATE TRIGGER platform_api_key_digest
    BEFORE INSERT OR UPDATE OF api_key ON tenants
    FOR EACH ROW EXECUTE FUNCTION platform_store_api_key_digest();

-- A lookup argument: NULL is a caller's bug (22004); anything else, however
-- wrong, is only a key that matches nothing.
CREATE FUNCTION platform_require_argument(function_name text, argument_name text, value text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '%() needs %, got NULL', function_name, argument_name
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the value the client presented; a wrong one simply matches nothing.';
    END IF;
END
$$;

-- The tenant whose widget presents this API key, or NULL.
CREATE FUNCTION tenant_for_api_key(api_key text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    presented text;
    found_id uuid;
    stored text;
BEGIN
    PERFORM platform_require_argument('tenant_for_api_key', 'an API key', api_key);
    presented := platform_api_key_digest(api_key);
    SELECT t.id, t.api_key INTO found_id, stored
    FROM tenants t WHERE t.api_key = presented;
    -- Compared even when nothing was found, so both outcomes take one path.
    IF platform_secret_equal(convert_to(coalesce(stored, presented || '!'), 'UTF8'),
                             convert_to(presented, 'UTF8')) THEN
        RETURN found_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_for_api_key(text) IS
    'The tenant of a widget API key, or NULL: call before set_tenant(). Keys are stored as SHA-256 digests.';

-- Sessions are looked up by the digest of their token, through this index.
CREATE INDEX auth_sessions_token_digest_idx
    ON auth_sessions (platform_secret_digest(session_token));

-- The user and tenant of an unexpired Auth.js session, or no row.
CREATE FUNCTION user_for_session_token(session_token text)
RETURNS TABLE (user_id uuid, tenant_id uuid, expires timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    presented bytea;
BEGIN
    PERFORM platform_require_argument('user_for_session_token', 'a session token', session_token);
    presented := platform_secret_digest(session_token);
    RETURN QUERY
    SELECT s.user_id, s.tenant_id, s.expires
    FROM auth_sessions s
    WHERE platform_secret_digest(s.session_token) = presented
      AND platform_secret_equal(platform_secret_digest(s.session_token), presented)
      AND s.expires > now();
END
$$;
COMMENT ON FUNCTION user_for_session_token(text) IS
    'The user and tenant of an unexpired Auth.js session token, or no row: call before set_tenant().';

-- E-mail addresses and OAuth accounts are unique per tenant (one person can
-- belong to several tenants, and a sign-up never learns that an address is
-- taken elsewhere), so these return one row per tenant that has them.
CREATE INDEX user_email_idx ON users (email);
CREATE INDEX accounts_provider_account_idx ON accounts (provider, provider_account_id);

-- The users with this exact e-mail address, one per tenant, with what a
-- password login checks. Normalise case in the application before storing
-- and before calling.
CREATE FUNCTION users_for_email(email text)
RETURNS TABLE (user_id uuid, tenant_id uuid, role text, password_hash text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_require_argument('users_for_email', 'an e-mail address', email);
    RETURN QUERY
    SELECT u.id, u.tenant_id, u.role, u.password_hash
    FROM users u
    WHERE u.email = users_for_email.email
    ORDER BY u.tenant_id;
END
$$;
COMMENT ON FUNCTION users_for_email(text) IS
    'The users with this e-mail address, one row per tenant: call at login, before set_tenant().';

-- The users an OAuth sign-in (Auth.js getUserByAccount) belongs to.
CREATE FUNCTION users_for_oauth_account(provider text, provider_account_id text)
RETURNS TABLE (user_id uuid, tenant_id uuid)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_require_argument('users_for_oauth_account', 'a provider', provider);
    PERFORM platform_require_argument('users_for_oauth_account', 'a provider account id', provider_account_id);
    RETURN QUERY
    SELECT a.user_id, a.tenant_id
    FROM accounts a
    WHERE a.provider = users_for_oauth_account.provider
      AND a.provider_account_id = users_for_oauth_account.provider_account_id
    ORDER BY a.tenant_id;
END
$$;
COMMENT ON FUNCTION users_for_oauth_account(text, text) IS
    'The users of an OAuth account, one row per tenant: call at sign-in, before set_tenant().';

-- A new API key for the current tenant, returned once and stored only as a
-- digest; the old key stops working at commit. Runs as the caller, through
-- the policies: a tenant can rotate only its own key.
CREATE FUNCTION rotate_api_key() RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    new_key text := platform_new_api_key();
BEGIN
    UPDATE tenants SET api_key = new_key WHERE id = require_current_tenant_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the current tenant % does not exist', get_current_tenant_id()
            USING ERRCODE = 'no_data_found',
                  HINT = 'set_tenant() to an existing tenant first.';
    END IF;
    RETURN new_key;
END
$$;
COMMENT ON FUNCTION rotate_api_key() IS
    'Replaces the current tenant''s API key and returns the new one; only its digest is stored.';

-- Keys stored in plain text by 0.1.0 become digests. The client keeps its
-- key; only the stored form changes. Triggers are off for this statement so
-- that updated_at keeps recording the tenant's own last change.
SELECT set_config('session_replication_role', 'replica', true);
UPDATE tenants SET api_key = platform_api_key_digest(api_key)
WHERE api_key !~ '^sha256:[0-9a-f]{64}$';
SELECT set_config('session_replication_role', 'origin', true);

-- platform_new_api_key() is harmless and rotate_api_key() runs as the caller.
GRANT EXECUTE ON FUNCTION platform_new_api_key() TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
    tenant_for_api_key(text),
    user_for_session_token(text),
    users_for_email(text),
    users_for_oauth_account(text, text)
FROM PUBLIC;

-- ==================== Knowledge search ====================

-- Rust functions (src/), as cargo pgrx schema writes them.
-- platform::search::chunk_text
CREATE  FUNCTION "chunk_text"(
	"content" TEXT, /* Option < & str > */
	"chunk_size" INT, /* Option < i32 > */
	"overlap" INT /* Option < i32 > */
) RETURNS TEXT[] /* :: std :: option :: Option < Vec < String > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'chunk_text_wrapper';

-- platform::search::platform_check_query_embedding
CREATE  FUNCTION "platform_check_query_embedding"(
	"embedding" real[] /* Vec < f32 > */
) RETURNS bool /* bool */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'platform_check_query_embedding_wrapper';

-- platform::search::platform_checked_count
CREATE  FUNCTION "platform_checked_count"(
	"name" TEXT, /* & str */
	"value" INT, /* Option < i32 > */
	"max" INT /* i32 */
) RETURNS INT /* i32 */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'platform_checked_count_wrapper';

-- platform::search::platform_fuse
CREATE  FUNCTION "platform_fuse"(
	"vector_ids" uuid[], /* :: std :: option :: Option < Vec < pgrx :: Uuid > > */
	"vector_scores" double precision[], /* :: std :: option :: Option < Vec < f64 > > */
	"keyword_ids" uuid[], /* :: std :: option :: Option < Vec < pgrx :: Uuid > > */
	"keyword_scores" double precision[], /* :: std :: option :: Option < Vec < f64 > > */
	"fusion" TEXT, /* Option < & str > */
	"rrf_k" INT, /* Option < i32 > */
	"vector_weight" double precision, /* Option < f64 > */
	"keyword_weight" double precision, /* Option < f64 > */
	"match_count" INT /* Option < i32 > */
) RETURNS TABLE (
	"id" uuid,  /* pgrx :: Uuid */
	"score" double precision,  /* f64 */
	"vector_rank" bigint,  /* Option < i64 > */
	"keyword_rank" bigint,  /* Option < i64 > */
	"position" bigint  /* i64 */
)
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'platform_fuse_wrapper';

-- sql/search_schema.sql, with the changes an installed database needs.
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
-- configuration, chunks their document's. Triggers off: updated_at keeps
-- recording the tenant's own last change.
SELECT set_config('session_replication_role', 'replica', true);
UPDATE knowledge_documents
    SET text_search_config = platform_text_search_config(NULL, platform_tenant_text_search_setting(tenant_id));
UPDATE knowledge_chunks c SET text_search_config = d.text_search_config
FROM knowledge_documents d WHERE d.tenant_id = c.tenant_id AND d.id = c.document_id;
SELECT set_config('session_replication_role', 'origin', true);
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
-- An upgrade only changes the setting, in the catalog: rebuilding an HNSW
-- index inside ALTER EXTENSION would lock the table for minutes. The graph
-- keeps its 0.1.0 quality until rebuilt without a lock (README, Upgrades):
--   REINDEX INDEX CONCURRENTLY knowledge_chunk_embedding_idx;
--   REINDEX INDEX CONCURRENTLY knowledge_embedding_idx;
ALTER INDEX knowledge_embedding_idx SET (ef_construction = 200);
ALTER INDEX knowledge_chunk_embedding_idx SET (ef_construction = 200);

-- sql/search.sql, whole.
-- Search over the current tenant's knowledge base: vector_search,
-- keyword_search, hybrid_search (their fusion) over chunks, search_documents
-- over documents, and ingest_document.
--
-- All are SECURITY INVOKER: row-level security scopes every row to the tenant
-- context, so there is no tenant parameter and no way to reach another
-- tenant's rows. Arguments are checked in Rust (platform_checked_count,
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

-- Below this many rows in scope an exact scan is used: 1000, about where the
-- two cross on this machine (bench/search.sh large: exact 3.3 ms against
-- HNSW 4.0 ms at 894 chunks, 9.4 against 3.7 ms at 2678; small tenants also
-- lose recall under HNSW, 0.88 at 302 chunks). The setting platform.exact_scan_limit overrides it, for operators
-- tuning a different machine and for tests that need the HNSW path on a small
-- table.
CREATE FUNCTION platform_exact_scan_limit() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('platform.exact_scan_limit', true), '')::integer, 1000) $$;

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
-- wanted ("customer", "account" in a support knowledge base).
CREATE FUNCTION platform_common_word_share() RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 0.02::real $$;

-- Which of `lexemes` are common in the chunks' (or documents') search_vector,
-- according to the statistics ANALYZE keeps (most_common_elems). SECURITY
-- DEFINER because pg_stats hides tables under row-level security; it only
-- answers for these two columns, and only what EXPLAIN already shows to any
-- role that may read the table (the planner's estimate for a word).
-- PL/pgSQL for its plan cache: planning the pg_stats view takes milliseconds.
CREATE FUNCTION platform_common_lexemes(documents boolean, lexemes text[]) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(e.lexeme), '{}')
    FROM pg_stats s,
         unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS e(lexeme, frequency)
    WHERE s.schemaname = '@extschema@'
      AND s.tablename = CASE WHEN documents THEN 'knowledge_documents' ELSE 'knowledge_chunks' END
      AND s.attname = 'search_vector'
      AND e.lexeme = ANY (lexemes)
      AND e.frequency > platform_common_word_share());
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
AS $$
#variable_conflict use_column
DECLARE
    tenant uuid := get_current_tenant_id();
    in_tenant tsquery;
BEGIN
    IF query IS NULL OR numnode(query) = 0
       OR tenant = '00000000-0000-0000-0000-000000000000' THEN
        RETURN;
    END IF;
    in_tenant := query && platform_tenant_tsquery(tenant);
    IF documents THEN
        RETURN QUERY
        SELECT d.id, ts_rank(d.search_vector, query)::double precision AS score
        FROM knowledge_documents d
        WHERE d.tenant_id = tenant AND d.search_vector @@ in_tenant
          AND (platform_keyword_candidates.category IS NULL OR d.category = platform_keyword_candidates.category)
        ORDER BY score DESC, d.id LIMIT wanted;
    ELSE
        RETURN QUERY
        SELECT c.id, ts_rank(c.search_vector, query)::double precision AS score
        FROM knowledge_chunks c
        WHERE c.tenant_id = tenant AND c.search_vector @@ in_tenant
          AND (scope IS NULL OR c.document_id = ANY (scope))
        ORDER BY score DESC, c.id LIMIT wanted;
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

-- sql/finalize.sql: search's definer helpers are for application roles only.
REVOKE EXECUTE ON FUNCTION
    platform_common_lexemes(boolean, text[]),
    platform_keyword_candidates(tsquery, integer, uuid[], boolean, text)
FROM PUBLIC;

-- ==================== Security audit ====================

-- sql/audit.sql: new findings (definer functions executable by PUBLIC,
-- tenant data of other extension tables reachable without row security).
CREATE OR REPLACE FUNCTION platform_audit()
RETURNS TABLE (finding text, object text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    -- Row-level security switched off, or not forced, on a tenant-scoped table.
    SELECT 'row security not enabled and forced', t.table_name::text,
           format('relrowsecurity = %s, relforcerowsecurity = %s', c.relrowsecurity, c.relforcerowsecurity)
    FROM platform_tenant_tables() t JOIN pg_class c ON c.oid = t.table_name
    WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)

    UNION ALL
    -- Anything but one policy per command: a missing one denies a command
    -- outright; an extra permissive one widens what the others allow.
    SELECT 'policy count is not 4', t.table_name::text,
           format('%s policies: %s', count(p.oid),
                  coalesce(string_agg(p.polname::text, ', ' ORDER BY p.polname), 'none'))
    FROM platform_tenant_tables() t LEFT JOIN pg_policy p ON p.polrelid = t.table_name
    GROUP BY t.table_name
    HAVING count(p.oid) <> 4 OR count(DISTINCT p.polcmd) <> 4

    UNION ALL
    -- A login role that reaches the tenant tables through a grant while
    -- skipping row security (superuser or BYPASSRLS).
    SELECT 'login role with app access bypasses row security', quote_ident(r.rolname),
           format('%s; has SELECT on tenants through %s',
                  CASE WHEN r.rolsuper THEN 'superuser' ELSE 'BYPASSRLS' END, quote_ident(g.rolname))
    FROM pg_class c
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    JOIN pg_roles g ON g.oid = a.grantee
    JOIN pg_roles r ON r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls)
    WHERE c.oid = '@extschema@.tenants'::regclass
      AND a.privilege_type = 'SELECT'
      AND a.grantee <> c.relowner
      AND (r.oid = g.oid OR pg_has_role(r.oid, g.oid, 'MEMBER'))
      -- a superuser is a "member" of every role: count only real grants
      AND (r.oid = g.oid OR EXISTS (
              SELECT FROM pg_auth_members m WHERE m.roleid = g.oid AND m.member = r.oid))

    UNION ALL
    -- SECURITY DEFINER without a pinned search_path: whoever controls a
    -- schema early in the caller's path controls what the function runs.
    SELECT 'security definer function without a pinned search_path', p.oid::regprocedure::text,
           'add SET search_path = pg_catalog, <schema>, pg_temp'
    FROM pg_proc p
    WHERE p.prosecdef
      AND p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'platform')
      AND NOT EXISTS (SELECT FROM unnest(p.proconfig) setting WHERE setting LIKE 'search_path=%')

    UNION ALL
    -- A SECURITY DEFINER function anyone may call. Those of the extension see
    -- across tenants (lookups, provisioning) and trust the tenant context,
    -- which any role can set: only application roles may have them.
    SELECT 'security definer function executable by PUBLIC', p.oid::regprocedure::text,
           format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure)
    FROM pg_proc p
    WHERE p.prosecdef
      AND p.pronamespace = (SELECT extnamespace FROM pg_extension WHERE extname = 'platform')
      AND EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')

    UNION ALL
    -- Any other table of the extension holding tenant rows that a role other
    -- than its owner may read or write without row security (the extension's
    -- derived tables are reached only through definer functions).
    SELECT 'tenant data reachable without row security', c.oid::regclass::text,
           string_agg(DISTINCT format('%s to %s', a.privilege_type,
                          CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END), ', ')
    FROM pg_depend d
    JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p')
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'platform')
      AND c.oid NOT IN (SELECT table_name FROM platform_tenant_tables())
      AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
      AND a.grantee <> c.relowner
      AND EXISTS (SELECT FROM pg_attribute t
                  WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
    GROUP BY c.oid

    UNION ALL
    -- Every policy is an equality on the tenant column: without an index
    -- leading with it, every tenant query scans the whole table.
    SELECT 'no index leads with the tenant column', t.table_name::text,
           format('no index on %s starts with %I', t.table_name, t.tenant_column)
    FROM platform_tenant_tables() t
    JOIN pg_attribute a ON a.attrelid = t.table_name AND a.attname = t.tenant_column
    WHERE NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = t.table_name AND i.indkey[0] = a.attnum)
$$;

-- ==================== Application roles ====================

-- sql/app_access.sql: the list of functions an application role may call.
CREATE OR REPLACE FUNCTION platform_app_privileges(role regrole, provisioning boolean, verb text)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    WITH direction AS (
        SELECT CASE verb WHEN 'GRANT' THEN 'TO' ELSE 'FROM' END AS word
    )
    SELECT format('%s USAGE ON SCHEMA %I %s %s', verb, n.nspname, d.word, role)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace, direction d
    WHERE e.extname = 'platform'
    UNION ALL
    SELECT format('%s SELECT, INSERT, UPDATE, DELETE ON TABLE %s %s %s', verb, t, d.word, role)
    FROM (SELECT table_name FROM platform_tenant_tables()
          UNION ALL SELECT '@extschema@.verification_tokens'::regclass) AS tables(t),
         direction d
    UNION ALL
    SELECT format('%s EXECUTE ON FUNCTION %s %s %s', verb, f, d.word, role)
    FROM unnest(ARRAY['@extschema@.get_current_tenant_id()',
                      '@extschema@.require_current_tenant_id()',
                      '@extschema@.set_tenant(uuid)',
                      '@extschema@.list_sessions(integer, text, uuid)',
                      '@extschema@.tenant_for_api_key(text)',
                      '@extschema@.user_for_session_token(text)',
                      '@extschema@.users_for_email(text)',
                      '@extschema@.users_for_oauth_account(text, text)',
                      '@extschema@.rotate_api_key()',
                      -- definer helpers the search functions call (search.sql)
                      '@extschema@.platform_common_lexemes(boolean, text[])',
                      '@extschema@.platform_keyword_candidates(tsquery, integer, uuid[], boolean, text)'
                     ]::regprocedure[]
                || CASE WHEN provisioning
                        THEN ARRAY['@extschema@.create_tenant(text, text, jsonb, text)']::regprocedure[]
                        ELSE '{}' END) AS f,
         direction d
$$;

-- Roles given app access under an earlier version get what the list above
-- now adds (they are the roles holding INSERT on tenants).
DO $grant$
DECLARE
    app_role regrole;
    statement text;
BEGIN
    FOR app_role IN
        SELECT DISTINCT a.grantee::regrole
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = '@extschema@.tenants'::regclass
          AND a.privilege_type = 'INSERT' AND a.grantee <> c.relowner AND a.grantee <> 0
    LOOP
        FOR statement IN
            SELECT s FROM platform_app_privileges(app_role, false, 'GRANT') AS s
            WHERE s LIKE 'GRANT EXECUTE%'
        LOOP
            EXECUTE statement;
        END LOOP;
    END LOOP;
END
$grant$;
