-- What the stored search_vector columns (schema/tables.sql) are computed
-- with. They are generated columns, recomputed on every UPDATE of a row and
-- on every restore of a dump, so these never change what they return.

-- The text itself goes through platform_tsvector(config, body) (Rust:
-- src/search/text_search.rs), which looks the row's configuration up by
-- name: rows store names, not regconfig oids, which pg_upgrade refuses.

-- Every search_vector also holds one lexeme naming its tenant, and every
-- keyword query ANDs it in. A GIN index cannot lead with tenant_id (that
-- needs btree_gin), so without it a query for common words collects their
-- matches in every tenant, and a large tenant's query visits thousands of
-- other tenants' rows only for row-level security to drop them. With it, the
-- index intersects the words' posting lists with the tenant's own. It never
-- widens what a query sees: row-level security still applies.
--
-- platform_tenant_tsvector() is part of the search_vector columns' generation
-- expression (schema/tables.sql): changing what it returns would leave the
-- stored vectors stale, so it never changes.

CREATE OR REPLACE FUNCTION platform_tenant_lexeme(tenant uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT 'tenant:' || replace(tenant::text, '-', '') $$;

CREATE OR REPLACE FUNCTION platform_tenant_tsvector(tenant uuid) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$ SELECT array_to_tsvector(ARRAY[platform_tenant_lexeme(tenant)]) $$;

CREATE OR REPLACE FUNCTION platform_tenant_tsquery(tenant uuid) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$ SELECT platform_lexemes_all(ARRAY[platform_tenant_lexeme(tenant)]) $$;
