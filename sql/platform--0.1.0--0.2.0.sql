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

-- sql/finalize.sql: search's definer helpers are for application roles only.
REVOKE EXECUTE ON FUNCTION
    platform_common_lexemes(boolean, text[]),
    platform_keyword_candidates(tsquery, integer, uuid[], boolean, text)
FROM PUBLIC;

-- ==================== Cost accounting ====================

-- Rust functions (src/), as cargo pgrx schema writes them.
-- platform::cost_config::platform_late_event_window
CREATE  FUNCTION "platform_late_event_window"() RETURNS interval /* Option < Interval > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'platform_late_event_window_wrapper';

-- sql/cost_settings.sql, whole.
-- What the cost functions read from a tenant's settings and from their
-- arguments, checked in one place.

-- The services cost_events accepts (its CHECK constraint in tables.sql).
CREATE FUNCTION platform_cost_services() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '{vision,voice_stt,voice_tts,llm,embedding,livekit}'::text[] $$;

-- tenants.settings->>'timezone', UTC when absent or empty. Budget months and
-- cost_summary() buckets are aligned in this zone.
CREATE FUNCTION platform_tenant_time_zone(settings jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(settings->>'timezone', ''), 'UTC') $$;

-- The zone itself when PostgreSQL knows it; 22023 with a hint otherwise.
CREATE FUNCTION platform_checked_time_zone(zone text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM now() AT TIME ZONE zone;
    RETURN zone;
EXCEPTION WHEN invalid_parameter_value OR null_value_not_allowed THEN
    RAISE EXCEPTION 'unknown time zone %', coalesce(quote_literal(zone), 'NULL')
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use an IANA zone name such as ''Europe/Berlin'' or ''Asia/Kolkata'' (see pg_timezone_names).';
END
$$;

-- tenants.settings.maxMonthlySpend in USD; NULL (no budget) when absent or
-- not a positive JSON number.
CREATE FUNCTION platform_budget_limit(settings jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(settings->'maxMonthlySpend') = 'number'
                 AND (settings->>'maxMonthlySpend')::numeric > 0
                THEN (settings->>'maxMonthlySpend')::numeric END
$$;

-- tenants.settings.budgetAlertThresholds: percents of the monthly limit at
-- which an alert fires, default 50, 80 and 100. Entries that are not numbers
-- between 0 (exclusive) and 1000 are ignored rather than failing every write.
-- PL/pgSQL, not SQL: a SQL function with a sub-SELECT is not inlined and
-- would be planned again on every call, and the cost triggers call it often.
CREATE FUNCTION platform_budget_thresholds(settings jsonb) RETURNS numeric[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(settings->'budgetAlertThresholds') IS DISTINCT FROM 'array' THEN
        RETURN '{50,80,100}';
    END IF;
    RETURN ARRAY(SELECT DISTINCT round(t::text::numeric, 2)
                 FROM jsonb_array_elements(settings->'budgetAlertThresholds') t
                 WHERE jsonb_typeof(t) = 'number'
                   AND t::text::numeric > 0 AND t::text::numeric <= 1000
                 ORDER BY 1);
END
$$;

-- sql/costs_schema.sql, whole.
-- Cost accounting: what the cost tables need beyond the document's columns,
-- and the two derived tables the triggers keep current (cost_rollups.sql).
-- ALTERs rather than edits of tables.sql, so the same text upgrades 0.1.0.

-- Idempotent recording (record_cost_event): a client-chosen key, unique per
-- tenant. NULL keys never conflict, so the document's INSERTs are unaffected.
ALTER TABLE cost_events ADD COLUMN idempotency_key text;
ALTER TABLE cost_events
    ADD CONSTRAINT cost_events_idempotency_key_check
        CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    ADD CONSTRAINT cost_events_idempotency_key_key UNIQUE (tenant_id, idempotency_key);

-- An alert's identity is (tenant, period, period start, threshold): the
-- unique index is what makes concurrent writers fire it exactly once
-- (INSERT ... ON CONFLICT DO NOTHING). Alerts written by hand, without a
-- period_start, never conflict. period_start leads: the index exists for
-- uniqueness, and the planned tenant-leading indexes serve the tenant's reads.
ALTER TABLE budget_alerts ADD COLUMN period_start timestamptz;
CREATE UNIQUE INDEX budget_alert_identity_idx
    ON budget_alerts (period_start, tenant_id, period, threshold);

-- Spend per tenant, UTC hour, service, provider and model: what cost_summary()
-- reads for whole hours. Sums, never floats: the totals are exact. A row with
-- no events left is deleted, so every row stands for at least one event.
-- token_events counts the events that carried tokens_used, so a sum over rows
-- can be NULL exactly when SUM(tokens_used) over the raw rows would be.
-- (No CHECK on the counts: ON CONFLICT checks the proposed row, which for a
-- delete is a negative delta; platform_verify_cost_rollups() is the check.)
CREATE TABLE cost_rollups_hourly (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    service text NOT NULL,
    provider text,
    model text,
    total_cost_usd numeric NOT NULL,
    total_tokens bigint NOT NULL,
    token_events bigint NOT NULL,
    event_count bigint NOT NULL,
    CONSTRAINT cost_rollups_hourly_key
        UNIQUE NULLS NOT DISTINCT (tenant_id, hour, service, provider, model),
    CONSTRAINT cost_rollups_hourly_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC'))
) WITH (fillfactor = 80);  -- room for HOT updates: every event rewrites its row

-- Spend per tenant and budget month (in the tenant's time zone): one row to
-- lock and read, so budget checks and budget_status() never sum a month.
CREATE TABLE cost_budget_periods (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    spend numeric NOT NULL,
    event_count bigint NOT NULL,
    PRIMARY KEY (tenant_id, period_start)
) WITH (fillfactor = 80);

-- Both hold sums across tenants and are reached only through SECURITY DEFINER
-- functions: no privileges for anyone but the owner (the application role is
-- never granted them). Registered for pg_dump so the tables are known, with a
-- filter that dumps no rows: the rows are derived, and the triggers rebuild
-- them from cost_events as a restore loads it (dumping them too would count
-- every event twice).
REVOKE ALL ON cost_rollups_hourly, cost_budget_periods FROM PUBLIC;
SELECT pg_extension_config_dump('cost_rollups_hourly', 'WHERE false');
SELECT pg_extension_config_dump('cost_budget_periods', 'WHERE false');

-- sql/budgets.sql, whole.
-- Monthly budgets: tenants.settings.maxMonthlySpend (USD) per month in the
-- tenant's time zone, alerts at tenants.settings.budgetAlertThresholds
-- percent (default 50, 80, 100).
--
-- Exactly once: the cost triggers add a statement's spend to the month's
-- cost_budget_periods row and, while holding that row's lock, compare the
-- spend before and after it: writers of one tenant-month take turns, so each
-- crossing of a threshold is seen by exactly one of them, which calls
-- platform_fire_budget_alerts(). The alert's identity (tenant, period, period
-- start, threshold) is a unique index and the INSERT says ON CONFLICT DO
-- NOTHING, so a threshold reached again (after a delete) never fires twice.
-- A settings change (new limit or thresholds) fires what the current spend
-- already reached (cost_rollups.sql).
--
-- Every alert written is announced with pg_notify on the channel
-- 'platform_budget_alerts' (delivered at commit, never for a rollback), with
-- a JSON payload: alert_id, tenant_id, period, period_start, threshold,
-- severity, current_spend, monthly_limit.

CREATE FUNCTION platform_fire_budget_alerts(tenant uuid, month_start timestamptz, spend numeric)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    settings jsonb;
    monthly_limit numeric;
    alert record;
BEGIN
    SELECT t.settings INTO settings FROM tenants t WHERE t.id = tenant;
    monthly_limit := platform_budget_limit(settings);
    IF monthly_limit IS NULL THEN
        RETURN;  -- no budget
    END IF;
    FOR alert IN
        INSERT INTO budget_alerts AS b
            (tenant_id, threshold, current_spend, period, period_start, severity, metadata)
        SELECT tenant, threshold, spend, 'monthly', month_start,
               CASE WHEN threshold < 100 THEN 'warning' ELSE 'critical' END,
               jsonb_build_object('monthlyLimit', monthly_limit)
        FROM unnest(platform_budget_thresholds(settings)) AS threshold
        WHERE spend * 100 >= monthly_limit * threshold
        ORDER BY threshold
        ON CONFLICT (tenant_id, period, period_start, threshold) DO NOTHING
        RETURNING b.id, b.threshold, b.severity
    LOOP
        PERFORM pg_notify('platform_budget_alerts', json_build_object(
            'alert_id', alert.id, 'tenant_id', tenant, 'period', 'monthly',
            'period_start', month_start, 'threshold', alert.threshold,
            'severity', alert.severity, 'current_spend', spend,
            'monthly_limit', monthly_limit)::text);
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION platform_fire_budget_alerts(uuid, timestamptz, numeric) FROM PUBLIC;

-- The current month of the context's tenant: its limit (NULL without a
-- budget), spend so far, percent of the limit used, and the spend projected
-- for the whole month at the rate so far. One index lookup in
-- cost_budget_periods, never a sum over events. PL/pgSQL so that its plan
-- is cached per session (a SECURITY DEFINER SQL function is planned on
-- every call).
CREATE FUNCTION budget_status(
    OUT period_start timestamptz, OUT period_end timestamptz, OUT time_zone text,
    OUT monthly_limit numeric, OUT spend numeric, OUT event_count bigint,
    OUT percent_used numeric, OUT projected_spend numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH tenant AS (
        SELECT t.id, platform_budget_limit(t.settings) AS monthly_limit,
               platform_tenant_time_zone(t.settings) AS zone
        FROM tenants t WHERE t.id = require_current_tenant_id()
    ), month AS (
        SELECT tenant.*, date_trunc('month', now(), tenant.zone) AS starts,
               (date_trunc('month', now() AT TIME ZONE tenant.zone) + interval '1 month')
                   AT TIME ZONE tenant.zone AS ends
        FROM tenant
    )
    SELECT m.starts, m.ends, m.zone, m.monthly_limit, coalesce(p.spend, 0),
           coalesce(p.event_count, 0),
           round(coalesce(p.spend, 0) * 100 / m.monthly_limit, 2),
           round(coalesce(p.spend, 0) * extract(epoch FROM m.ends - m.starts)
                 / greatest(extract(epoch FROM now() - m.starts), 1), 6)
    FROM month m
    LEFT JOIN cost_budget_periods p ON p.tenant_id = m.id AND p.period_start = m.starts;
END
$$;
COMMENT ON FUNCTION budget_status() IS
    'The current tenant''s budget month: limit, spend, percent used, projected month-end spend.';

-- sql/cost_rollups.sql, whole.
-- Keeping cost_rollups_hourly and cost_budget_periods equal to what
-- cost_events says, in the same transaction as every change to it.
--
-- Statement-level AFTER triggers with transition tables: a statement's rows
-- are grouped first, so a batch of 1,000 events in one hour costs one upsert,
-- not 1,000. Every change is a delta (INSERT adds, DELETE subtracts, UPDATE
-- subtracts the old row and adds the new one), applied with INSERT ... ON
-- CONFLICT DO UPDATE SET x = x + delta: concurrent writers to the same row
-- queue on its lock and each adds to the committed value, so none is lost.
--
-- Lock order, against deadlocks: a statement locks its budget-period rows
-- first, then its hourly rows, each in key order. An hourly row belongs to
-- one budget month of its tenant, so whoever waits for an hourly row already
-- holds that month; transactions of one INSERT statement (record_cost_event,
-- a batch INSERT) therefore never deadlock. (An UPDATE applies its old and new
-- rows in two passes, so two UPDATEs moving events in opposite directions can.)
--
-- The late-event window (platform.cost_late_event_window, default 35 days,
-- superuser-only) refuses INSERTs of events older than now() minus the window,
-- so closed months (and their cost_summaries) stay as reported. UPDATE and
-- DELETE are corrections and apply at any age. Sessions with
-- row_security = off (pg_dump's scripts, a superuser's backfill) are not held
-- to the window and fire no budget alerts: a restore replays history, it does
-- not happen now.

CREATE TYPE platform_cost_delta AS (
    tenant_id uuid,
    hour timestamptz,
    month_start timestamptz,   -- the budget month, in the tenant's zone
    service text,
    provider text,
    model text,
    cost numeric,
    tokens bigint,
    token_events bigint,
    events bigint
);

-- Whether spend going from `before` to `after` crosses one of the tenant's
-- thresholds. PL/pgSQL without queries: it runs for every statement.
CREATE FUNCTION platform_budget_crossed(before numeric, after numeric, settings jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    monthly_limit constant numeric := platform_budget_limit(settings);
    threshold numeric;
BEGIN
    IF monthly_limit IS NULL OR after <= before THEN
        RETURN false;
    END IF;
    FOREACH threshold IN ARRAY platform_budget_thresholds(settings) LOOP
        IF before * 100 < monthly_limit * threshold AND after * 100 >= monthly_limit * threshold THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

-- Adds sign x deltas to both tables, then fires the budget alerts whose
-- threshold the new spend crossed. Called by the trigger function below,
-- whose owner rights and search_path it runs under (no SECURITY DEFINER or
-- SET of its own: both cost time on every statement); not executable by
-- PUBLIC, and useless to anyone without privileges on the two tables.
CREATE FUNCTION platform_apply_cost_deltas(deltas platform_cost_delta[], sign integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    zeroed tid[];
    grown record;
    replaying constant boolean := current_setting('row_security') = 'off';
BEGIN
    -- Budget months first (see the lock order above).
    FOR grown IN
        WITH changed AS (
            SELECT d.tenant_id, d.month_start, sign * sum(d.cost) AS cost,
                   sign * sum(d.events) AS events
            FROM unnest(deltas) d
            GROUP BY d.tenant_id, d.month_start
        ), upserted AS (
            INSERT INTO cost_budget_periods AS p (tenant_id, period_start, spend, event_count)
            SELECT c.tenant_id, c.month_start, c.cost, c.events FROM changed c
            ORDER BY c.tenant_id, c.month_start
            ON CONFLICT (tenant_id, period_start) DO UPDATE
                SET spend = p.spend + excluded.spend,
                    event_count = p.event_count + excluded.event_count
            RETURNING p.ctid AS row_id, p.tenant_id, p.period_start, p.spend, p.event_count
        )
        SELECT u.*, c.cost AS delta, t.settings
        FROM upserted u
        JOIN changed c ON c.tenant_id = u.tenant_id AND c.month_start = u.period_start
        JOIN tenants t ON t.id = u.tenant_id
    LOOP
        IF grown.event_count = 0 THEN
            DELETE FROM cost_budget_periods WHERE ctid = grown.row_id;
        ELSIF NOT replaying
              AND platform_budget_crossed(grown.spend - grown.delta, grown.spend, grown.settings) THEN
            -- Crossed here, under the row lock: no other writer saw this crossing.
            PERFORM platform_fire_budget_alerts(grown.tenant_id, grown.period_start, grown.spend);
        END IF;
    END LOOP;

    WITH changed AS (
        SELECT d.tenant_id, d.hour, d.service, d.provider, d.model,
               sign * sum(d.cost) AS cost, sign * sum(d.tokens) AS tokens,
               sign * sum(d.token_events) AS token_events, sign * sum(d.events) AS events
        FROM unnest(deltas) d
        GROUP BY d.tenant_id, d.hour, d.service, d.provider, d.model
    ), upserted AS (
        INSERT INTO cost_rollups_hourly AS r
            (tenant_id, hour, service, provider, model,
             total_cost_usd, total_tokens, token_events, event_count)
        SELECT * FROM changed c
        ORDER BY c.tenant_id, c.hour, c.service, c.provider, c.model
        ON CONFLICT (tenant_id, hour, service, provider, model) DO UPDATE
            SET total_cost_usd = r.total_cost_usd + excluded.total_cost_usd,
                total_tokens = r.total_tokens + excluded.total_tokens,
                token_events = r.token_events + excluded.token_events,
                event_count = r.event_count + excluded.event_count
        RETURNING r.ctid AS row_id, r.event_count
    )
    SELECT array_agg(row_id) FILTER (WHERE event_count = 0) INTO zeroed FROM upserted;
    IF zeroed IS NOT NULL THEN
        DELETE FROM cost_rollups_hourly WHERE ctid = ANY (zeroed);
    END IF;
END
$$;

-- The deltas join tenants (for the zone of the budget month), which also
-- leaves out the rows of a tenant being deleted: its cascade removes the
-- rollups, and a delta for it would resurrect them.
--
-- One trigger function for the three triggers below; each declares the
-- transition tables its command has (INSERT: new_rows, DELETE: old_rows,
-- UPDATE: both), and a branch only names the ones it is given. The grouping
-- query is written twice, once per transition table: a transition table is
-- visible only to queries of the trigger function itself, and passing whole
-- rows on to a shared function would hold a large statement's rows in memory.
CREATE FUNCTION platform_cost_events_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    late_window constant interval := platform_late_event_window();
    replaying constant boolean := current_setting('row_security') = 'off';
    oldest timestamptz;
    inserted bigint;
    one record;
    spend numeric;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT min("timestamp"), count(*) INTO oldest, inserted FROM new_rows;
        IF late_window IS NOT NULL AND NOT replaying AND oldest < now() - late_window THEN
            RAISE EXCEPTION 'cost event at % is older than the late-event window of %',
                    oldest, late_window
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Events older than platform.cost_late_event_window are refused so closed months stay as reported; a superuser can backfill with SET row_security = off.';
        END IF;
        IF inserted = 1 THEN
            -- One event (record_cost_event, a single-row INSERT): the same two
            -- upserts as platform_apply_cost_deltas(), in the same order, without
            -- building and grouping a set, which halves the cost per statement.
            SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC') AS hour,
                   date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)) AS month_start,
                   e.service, e.provider, e.metadata->>'model' AS model, e.cost_usd,
                   e.tokens_used, t.settings
            INTO one FROM new_rows e JOIN tenants t ON t.id = e.tenant_id;
            INSERT INTO cost_budget_periods AS p (tenant_id, period_start, spend, event_count)
            VALUES (one.tenant_id, one.month_start, one.cost_usd, 1)
            ON CONFLICT (tenant_id, period_start) DO UPDATE
                SET spend = p.spend + excluded.spend, event_count = p.event_count + 1
            RETURNING p.spend INTO spend;
            IF NOT replaying AND platform_budget_crossed(spend - one.cost_usd, spend, one.settings) THEN
                PERFORM platform_fire_budget_alerts(one.tenant_id, one.month_start, spend);
            END IF;
            INSERT INTO cost_rollups_hourly AS r
                (tenant_id, hour, service, provider, model,
                 total_cost_usd, total_tokens, token_events, event_count)
            VALUES (one.tenant_id, one.hour, one.service, one.provider, one.model, one.cost_usd,
                    coalesce(one.tokens_used, 0), (one.tokens_used IS NOT NULL)::int, 1)
            ON CONFLICT (tenant_id, hour, service, provider, model) DO UPDATE
                SET total_cost_usd = r.total_cost_usd + excluded.total_cost_usd,
                    total_tokens = r.total_tokens + excluded.total_tokens,
                    token_events = r.token_events + excluded.token_events,
                    event_count = r.event_count + 1;
            RETURN NULL;
        END IF;
    ELSE
        PERFORM platform_apply_cost_deltas(ARRAY(
            SELECT d::platform_cost_delta FROM (
                SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC'),
                       date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)),
                       e.service, e.provider, e.metadata->>'model', sum(e.cost_usd),
                       coalesce(sum(e.tokens_used), 0), count(e.tokens_used), count(*)
                FROM old_rows e JOIN tenants t ON t.id = e.tenant_id
                GROUP BY 1, 2, 3, 4, 5, 6) d), -1);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM platform_apply_cost_deltas(ARRAY(
            SELECT d::platform_cost_delta FROM (
                SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC'),
                       date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)),
                       e.service, e.provider, e.metadata->>'model', sum(e.cost_usd),
                       coalesce(sum(e.tokens_used), 0), count(e.tokens_used), count(*)
                FROM new_rows e JOIN tenants t ON t.id = e.tenant_id
                GROUP BY 1, 2, 3, 4, 5, 6) d), 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER cost_events_rollup_insert AFTER INSERT ON cost_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_cost_events_changed();
CREATE TRIGGER cost_events_rollup_update AFTER UPDATE ON cost_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_cost_events_changed();
CREATE TRIGGER cost_events_rollup_delete AFTER DELETE ON cost_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION platform_cost_events_changed();

-- What both tables must hold, computed from cost_events alone: the reference
-- for platform_verify_cost_rollups() and the source of platform_rebuild_cost_rollups().
CREATE FUNCTION platform_cost_rollups_expected(
    tenant uuid DEFAULT NULL, OUT tenant_id uuid, OUT hour timestamptz, OUT service text, OUT provider text,
    OUT model text, OUT total_cost_usd numeric, OUT total_tokens bigint,
    OUT token_events bigint, OUT event_count bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT e.tenant_id, date_trunc('hour', e."timestamp", 'UTC'), e.service, e.provider,
           e.metadata->>'model', sum(e.cost_usd), coalesce(sum(e.tokens_used), 0),
           count(e.tokens_used), count(*)
    FROM cost_events e
    WHERE tenant IS NULL OR e.tenant_id = tenant
    GROUP BY 1, 2, 3, 4, 5
$$;

CREATE FUNCTION platform_cost_budget_periods_expected(
    tenant uuid DEFAULT NULL, OUT tenant_id uuid, OUT period_start timestamptz, OUT spend numeric, OUT event_count bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT e.tenant_id, date_trunc('month', e."timestamp", platform_tenant_time_zone(t.settings)),
           sum(e.cost_usd), count(*)
    FROM cost_events e JOIN tenants t ON t.id = e.tenant_id
    WHERE tenant IS NULL OR e.tenant_id = tenant
    GROUP BY 1, 2
$$;

-- Every difference between the two derived tables and cost_events, across
-- all tenants (an operator's function: not executable by PUBLIC). No rows
-- means the rollups are exact.
CREATE FUNCTION platform_verify_cost_rollups()
RETURNS TABLE (kind text, tenant_id uuid, bucket timestamptz, service text,
               provider text, model text, expected_cost_usd numeric, actual_cost_usd numeric,
               expected_events bigint, actual_events bigint,
               expected_tokens bigint, actual_tokens bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT 'hourly rollup', coalesce(x.tenant_id, r.tenant_id), coalesce(x.hour, r.hour),
           coalesce(x.service, r.service), coalesce(x.provider, r.provider),
           coalesce(x.model, r.model), x.total_cost_usd, r.total_cost_usd,
           x.event_count, r.event_count, x.total_tokens, r.total_tokens
    FROM platform_cost_rollups_expected() x
    FULL JOIN cost_rollups_hourly r
      ON r.tenant_id = x.tenant_id AND r.hour = x.hour AND r.service = x.service
     AND r.provider IS NOT DISTINCT FROM x.provider AND r.model IS NOT DISTINCT FROM x.model
    WHERE (x.total_cost_usd, x.total_tokens, x.token_events, x.event_count)
          IS DISTINCT FROM (r.total_cost_usd, r.total_tokens, r.token_events, r.event_count)
    UNION ALL
    SELECT 'budget month', coalesce(x.tenant_id, p.tenant_id), coalesce(x.period_start, p.period_start),
           NULL, NULL, NULL, x.spend, p.spend, x.event_count, p.event_count, NULL, NULL
    FROM platform_cost_budget_periods_expected() x
    FULL JOIN cost_budget_periods p
      ON p.tenant_id = x.tenant_id AND p.period_start = x.period_start
    WHERE (x.spend, x.event_count) IS DISTINCT FROM (p.spend, p.event_count)
$$;
COMMENT ON FUNCTION platform_verify_cost_rollups() IS
    'Every difference between the cost rollups and cost_events; none on a healthy database.';

-- Recomputes both tables from cost_events (after a load with triggers
-- disabled, or if platform_verify_cost_rollups() ever reports a difference).
-- Takes a lock that waits for, and holds off, every writer of cost_events.
CREATE FUNCTION platform_rebuild_cost_rollups(tenant uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    LOCK TABLE cost_events IN SHARE MODE;
    DELETE FROM cost_rollups_hourly r WHERE tenant IS NULL OR r.tenant_id = tenant;
    DELETE FROM cost_budget_periods p WHERE tenant IS NULL OR p.tenant_id = tenant;
    INSERT INTO cost_rollups_hourly SELECT * FROM platform_cost_rollups_expected(tenant);
    INSERT INTO cost_budget_periods SELECT * FROM platform_cost_budget_periods_expected(tenant);
END
$$;

-- Settings that change what has been counted or what is due. A new time
-- zone moves the budget months: that tenant's are recomputed in the new zone.
-- A new limit or new thresholds can put this month's spend above a threshold
-- no event will cross any more: that alert fires now.
CREATE FUNCTION platform_tenant_cost_settings_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    zone constant text := platform_tenant_time_zone(NEW.settings);  -- checked before the UPDATE
    month_start constant timestamptz := date_trunc('month', now(), zone);
    spend numeric;
BEGIN
    IF zone IS DISTINCT FROM platform_tenant_time_zone(OLD.settings) THEN
        PERFORM platform_rebuild_cost_rollups(NEW.id);
    END IF;
    SELECT p.spend INTO spend FROM cost_budget_periods p
    WHERE p.tenant_id = NEW.id AND p.period_start = month_start;
    IF spend > 0 AND current_setting('row_security') <> 'off' THEN
        PERFORM platform_fire_budget_alerts(NEW.id, month_start, spend);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tenants_cost_settings_changed AFTER UPDATE OF settings ON tenants
    FOR EACH ROW
    WHEN (platform_tenant_time_zone(OLD.settings) IS DISTINCT FROM platform_tenant_time_zone(NEW.settings)
          OR platform_budget_limit(OLD.settings) IS DISTINCT FROM platform_budget_limit(NEW.settings)
          OR OLD.settings->'budgetAlertThresholds' IS DISTINCT FROM NEW.settings->'budgetAlertThresholds')
    EXECUTE FUNCTION platform_tenant_cost_settings_changed();

-- A zone PostgreSQL does not know would make every cost write of the tenant
-- fail later (budget months are computed in it): refuse it when it is set.
CREATE FUNCTION platform_tenant_time_zone_checked() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_checked_time_zone(platform_tenant_time_zone(NEW.settings));
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_time_zone_checked BEFORE INSERT OR UPDATE OF settings ON tenants
    FOR EACH ROW WHEN (NEW.settings ? 'timezone')
    EXECUTE FUNCTION platform_tenant_time_zone_checked();

REVOKE EXECUTE ON FUNCTION
    platform_apply_cost_deltas(platform_cost_delta[], integer),
    platform_cost_rollups_expected(uuid),
    platform_cost_budget_periods_expected(uuid),
    platform_verify_cost_rollups(),
    platform_rebuild_cost_rollups(uuid)
FROM PUBLIC;

-- sql/cost_summary.sql, whole.
-- cost_summary(): the tenant's spend per time bucket (hour, day, week, month,
-- or the whole range) and service, optionally per provider and model, with
-- buckets aligned in the tenant's time zone. Exact: the same sums as a GROUP
-- BY date_trunc(group_by, "timestamp", zone) over the raw rows of the range.
--
-- How it stays exact and fast: each bucket [lo, hi) (clipped to the range)
-- is split into the whole UTC hours inside it, read from cost_rollups_hourly,
-- and the at most two partial hours at its ends, read from cost_events. In a
-- whole-hour zone (UTC, Europe/Berlin, America/New_York, across DST too) day
-- boundaries are whole UTC hours, so only the range's own ends read raw rows.
-- In a :30 or :45 zone (Asia/Kolkata, Asia/Kathmandu) each bucket boundary
-- cuts one UTC hour in two, and that hour is read raw on both sides: one
-- hour of raw rows per day bucket, never a day's worth.
--
-- The range is half-open, [start_at, end_at): adjacent ranges never count an
-- event twice (the document's BETWEEN-like gte/lte did at the shared instant).

CREATE FUNCTION cost_summary(
    start_at timestamptz,
    end_at timestamptz,
    group_by text DEFAULT 'day',
    detail text DEFAULT 'service',
    time_zone text DEFAULT NULL
) RETURNS TABLE (
    bucket_start timestamptz, service text, provider text, model text,
    total_cost_usd numeric, total_tokens bigint, event_count bigint
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := require_current_tenant_id();
    zone text := cost_summary.time_zone;
    unit text := group_by;   -- the date_trunc unit ('range' has none)
    step interval;
    buckets bigint;
BEGIN
    IF group_by IS NULL OR group_by NOT IN ('hour', 'day', 'week', 'month', 'range') THEN
        RAISE EXCEPTION 'unknown group_by %', coalesce(quote_literal(group_by), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'group_by is one of hour, day, week, month, or range (one bucket for the whole range).';
    END IF;
    IF detail IS NULL OR detail NOT IN ('service', 'provider', 'model') THEN
        RAISE EXCEPTION 'unknown detail %', coalesce(quote_literal(detail), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'detail is service (per service), provider (per service and provider) or model (per service, provider and model).';
    END IF;
    IF start_at IS NULL OR end_at IS NULL OR NOT isfinite(start_at) OR NOT isfinite(end_at) THEN
        RAISE EXCEPTION 'cost_summary() needs a bounded range, got [%, %)',
                coalesce(start_at::text, 'NULL'), coalesce(end_at::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass finite start_at and end_at, for example the first instants of two months.';
    END IF;
    IF start_at > end_at THEN
        RAISE EXCEPTION 'start_at % is after end_at %', start_at, end_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The range is [start_at, end_at): pass the earlier instant first.';
    END IF;
    IF zone IS NULL THEN
        SELECT platform_tenant_time_zone(t.settings) INTO zone FROM tenants t WHERE t.id = tenant;
        zone := coalesce(zone, 'UTC');
    END IF;
    zone := platform_checked_time_zone(zone);
    IF group_by = 'range' THEN
        unit := 'day';  -- unused: the series below is switched off
        step := interval '1 day';
    ELSE
        step := ('1 ' || group_by)::interval;
        buckets := (extract(epoch FROM end_at - start_at)
                    / extract(epoch FROM least(step, interval '28 days')))::bigint + 2;
        IF buckets > 100000 THEN
            RAISE EXCEPTION 'a range of % at % granularity makes about % buckets, more than 100000',
                    end_at - start_at, group_by, buckets
                USING ERRCODE = 'program_limit_exceeded',
                      HINT = 'Use a coarser group_by or a shorter range.';
        END IF;
    END IF;

    RETURN QUERY
    WITH hour_cell AS (
        -- An hour keeps the offset of its instants, so where the clock goes
        -- back by an hour the local hour that happens twice is two buckets,
        -- and where it goes back by 30 minutes (Lord Howe) a bucket starts
        -- before the previous one ends. Hour buckets are therefore read off
        -- a 15-minute grid of instants (every offset in use is a multiple of
        -- 15 minutes, so no cell straddles two buckets).
        SELECT instant, date_trunc('hour', instant, zone) AS starts
        FROM generate_series(date_trunc('hour', start_at, 'UTC'), end_at, interval '15 minutes') AS instant
        WHERE group_by = 'hour'
    ), run AS (
        -- (nominal bucket start, first instant of a stretch of it). From day
        -- up, local midnights (Mondays, first days) converted back to
        -- instants: what date_trunc(unit, ts, zone) returns, DST days included.
        SELECT local_start AT TIME ZONE zone AS nominal, local_start AT TIME ZONE zone AS first_instant
        FROM generate_series(date_trunc(unit, start_at AT TIME ZONE zone),
                             end_at AT TIME ZONE zone, step) AS local_start
        WHERE group_by NOT IN ('hour', 'range')
        UNION ALL
        SELECT c.starts, c.instant
        FROM (SELECT h.*, lag(h.starts) OVER (ORDER BY h.instant) AS previous FROM hour_cell h) c
        WHERE c.previous IS DISTINCT FROM c.starts
        UNION ALL
        SELECT start_at, start_at WHERE group_by = 'range'
    ), bucket AS (
        SELECT r.nominal, greatest(r.first_instant, start_at) AS lo,
               least(coalesce(lead(r.first_instant) OVER (ORDER BY r.first_instant), end_at), end_at) AS hi
        FROM run r
    ), span AS (
        -- [first_hour, last_hour): the whole UTC hours inside [lo, hi).
        SELECT b.*,
               date_trunc('hour', b.lo, 'UTC')
                 + CASE WHEN date_trunc('hour', b.lo, 'UTC') < b.lo
                        THEN interval '1 hour' ELSE interval '0' END AS first_hour,
               date_trunc('hour', b.hi, 'UTC') AS last_hour
        FROM bucket b WHERE b.lo < b.hi
    ), edge AS (
        -- The raw parts: before the first and after the last whole hour, or
        -- the whole bucket when it holds no whole hour.
        SELECT s.nominal, e.lo, e.hi
        FROM span s,
             LATERAL (VALUES (s.lo, CASE WHEN s.first_hour < s.last_hour THEN s.first_hour ELSE s.hi END),
                             (CASE WHEN s.first_hour < s.last_hour THEN s.last_hour ELSE s.hi END, s.hi)) AS e(lo, hi)
        WHERE e.lo < e.hi
    ), piece AS (
        SELECT s.nominal, r.service, r.provider, r.model, r.total_cost_usd AS cost,
               CASE WHEN r.token_events > 0 THEN r.total_tokens END AS tokens, r.event_count AS events
        FROM span s
        JOIN cost_rollups_hourly r
          ON r.tenant_id = tenant AND r.hour >= s.first_hour AND r.hour < s.last_hour
        UNION ALL
        SELECT g.nominal, c.service, c.provider, c.metadata->>'model', c.cost_usd,
               c.tokens_used::bigint, 1::bigint
        FROM edge g
        JOIN cost_events c
          ON c.tenant_id = tenant AND c."timestamp" >= g.lo AND c."timestamp" < g.hi
    )
    SELECT p.nominal, p.service,
           CASE WHEN detail <> 'service' THEN p.provider END,
           CASE WHEN detail = 'model' THEN p.model END,
           sum(p.cost), sum(p.tokens)::bigint, sum(p.events)::bigint
    FROM piece p
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4;
END
$$;
COMMENT ON FUNCTION cost_summary(timestamptz, timestamptz, text, text, text) IS
    'The current tenant''s exact spend per bucket (in its time zone) and service; see docs/costs.md.';

-- sql/cost_recording.sql, whole.
-- record_cost_event(): one cost event for the context's tenant, checked, with
-- an optional idempotency key. A retry with a key already recorded for this
-- tenant inserts nothing and returns the first event's id with
-- duplicate = true, also while the first is still being committed by another
-- session (ON CONFLICT waits for it). SECURITY INVOKER: the row goes through
-- the same policies and triggers as any INSERT of the application.
CREATE FUNCTION record_cost_event(
    service text,
    cost_usd numeric,
    provider text DEFAULT NULL,
    model text DEFAULT NULL,
    tokens_used integer DEFAULT NULL,
    session_id uuid DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    occurred_at timestamptz DEFAULT NULL,
    metadata jsonb DEFAULT NULL,
    OUT event_id uuid,
    OUT duplicate boolean
)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := require_current_tenant_id();
BEGIN
    IF service IS NULL OR NOT service = ANY (platform_cost_services()) THEN
        RAISE EXCEPTION 'unknown service %', coalesce(quote_literal(service), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The services are ' || array_to_string(platform_cost_services(), ', ') || '.';
    END IF;
    IF cost_usd IS NULL OR cost_usd < 0 OR cost_usd IN ('NaN', 'Infinity') THEN
        RAISE EXCEPTION 'cost_usd must be a finite amount of at least 0, got %', coalesce(cost_usd::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the cost in US dollars as an exact numeric, for example 0.0000004.';
    END IF;
    IF tokens_used < 0 THEN
        RAISE EXCEPTION 'tokens_used must not be negative, got %', tokens_used
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL when the service does not count tokens.';
    END IF;
    IF idempotency_key IS NOT NULL AND (btrim(idempotency_key) = '' OR length(idempotency_key) > 200) THEN
        RAISE EXCEPTION 'an idempotency key must be 1 to 200 characters and not blank'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use the id of the provider call (for example its request id), or NULL.';
    END IF;
    IF metadata IS NOT NULL AND jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object, got a JSON %', jsonb_typeof(metadata)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: ''{"operation": "chat"}''::jsonb';
    END IF;

    INSERT INTO cost_events AS e (tenant_id, session_id, service, provider, tokens_used,
                                  cost_usd, metadata, "timestamp", idempotency_key)
    VALUES (tenant, record_cost_event.session_id, service, provider, tokens_used, cost_usd,
            CASE WHEN model IS NULL THEN metadata
                 ELSE coalesce(metadata, '{}') || jsonb_build_object('model', model) END,
            coalesce(occurred_at, now()), idempotency_key)
    ON CONFLICT ON CONSTRAINT cost_events_idempotency_key_key DO NOTHING
    RETURNING e.id INTO event_id;
    IF event_id IS NOT NULL THEN
        duplicate := false;
        RETURN;
    END IF;
    SELECT e.id INTO event_id FROM cost_events e
    WHERE e.tenant_id = tenant AND e.idempotency_key = record_cost_event.idempotency_key;
    duplicate := true;
END
$$;
COMMENT ON FUNCTION record_cost_event(text, numeric, text, text, integer, uuid, text, timestamptz, jsonb) IS
    'Records a cost event for the current tenant; with an idempotency key, a repeat is a no-op that returns the first event with duplicate = true.';

-- sql/cost_summaries.sql, whole.
-- compute_cost_summary(): the cost_summaries row of the context's tenant for
-- [period_start, period_end), computed from cost_summary() (so it is as exact
-- as it) and written idempotently: running it again, or concurrently,
-- updates the one row it wrote instead of adding another. Writers of the same
-- tenant and period take turns on a transaction-scoped advisory lock (no
-- unique constraint: the document lets an application write its own rows,
-- several per period if it likes, and those are left alone except the oldest,
-- which this function keeps current). The breakdown names all six services,
-- zero included, as the document's type does.
CREATE FUNCTION compute_cost_summary(period_start timestamptz, period_end timestamptz)
RETURNS cost_summaries
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    tenant constant uuid := require_current_tenant_id();
    total numeric;
    per_service jsonb;
    events bigint;
    result cost_summaries;
BEGIN
    IF period_start IS NULL OR period_end IS NULL OR period_start >= period_end THEN
        RAISE EXCEPTION 'period_start % is not before period_end %',
                coalesce(period_start::text, 'NULL'), coalesce(period_end::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A summary covers [period_start, period_end), a non-empty range.';
    END IF;
    -- The key is built from epoch seconds, not text: the text of a timestamptz
    -- depends on the session's TimeZone.
    PERFORM pg_advisory_xact_lock(hashtextextended(concat_ws(':', 'platform.cost_summary', tenant,
        extract(epoch FROM period_start), extract(epoch FROM period_end)), 0));

    SELECT coalesce(sum(x.total_cost_usd), 0),
           jsonb_object_agg(k.service, coalesce(x.total_cost_usd, 0)),
           coalesce(sum(x.event_count), 0)
    INTO total, per_service, events
    FROM unnest(platform_cost_services()) AS k(service)
    LEFT JOIN cost_summary(period_start, period_end, 'range') x ON x.service = k.service;

    UPDATE cost_summaries s
    SET total_cost_usd = total, breakdown = per_service, event_count = events, created_at = now()
    WHERE s.id = (SELECT o.id FROM cost_summaries o
                  WHERE o.tenant_id = tenant AND o.period_start = compute_cost_summary.period_start
                    AND o.period_end = compute_cost_summary.period_end
                  ORDER BY o.created_at, o.id LIMIT 1)
    RETURNING s.* INTO result;
    IF NOT FOUND THEN
        INSERT INTO cost_summaries AS s (tenant_id, period_start, period_end, total_cost_usd,
                                         breakdown, event_count)
        VALUES (tenant, compute_cost_summary.period_start, compute_cost_summary.period_end,
                total, per_service, events)
        RETURNING s.* INTO result;
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION compute_cost_summary(timestamptz, timestamptz) IS
    'Computes (or recomputes) the current tenant''s cost_summaries row for a period, idempotently.';

-- Events recorded under 0.1.0 enter the rollups and budget months now; the
-- triggers above keep them current from here on.
SELECT platform_rebuild_cost_rollups();

-- sql/finalize.sql: cost accounting's definer functions.
REVOKE EXECUTE ON FUNCTION
    cost_summary(timestamptz, timestamptz, text, text, text),
    budget_status(),
    platform_cost_events_changed(),
    platform_tenant_cost_settings_changed()
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
                      -- cost accounting's definer functions (cost_summary.sql, budgets.sql)
                      '@extschema@.cost_summary(timestamptz, timestamptz, text, text, text)',
                      '@extschema@.budget_status()',
                      '@extschema@.record_cost_event(text, numeric, text, text, integer, uuid, text, timestamptz, jsonb)',
                      '@extschema@.compute_cost_summary(timestamptz, timestamptz)',
                      -- search (search.sql)
                      '@extschema@.hybrid_search(text, vector, integer, text, integer, integer, double precision, double precision, text, uuid[], text, text)',
                      '@extschema@.vector_search(vector, integer, text, uuid[])',
                      '@extschema@.keyword_search(text, integer, text, uuid[], text, text)',
                      '@extschema@.search_documents(text, vector, integer, text, integer, integer, double precision, double precision, text, text, text)',
                      '@extschema@.ingest_document(text, text, text[], vector[], text, jsonb, vector, text)',
                      '@extschema@.chunk_text(text, integer, integer)',
                      -- and the definer helpers they call
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
