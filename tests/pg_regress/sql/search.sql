--
-- Search over the knowledge base, as the application role: chunk_text,
-- vector_search, keyword_search, hybrid_search, search_documents and
-- ingest_document. Tenant a's chunk n lies on axis n (setup.sql), so a query
-- vector's weights decide the vector ranking; tenant b has a chunk on axis 1
-- and the word "passwords", which tenant a never sees. Scores are rounded.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET ROLE platform_regress_app;

-- ========== chunk_text (Rust) ==========
-- Sentence boundaries first, never longer than chunk_size characters.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text('Refunds are paid within ten days. Contact billing for a refund.', 40, 0))
     WITH ORDINALITY AS t(chunk, n);
-- With an overlap of about 10 characters, starting at a word.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text(E'Open Settings, then Security. Choose "Reset password".\n\n'
                       'A link arrives by e-mail; it expires after one hour.', 40, 10))
     WITH ORDINALITY AS t(chunk, n);
-- Characters, not bytes: multi-byte text is never split inside a character.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text('Grüße aus Köln. Ça va très bien, merci.', 16, 0))
     WITH ORDINALITY AS t(chunk, n);
-- NULL content: NULL.
SELECT chunk_text(NULL, 100, 0);
-- The defaults spelt out are the three-argument call.
SELECT chunk_text('Refunds are paid within ten days. Contact billing for a refund.', 40, 0)
     = chunk_text('Refunds are paid within ten days. Contact billing for a refund.', 40, 0,
                  unit => 'characters', format => 'text') AS same_chunks;
-- Markdown: a heading starts a chunk (without overlap), a list is cut
-- between items, and a code block that fits stays whole.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text(E'# Refunds\n\nRefunds are paid within ten days.\n'
                       || E'- by card: three days\n- by transfer: ten days\n'
                       || E'## Passwords\n\nReset it here:\n\n'
                       || E'```sh\ncurl -X POST /reset\n\ncurl /status\n```\nDone.',
                       60, 20, format => 'markdown'))
     WITH ORDINALITY AS t(chunk, n);
-- The same text as plain text cuts inside the code block.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text(E'# Refunds\n\nRefunds are paid within ten days.\n'
                       || E'- by card: three days\n- by transfer: ten days\n'
                       || E'## Passwords\n\nReset it here:\n\n'
                       || E'```sh\ncurl -X POST /reset\n\ncurl /status\n```\nDone.',
                       60, 20))
     WITH ORDINALITY AS t(chunk, n);
-- Tokens (cl100k_base): at most chunk_size tokens a chunk, cut at sentences;
-- the smallest size is 64 tokens.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text(repeat('Refunds are paid within ten days. Contact billing for a refund. ', 12),
                       64, 16, unit => 'tokens'))
     WITH ORDINALITY AS t(chunk, n);
-- Multi-byte text in tokens, as Markdown.
SELECT n, length(chunk) AS length, chunk
FROM unnest(chunk_text(E'# 返金\n\n' || repeat('返金は十日以内に支払われます。😀 ', 10),
                       64, 0, unit => 'tokens', format => 'markdown'))
     WITH ORDINALITY AS t(chunk, n);

BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');

