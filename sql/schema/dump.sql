-- Extension tables are left out of pg_dump unless registered: without this a
-- dump and restore would bring back the schema and silently lose every row.
-- (No sequences: every key is a UUID.) One call per statement: each call
-- rewrites the pg_extension row, which a single statement may do only once.
DO $dump$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT table_name FROM platform_tenant_tables()
             UNION ALL SELECT 'verification_tokens'::regclass
    LOOP
        PERFORM pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;

-- The cost rollups are registered too, so the tables are known, with a filter
-- that dumps no rows: the rows are derived, and the cost triggers rebuild them
-- from cost_events as a restore loads it (dumping them as well would count
-- every event twice).
SELECT pg_extension_config_dump('cost_rollups_hourly', 'WHERE false');
SELECT pg_extension_config_dump('cost_budget_periods', 'WHERE false');
SELECT pg_extension_config_dump('cost_widget_budget_periods', 'WHERE false');
-- The keyword statistics likewise: the keyword triggers count the chunks and
-- documents again as a restore loads them.
SELECT pg_extension_config_dump('knowledge_keyword_totals', 'WHERE false');
SELECT pg_extension_config_dump('knowledge_lexeme_counts', 'WHERE false');

-- Password hashes are tenant data like any other: dumped (a restore brings
-- every login back), and a dump is therefore as secret as the database.
SELECT pg_extension_config_dump('user_credentials', '');

-- Spend reservations are tenant data (which call was granted what, and the
-- event that settled it): dumped. An open one restored after it expired
-- counts for nothing.
SELECT pg_extension_config_dump('cost_reservations', '');
