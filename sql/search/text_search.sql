-- Keyword search over the knowledge base: a stored tsvector on every chunk and
-- document, indexed with GIN, instead of the design document's to_tsvector()
-- over every row on every query.
--
-- Which text search configuration? A generated column needs an immutable
-- expression, so it cannot look up the tenant's setting itself. Each row
-- therefore carries its configuration's name in `text_search_config`, and the
-- column is `platform_tsvector(text_search_config, ...)`: immutable, yet per
-- tenant. A row inserted without one gets its tenant's
-- `settings->>'textSearchConfig'` (default 'english') from a BEFORE trigger,
-- and a chunk gets its document's, so a document and its chunks are stemmed
-- alike; one given is checked by the same trigger. Changing the tenant
-- setting affects new rows; to restem old ones, UPDATE their
-- text_search_config (the vector follows).
-- (The columns and their GIN indexes: schema/tables.sql, schema/indexes.sql.)

-- Why rows could not keep `config`, or NULL when they can. Every row stores
-- the configuration it was stemmed with, and its search_vector is computed
-- again with it on every UPDATE (and on every restore of a dump), so the
-- configuration must not vanish under the row: it must exist (a bare oid
-- need not), not be temporary (a session's pg_temp configuration is dropped
-- when the session ends) and belong to a superuser, who alone could drop it.
CREATE OR REPLACE FUNCTION platform_text_search_config_problem(config regconfig) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN c.oid IS NULL THEN 'does not exist'
        WHEN c.cfgnamespace = pg_my_temp_schema() OR pg_is_other_temp_schema(c.cfgnamespace)
            THEN 'is temporary'
        WHEN NOT r.rolsuper THEN format('belongs to %s, who could drop it', quote_ident(r.rolname))
    END
    FROM (SELECT config) AS wanted
    LEFT JOIN pg_ts_config c ON c.oid = wanted.config
    LEFT JOIN pg_roles r ON r.oid = c.cfgowner
$$;

-- The configuration named by `requested`, else by the tenant's setting
-- (`tenant_setting`, the text of settings->>'textSearchConfig'), else
-- 'english'; only one that rows can keep (above). An unknown name is an
-- error (42704) rather than a silent fallback: a typo would otherwise make
-- every keyword query miss.
CREATE OR REPLACE FUNCTION platform_text_search_config(requested text, tenant_setting text)
RETURNS regconfig
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    name text := coalesce(nullif(btrim(requested), ''), nullif(btrim(tenant_setting), ''));
    source text := CASE WHEN nullif(btrim(requested), '') IS NULL
                        THEN 'the tenant setting textSearchConfig' ELSE 'the text_search_config argument' END;
    config regconfig;
    problem text;
BEGIN
    IF name IS NULL THEN
        RETURN 'pg_catalog.english'::regconfig;
    END IF;
    BEGIN
        config := name::regconfig;
    EXCEPTION WHEN undefined_object OR invalid_name OR syntax_error OR invalid_schema_name
                    OR invalid_text_representation THEN
        config := NULL;
    END;
    problem := coalesce(platform_text_search_config_problem(config), CASE WHEN config IS NULL THEN 'does not exist' END);
    IF problem = 'does not exist' THEN
        RAISE EXCEPTION 'text search configuration "%" (from %) does not exist', left(name, 64), source
            USING ERRCODE = 'undefined_object',
                  HINT = 'Use one of SELECT cfgname FROM pg_ts_config, for example ''english'' or ''simple''.';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION 'text search configuration "%" (from %) %', left(name, 64), source, problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Rows keep their configuration: use a permanent one that a superuser created.';
    END IF;
    RETURN config;
END
$$;

-- The name a row stores for `config`: as pg_catalog-first lookup prints it
-- ('english'; 'schema.name' for a configuration elsewhere), which
-- platform_tsvector() finds again in any session.
CREATE OR REPLACE FUNCTION platform_text_search_config_name(config regconfig) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT config::text $$;

-- platform_text_search_config_problem() for a name a row stores.
CREATE OR REPLACE FUNCTION platform_stored_text_search_config_problem(name text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    config regconfig;
BEGIN
    BEGIN
        config := name::regconfig;
    EXCEPTION WHEN undefined_object OR invalid_name OR syntax_error OR invalid_schema_name
                    OR invalid_text_representation THEN
        RETURN 'does not exist';
    END;
    RETURN platform_text_search_config_problem(config);
END
$$;

-- A tenant's own setting (row-level security applies: an application role
-- can only read its own tenant's row).
CREATE OR REPLACE FUNCTION platform_tenant_text_search_setting(tenant uuid) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT t.settings->>'textSearchConfig' FROM tenants t WHERE t.id = tenant
$$;

-- Every text_search_config a row gets: the tenant's (a chunk: its
-- document's) when an INSERT leaves it out, and one given only if rows can
-- keep it (platform_text_search_config), stored by its name. Generated
-- columns are computed after BEFORE triggers, so the tsvector sees the value
-- set here.
CREATE OR REPLACE FUNCTION platform_fill_text_search_config() RETURNS trigger
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
        NEW.text_search_config := coalesce(NEW.text_search_config, platform_text_search_config_name(
            platform_text_search_config(NULL, platform_tenant_text_search_setting(NEW.tenant_id))));
    ELSIF TG_OP = 'INSERT' OR NEW.text_search_config IS DISTINCT FROM OLD.text_search_config THEN
        NEW.text_search_config := platform_text_search_config_name(
            platform_text_search_config(NEW.text_search_config, NULL));
    END IF;
    RETURN NEW;
END
$$;

-- On every UPDATE, not UPDATE OF text_search_config: a trigger that names a
-- column keeps the column's type from changing, which an upgrade may need.
CREATE OR REPLACE TRIGGER knowledge_documents_text_search_config
    BEFORE INSERT OR UPDATE ON knowledge_documents
    FOR EACH ROW EXECUTE FUNCTION platform_fill_text_search_config();
CREATE OR REPLACE TRIGGER knowledge_chunks_text_search_config
    BEFORE INSERT OR UPDATE ON knowledge_chunks
    FOR EACH ROW EXECUTE FUNCTION platform_fill_text_search_config();

-- A configuration a tenant's rows could not keep would make every document
-- insert of the tenant fail later: refuse it when the setting is written.
CREATE OR REPLACE FUNCTION platform_tenant_text_search_setting_checked() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    PERFORM platform_text_search_config(NULL, NEW.settings->>'textSearchConfig');
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER tenants_text_search_config_checked BEFORE INSERT OR UPDATE OF settings ON tenants
    FOR EACH ROW WHEN (NEW.settings ? 'textSearchConfig')
    EXECUTE FUNCTION platform_tenant_text_search_setting_checked();