-- ========== vector_search ==========
-- The query leans 1, 0.8, 0.6, 0.4, 0.2, 0.1 towards axes 1..6: chunks 1, 2,
-- 3 in that order (tenant b's chunk on axis 1 is not visible).
SELECT rank, chunk_id, document_id, round(distance::numeric, 4) AS distance
FROM vector_search(regress.weights(1, 0.8, 0.6, 0.4, 0.2, 0.1), 3);
-- Filtered by category, and by document ids.
SELECT rank, chunk_id, round(distance::numeric, 4) AS distance
FROM vector_search(regress.weights(1, 0.8, 0.6, 0.4, 0.2, 0.1), 10, category => 'billing');
SELECT rank, chunk_id, round(distance::numeric, 4) AS distance
FROM vector_search(regress.weights(1, 0.8, 0.6, 0.4, 0.2, 0.1), 10,
                   document_ids => '{a7000000-0000-4000-8000-000000000003}');
COMMIT;
-- The HNSW path gives the same answer: platform.exact_scan_limit = 1 (set by
-- the superuser, for this transaction) sends every scope through the
-- index. plans.sql shows that plan.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
RESET ROLE;
SET LOCAL platform.exact_scan_limit = 1;
SET ROLE platform_regress_app;
SELECT rank, chunk_id, round(distance::numeric, 4) AS distance
FROM vector_search(regress.weights(1, 0.8, 0.6, 0.4, 0.2, 0.1), 6);
COMMIT;
-- Where exact_scan_limit is -1 (the default), the threshold between the two
-- paths is never below 20,000 rows, and above that follows the square root of
-- the rows wanted and of the table's rows (pg_class: statistics or pages):
-- four times the rows wanted, twice the threshold; the documents (fewer rows)
-- have a lower one than the chunks. (This data set is small: only very many
-- rows wanted lift the threshold above its floor.)
SELECT platform_exact_scan_threshold(false, 10) AS floor,
       abs(platform_exact_scan_threshold(false, 400000) - 2 * platform_exact_scan_threshold(false, 100000)) <= 2
           AS square_root_of_wanted,
       platform_exact_scan_threshold(true, 400000) < platform_exact_scan_threshold(false, 400000)
           AS fewer_documents_lower_threshold;
-- A number (set by the superuser) fixes it; 0 is HNSW always.
BEGIN;
RESET ROLE;
SET LOCAL platform.exact_scan_limit = 1234;
SET ROLE platform_regress_app;
SELECT platform_exact_scan_threshold(false, 40) AS chunks, platform_exact_scan_threshold(true, 10) AS documents;
ROLLBACK;

-- ========== keyword_search ==========
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000') IS NOT NULL AS context_set;
-- Stemmed English (tenant a's configuration), ranked by BM25 over tenant
-- a's own chunks: "reset password" matches the chunk with both words first,
-- then the one with "reset".
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('reset password');
-- A question: stop words are dropped.
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('How do I reset my password?');
-- 'all': every word must match (websearch syntax).
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('reset password', keyword_match => 'all');
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('"reset link"', keyword_match => 'all');
-- 'any' leaves out the words in more than platform.common_word_share of the
-- tenant's own chunks (by default none: BM25 weighs them down) and the words
-- none of them holds. With a share of 20%, "settings" (in two of tenant a's
-- six chunks) is left out, so "invoices settings" ranks by "invoice" alone ...
RESET ROLE;
SET LOCAL platform.common_word_share = 0.2;
SET ROLE platform_regress_app;
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('invoices settings');
-- ... unless every word is common: then all are kept.
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('settings');
-- A word that occurs nowhere is left out, so next to common words it leaves
-- them all in: "settings zebra" finds the rows with "settings".
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('settings zebra');
RESET ROLE;
SET LOCAL platform.common_word_share = 1;
SET ROLE platform_regress_app;
-- By default every word some chunk holds is searched, and ranked by BM25
-- with tenant a's own counts: "invoice" (in one chunk) outweighs "settings"
-- (in two).
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('invoices settings');
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('password zebra');
-- A category filter. Stop words only: no rows.
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('sent e-mail', category => 'billing');
SELECT count(*) AS stop_words_only FROM keyword_search('the and of');

-- ========== hybrid_search ==========
-- Convex fusion (the default): min-max normalised scores, equal weights.
SELECT chunk_id, title, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset password', regress.weights(0.2, 1, 0.6), 4);
-- Reciprocal Rank Fusion. Chunk 1 holds both words: it comes first although
-- chunk 2 fuses higher, then fused order (platform.exact_match_word_share:
-- for this test both words count as rare).
RESET ROLE;
SET LOCAL platform.exact_match_word_share = 1;
SET ROLE platform_regress_app;
SELECT chunk_id, round(score::numeric, 5) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset password', regress.weights(0.2, 1, 0.6), 4, fusion => 'rrf');
-- Theoretical min-max: each branch measured from the lowest score it can
-- give (cosine similarity -1, BM25 0), so the weakest candidate keeps a part.
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset password', regress.weights(0.2, 1, 0.6), 4, fusion => 'tmm');
-- With the rule off: fused order alone.
RESET ROLE;
SET LOCAL platform.exact_match_word_share = 0;
SET ROLE platform_regress_app;
SELECT chunk_id, round(score::numeric, 5) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset password', regress.weights(0.2, 1, 0.6), 4, fusion => 'rrf');
RESET ROLE;
RESET platform.exact_match_word_share;
SET ROLE platform_regress_app;
-- Weights: keywords only count.
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset password', regress.weights(0.2, 1, 0.6), 4,
                   vector_weight => 0, keyword_weight => 1);
-- NULL text: vector only. NULL embedding: keywords only.
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search(NULL, regress.weights(0.2, 1, 0.6), 3);
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('invoices', NULL, 3);
-- Filters: category, document ids; a text search configuration and the
-- 'all' mode.
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('meeting', regress.weights(0.2, 1, 0.6), 3, category => 'meetings');
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset', regress.weights(0.2, 1, 0.6), 3,
                   document_ids => '{a7000000-0000-4000-8000-000000000002}');
