-- Keyset pagination of sessions, newest first, on (created_at, id).
--
-- The document pages with `created_at < cursor` where the cursor is a
-- session *id*: it compares a timestamp with a UUID, and a timestamp alone
-- is not unique, so sessions created in the same microsecond would be
-- skipped or repeated at a page boundary. Here the order is total
-- (created_at DESC, id DESC) and the cursor carries both, at full microsecond
-- precision (a client that rebuilt it from a JavaScript Date would lose the
-- microseconds, so the server hands it out ready-made).
--
-- A row inserted while a client pages through is either newer than the first
-- page (and simply not part of this traversal) or, if its transaction began
-- before the cursor's row was created and committed later, older than the
-- cursor: no page ever repeats a row, and the only rows a traversal can miss
-- are those committed after it started.

-- '<microseconds since the epoch>:<uuid>'
CREATE OR REPLACE FUNCTION platform_session_cursor(created_at timestamptz, id uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT (extract(epoch FROM created_at) * 1000000)::bigint::text || ':' || id::text
$$;

CREATE OR REPLACE FUNCTION platform_parse_session_cursor(
    cursor text, OUT created_at timestamptz, OUT id uuid
)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    micros bigint;
BEGIN
    IF cursor !~ '^-?[0-9]{1,17}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'invalid session cursor %', quote_literal(left(cursor, 80))
            USING ERRCODE = 'invalid_text_representation',
                  HINT = 'Pass the next_cursor of the last row of the previous page, unchanged, or NULL for the first page.';
    END IF;
    micros := split_part(cursor, ':', 1)::bigint;
    -- Whole seconds and the microsecond remainder apart: both exact in the
    -- double precision that interval arithmetic goes through.
    created_at := 'epoch'::timestamptz
        + make_interval(secs => div(micros, 1000000))
        + mod(micros, 1000000) * interval '1 microsecond';
    id := split_part(cursor, ':', 2)::uuid;
END
$$;

-- Checks a page request and returns its page size: a malformed cursor is
-- reported even when the tenant has no sessions at all, rather than silently
-- answered with nothing.
CREATE OR REPLACE FUNCTION platform_checked_page_size(page_size integer, cursor text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    IF page_size IS NULL OR page_size < 1 OR page_size > 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000, got %', coalesce(page_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ask for at most 1000 sessions a page and follow next_cursor for more.';
    END IF;
    IF cursor IS NOT NULL THEN
        PERFORM platform_parse_session_cursor(cursor);
    END IF;
    RETURN page_size;
END
$$;

-- One page of the current tenant's sessions as rows of the table, newest
-- first (row-level security applies: SECURITY INVOKER). Each page is one walk
-- down session_created_at_idx (tenant_id, created_at DESC, id DESC): the
-- policy's tenant and the cursor's row comparison are both index conditions,
-- so a page reads page_size rows wherever it starts, never the tenant's whole
-- history. The first page and the next ones are two statements: one
-- statement with "cursor IS NULL OR ..." could not put the cursor into the
-- index condition of a plan made for any cursor.
CREATE OR REPLACE FUNCTION platform_sessions_page(page_size integer, cursor text, widget uuid)
RETURNS SETOF sessions
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    wanted constant integer := platform_checked_page_size(page_size, cursor);
    after record;
BEGIN
    IF cursor IS NULL THEN
        RETURN QUERY
        SELECT s.* FROM sessions s
        WHERE widget IS NULL OR s.widget_id = widget
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT wanted;
    ELSE
        after := platform_parse_session_cursor(cursor);
        RETURN QUERY
        SELECT s.* FROM sessions s
        WHERE (s.created_at, s.id) < (after.created_at, after.id)
          AND (widget IS NULL OR s.widget_id = widget)
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT wanted;
    END IF;
END
$$;

-- One page of the current tenant's sessions, with the cursor of each row.
-- Pass the last row's next_cursor to get the next page; a page shorter than
-- page_size is the last one.
CREATE OR REPLACE FUNCTION list_sessions(
    page_size integer DEFAULT 50,
    cursor text DEFAULT NULL,
    widget_id uuid DEFAULT NULL
) RETURNS TABLE (
    id uuid,
    tenant_id uuid,
    widget_id uuid,
    meeting_id uuid,
    mode text,
    cost_usd numeric,
    metadata jsonb,
    created_at timestamptz,
    ended_at timestamptz,
    next_cursor text
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
    SELECT s.id, s.tenant_id, s.widget_id, s.meeting_id, s.mode, s.cost_usd, s.metadata,
           s.created_at, s.ended_at, platform_session_cursor(s.created_at, s.id)
    FROM platform_sessions_page(list_sessions.page_size, list_sessions.cursor, list_sessions.widget_id)
         WITH ORDINALITY AS s
    ORDER BY s.ordinality
$$;
COMMENT ON FUNCTION list_sessions(integer, text, uuid) IS
    'Keyset pagination of the current tenant''s sessions, newest first.';
