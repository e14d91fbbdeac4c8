-- 0.2.0 to 0.3.0: the state changes, written by hand. Everything else in
-- sql/platform--0.2.0--0.3.0.sql is generated from the code that a fresh
-- install runs (scripts/upgrade-script.py); no table, index or policy changes.

-- Functions whose arguments or results changed, dropped here and created
-- again by the code that follows (CREATE OR REPLACE cannot change either):
-- the keyword query is built in Rust and hands its words on, instead of
-- being parsed back from tsquery text.
DROP FUNCTION platform_keyword_query(text, regconfig, text, boolean);
DROP FUNCTION platform_keyword_candidates(tsquery, integer, uuid[], boolean, text);
DROP FUNCTION platform_or_lexemes_rarest_first(tsquery, boolean);