SELECT chunk_id, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset link', regress.weights(0.2, 1, 0.6), 3,
                   text_search_config => 'english', keyword_match => 'all');

-- ========== search_documents ==========
SELECT document_id, title, category, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM search_documents('password', regress.axis(1));
SELECT document_id, title, round(score::numeric, 5) AS score, vector_rank, keyword_rank
FROM search_documents('invoices', regress.weights(0, 0, 1, 0, 0.5), 2, fusion => 'rrf');
SELECT document_id, title, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM search_documents('meetings', NULL, category => 'meetings');
COMMIT;

-- ========== tenant b: its own rows, its own configuration ==========
BEGIN;
SELECT set_tenant('b0000000-0000-4000-8000-000000000000');
-- b stems nothing (textSearchConfig simple): "passwords" matches,
-- "password" does not; an explicit configuration stems the query only.
SELECT rank, chunk_id, round(keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('passwords');
SELECT count(*) AS password_matches FROM keyword_search('password');
SELECT count(*) AS stemmed_query_matches
FROM keyword_search('passwords', text_search_config => 'english');
-- Axis 1 leads to b's own chunk.
SELECT rank, chunk_id, round(distance::numeric, 4) AS distance
FROM vector_search(regress.axis(1), 10);
SELECT chunk_id, title, round(score::numeric, 3) AS score, vector_rank, keyword_rank
FROM hybrid_search('reset passwords', regress.axis(1));
COMMIT;

-- ========== no context: every search returns nothing ==========
SELECT count(*) AS vector_rows FROM vector_search(regress.axis(1));
SELECT count(*) AS keyword_rows FROM keyword_search('password');
SELECT count(*) AS hybrid_rows FROM hybrid_search('password', regress.axis(1));
SELECT count(*) AS document_rows FROM search_documents('password', regress.axis(1));

-- ========== ingest_document ==========
-- A document, its chunks (chunk_text) and one embedding per chunk, in one
-- call; rolled back so the statistics of setup.sql stay exact.
BEGIN;
SELECT set_tenant('a0000000-0000-4000-8000-000000000000');
SELECT ingest_document(
    'Refund policy',
    'Refunds are paid within ten days. Contact billing for a refund.',
    chunk_text('Refunds are paid within ten days. Contact billing for a refund.', 40, 0),
    ARRAY[regress.axis(7), regress.axis(8)],
    category => 'billing',
    metadata => '{"source": "regress"}',
    document_embedding => regress.axis(7)) AS refund_document \gset
SELECT title, category, metadata, text_search_config, embedding = regress.axis(7) AS embedded
FROM knowledge_documents WHERE id = :'refund_document';
SELECT position, content, text_search_config, tenant_id
FROM knowledge_chunks WHERE document_id = :'refund_document' ORDER BY position;
-- Found by words and by vector at once. (Both chunks score alike, and
-- their ids are random, so the rank between them is not shown.)
SELECT c.content, round(k.keyword_score::numeric, 4) AS keyword_score
FROM keyword_search('refund') k JOIN knowledge_chunks c ON c.id = k.chunk_id
ORDER BY c.content;
SELECT c.content, round(v.distance::numeric, 4) AS distance
FROM vector_search(regress.axis(8), 1) v JOIN knowledge_chunks c ON c.id = v.chunk_id;
-- A per-document configuration: stored with 'simple', so not stemmed.
SELECT ingest_document('Simple words', 'Refunds', ARRAY['Refunds'], ARRAY[regress.axis(9)],
                       text_search_config => 'simple') AS simple_document \gset
SELECT text_search_config, search_vector FROM knowledge_chunks WHERE document_id = :'simple_document';
-- No chunks at all: the document alone.
SELECT ingest_document('Empty', 'No chunks.', '{}', '{}') IS NOT NULL AS stored;
ROLLBACK;
RESET ROLE;
