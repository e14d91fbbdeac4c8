//! Search as the application role: keyword, vector and hybrid search over the
//! current tenant's knowledge base, fusion, filters, tenant scoping, the
//! vector branch under a tenant filter, ingestion and bad input.

use platform_client_tests::search_fixture::*;
use platform_client_tests::*;
use postgres::error::SqlState;
use postgres::Transaction;
use uuid::Uuid;

fn ids(rows: &[postgres::Row]) -> Vec<Uuid> {
    rows.iter().map(|r| r.get("chunk_id")).collect()
}

/// A tenant with three documents about unrelated things, one chunk each,
/// whose embeddings point along axes 1, 2 and 3.
struct Library {
    tenant: Uuid,
    shoes: Uuid,
    tea: Uuid,
    billing: Uuid,
    shoes_doc: Uuid,
    billing_doc: Uuid,
}

fn library(name: &str, settings: &str) -> Library {
    let tenant = admin()
        .query_one(
            "SELECT create_tenant($1, 'starter', $2::text::jsonb)",
            &[&name, &settings],
        )
        .unwrap()
        .get(0);
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        let shoes_doc = insert_document(tx, "Running shoes", "Trail runners", Some("sport"));
        let tea_doc = insert_document(tx, "Green tea", "Brewing", Some("food"));
        let billing_doc = insert_document(tx, "Invoices", "Billing and refunds", Some("account"));
        Library {
            tenant,
            shoes: insert_chunk(
                tx,
                shoes_doc,
                0,
                "The runners were running on muddy trails",
                &axis_vector(1, 0, 0.0),
            ),
            tea: insert_chunk(
                tx,
                tea_doc,
                0,
                "Brew green tea at eighty degrees",
                &axis_vector(2, 0, 0.0),
            ),
            billing: insert_chunk(
                tx,
                billing_doc,
                0,
                "Refunds appear on the next invoice",
                &axis_vector(3, 0, 0.0),
            ),
            shoes_doc,
            billing_doc,
        }
    })
}

#[test]
fn stored_tsvectors_follow_the_tenant_setting_and_the_document() {
    let english = library("Stems", "{}");
    let simple = library("Words", r#"{"textSearchConfig": "simple"}"#);
    let mut app = app();
    for (lib, config, lexeme) in [(&english, "english", "run"), (&simple, "simple", "running")] {
        as_tenant(&mut app, lib.tenant, |tx| {
            let row = tx
                .query_one(
                    "SELECT c.text_search_config::text, c.search_vector::text, d.text_search_config::text,
                            d.search_vector::text
                     FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id
                     WHERE c.id = $1",
                    &[&lib.shoes],
                )
                .unwrap();
            assert_eq!(row.get::<_, String>(0), config);
            assert_eq!(
                row.get::<_, String>(2),
                config,
                "a chunk takes its document's configuration"
            );
            assert!(
                row.get::<_, String>(1).contains(&format!("'{lexeme}'")),
                "{}",
                row.get::<_, String>(1)
            );
            // Both hold the tenant's own lexeme, which keyword queries AND in.
            let tenant_lexeme = format!("'tenant:{}'", lib.tenant.simple());
            assert!(row.get::<_, String>(1).contains(&tenant_lexeme));
            assert!(row.get::<_, String>(3).contains(&tenant_lexeme));
            // The document's vector holds the title, weighted A.
            assert!(
                row.get::<_, String>(3).contains(":1A"),
                "{}",
                row.get::<_, String>(3)
            );
        });
    }
    // Stemming makes "run" find "running" under english only; per call, the
    // configuration can be chosen.
    as_tenant(&mut app, english.tenant, |tx| {
        let found = tx
            .query("SELECT chunk_id FROM keyword_search('run')", &[])
            .unwrap();
        assert_eq!(ids(&found), vec![english.shoes]);
    });
    as_tenant(&mut app, simple.tenant, |tx| {
        assert!(tx
            .query("SELECT chunk_id FROM keyword_search('run')", &[])
            .unwrap()
            .is_empty());
        let found = tx
            .query("SELECT chunk_id FROM keyword_search('running')", &[])
            .unwrap();
        assert_eq!(ids(&found), vec![simple.shoes]);
    });
    // Both GIN indexes exist.
    let indexes: i64 = admin()
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname IN ('knowledge_chunk_search_idx', 'knowledge_search_idx')
               AND indexdef LIKE '%USING gin (search_vector)%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(indexes, 2);
}

#[test]
fn user_input_never_raises_a_syntax_error() {
    let lib = library("Syntax", "{}");
    let mut app = app();
    as_tenant(&mut app, lib.tenant, |tx| {
        for text in [
            "\"unbalanced",
            "a & | ! ( ) : *",
            "-",
            "or or or",
            "'; DROP TABLE x; --",
            "the",
            "   ",
        ] {
            for mode in ["any", "all"] {
                let result = attempt(tx, |t| {
                    t.query(
                        "SELECT * FROM keyword_search($1, keyword_match => $2)",
                        &[&text, &mode],
                    )
                });
                assert!(result.is_ok(), "{text:?} ({mode}): {result:?}");
            }
        }
        // 'all' needs every word; 'any' (the default) ranks rows sharing more words first.
        let all = tx
            .query(
                "SELECT chunk_id FROM keyword_search('green tea invoice', keyword_match => 'all')",
                &[],
            )
            .unwrap();
        assert!(all.is_empty());
        let any = tx
            .query(
                "SELECT chunk_id FROM keyword_search('green tea invoice', keyword_match => 'any')",
                &[],
            )
            .unwrap();
        assert_eq!(ids(&any), vec![lib.tea, lib.billing]);
        let phrase = tx.query("SELECT chunk_id FROM keyword_search('\"green tea\" -invoice', keyword_match => 'all')", &[]).unwrap();
        assert_eq!(ids(&phrase), vec![lib.tea]);
    });
}

#[test]
fn vector_and_keyword_branches_rank_their_own_way() {
    let lib = library("Ranks", "{}");
    let mut app = app();
    as_tenant(&mut app, lib.tenant, |tx| {
        // Leaning from axis 1 towards axis 3: shoes, then billing, then tea.
        let rows = tx
            .query(
                "SELECT chunk_id, rank, distance FROM vector_search($1, 3)",
                &[&axis_vector(1, 3, 0.3)],
            )
            .unwrap();
        assert_eq!(ids(&rows), vec![lib.shoes, lib.billing, lib.tea]);
        let ranks: Vec<i64> = rows.iter().map(|r| r.get("rank")).collect();
        assert_eq!(ranks, vec![1, 2, 3]);
        let distances: Vec<f64> = rows.iter().map(|r| r.get("distance")).collect();
        assert!(distances.windows(2).all(|w| w[0] <= w[1]));
        let rows = tx
            .query(
                "SELECT chunk_id FROM vector_search($1, 2)",
                &[&axis_vector(2, 0, 0.0)],
            )
            .unwrap();
        assert_eq!(rows.len(), 2, "match_count caps the rows");
        assert_eq!(ids(&rows)[0], lib.tea);
        let rows = tx
            .query(
                "SELECT chunk_id, rank FROM keyword_search('refunds invoice')",
                &[],
            )
            .unwrap();
        assert_eq!(ids(&rows), vec![lib.billing]);
        assert_eq!(rows[0].get::<_, i64>("rank"), 1);
    });
}

#[test]
fn hybrid_search_fuses_both_branches() {
    let lib = library("Fusion", "{}");
    let mut app = app();
    as_tenant(&mut app, lib.tenant, |tx| {
        // The words point at billing, the vector at shoes (then billing).
        let rows = tx
            .query(
                "SELECT chunk_id, document_id, title, content, score, vector_rank, keyword_rank
                 FROM hybrid_search('refund invoice', $1, 3, fusion => 'rrf')",
                &[&axis_vector(1, 3, 0.3)],
            )
            .unwrap();
        // billing: 1/(60+2) + 1/(60+1) beats shoes: 1/(60+1).
        assert_eq!(ids(&rows), vec![lib.billing, lib.shoes, lib.tea]);
        let billing = &rows[0];
        assert_eq!(billing.get::<_, Uuid>("document_id"), lib.billing_doc);
        assert_eq!(billing.get::<_, String>("title"), "Invoices");
        assert_eq!(
            billing.get::<_, String>("content"),
            "Refunds appear on the next invoice"
        );
        assert_eq!(billing.get::<_, Option<i64>>("vector_rank"), Some(2));
        assert_eq!(billing.get::<_, Option<i64>>("keyword_rank"), Some(1));
        let score: f64 = billing.get("score");
        assert!((score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12, "{score}");
        assert_eq!(rows[2].get::<_, Option<i64>>("keyword_rank"), None);
        // Weighting the vector branch alone restores its order; k changes scores.
        let rows = tx
            .query(
                "SELECT chunk_id FROM hybrid_search('refund invoice', $1, 3, keyword_weight => 0)",
                &[&axis_vector(1, 3, 0.3)],
            )
            .unwrap();
        assert_eq!(ids(&rows), vec![lib.shoes, lib.billing, lib.tea]);
        let score: f64 = tx
            .query_one(
                "SELECT score FROM hybrid_search('tea', NULL, 1, fusion => 'rrf', rrf_k => 10)",
                &[],
            )
            .unwrap()
            .get(0);
        assert!((score - 1.0 / 11.0).abs() < 1e-12);
        // Convex: scores normalised per branch, in [0, 1].
        let rows = tx
            .query("SELECT chunk_id, score FROM hybrid_search('refund invoice', $1, 3, fusion => 'convex')", &[&axis_vector(1, 3, 0.3)])
            .unwrap();
        assert_eq!(ids(&rows)[0], lib.billing);
        assert!(rows
            .iter()
            .all(|r| (0.0..=1.0).contains(&r.get::<_, f64>("score"))));
        // Blank text: vector only. NULL embedding: keywords only.
        for blank in [None, Some(""), Some("  ")] {
            let rows = tx
                .query(
                    "SELECT chunk_id, keyword_rank FROM hybrid_search($1, $2, 3)",
                    &[&blank, &axis_vector(2, 0, 0.0)],
                )
                .unwrap();
            assert_eq!(ids(&rows)[0], lib.tea);
            assert!(rows
                .iter()
                .all(|r| r.get::<_, Option<i64>>("keyword_rank").is_none()));
        }
        let rows = tx
            .query(
                "SELECT chunk_id, vector_rank FROM hybrid_search('muddy trails', NULL)",
                &[],
            )
            .unwrap();
        assert_eq!(ids(&rows), vec![lib.shoes]);
        assert_eq!(rows[0].get::<_, Option<i64>>("vector_rank"), None);
    });
}

#[test]
fn ties_are_broken_deterministically() {
    let tenant = provision_tenant("Ties");
    let mut app = app();
    let chunks: Vec<Uuid> = as_tenant(&mut app, tenant, |tx| {
        let document = insert_document(tx, "Same", "Same", None);
        (0..5)
            .map(|i| {
                insert_chunk(
                    tx,
                    document,
                    i,
                    "identical words here",
                    &axis_vector(4, 0, 0.0),
                )
            })
            .collect()
    });
    let mut sorted = chunks.clone();
    sorted.sort();
    as_tenant(&mut app, tenant, |tx| {
        for _ in 0..3 {
            let rows = tx
                .query(
                    "SELECT chunk_id FROM hybrid_search('identical words', $1, 5)",
                    &[&axis_vector(4, 0, 0.0)],
                )
                .unwrap();
            assert_eq!(ids(&rows), sorted);
        }
    });
}

#[test]
fn filters_by_category_and_documents() {
    let lib = library("Filters", "{}");
    let mut app = app();
    as_tenant(&mut app, lib.tenant, |tx| {
        let query = axis_vector(2, 0, 0.0);
        let rows = tx
            .query(
                "SELECT chunk_id FROM hybrid_search('tea runners', $1, 10, category => 'sport')",
                &[&query],
            )
            .unwrap();
        assert_eq!(ids(&rows), vec![lib.shoes]);
        let docs = vec![lib.shoes_doc, lib.billing_doc];
        let rows = tx
            .query(
                "SELECT chunk_id FROM hybrid_search('tea', $1, 10, document_ids => $2)",
                &[&query, &docs],
            )
            .unwrap();
        let mut got = ids(&rows);
        got.sort();
        let mut expected = vec![lib.shoes, lib.billing];
        expected.sort();
        assert_eq!(got, expected);
        let rows = tx
            .query(
                "SELECT chunk_id FROM vector_search($1, 10, 'food')",
                &[&query],
            )
            .unwrap();
        assert_eq!(ids(&rows), vec![lib.tea]);
        let rows = tx
            .query(
                "SELECT chunk_id FROM keyword_search('tea runners', 10, 'nothing')",
                &[],
            )
            .unwrap();
        assert!(rows.is_empty());
    });
}

#[test]
fn a_tenant_only_ever_finds_its_own_rows() {
    let mine = library("Mine", "{}");
    let theirs = library("Theirs", "{}");
    let mut app = app();
    let their_chunks = [theirs.shoes, theirs.tea, theirs.billing];
    as_tenant(&mut app, mine.tenant, |tx| {
        let their_docs = vec![theirs.shoes_doc, theirs.billing_doc];
        for sql in [
            "SELECT chunk_id FROM hybrid_search('tea refunds runners', $1, 100, keyword_match => 'any')",
            "SELECT chunk_id FROM hybrid_search('tea refunds runners', $1, 100, fusion => 'convex')",
            "SELECT chunk_id FROM vector_search($1, 100)",
            "SELECT chunk_id FROM keyword_search('tea refunds runners', 100, keyword_match => 'any') WHERE $1::vector IS NOT NULL",
        ] {
            let rows = tx.query(sql, &[&axis_vector(1, 2, 0.5)]).unwrap();
            assert_eq!(rows.len(), 3, "{sql}");
            assert!(ids(&rows).iter().all(|id| !their_chunks.contains(id)), "{sql}");
        }
        // Naming another tenant's documents finds nothing.
        let rows = tx
            .query(
                "SELECT chunk_id FROM hybrid_search('tea', $1, 10, document_ids => $2)",
                &[&axis_vector(1, 0, 0.0), &their_docs],
            )
            .unwrap();
        assert!(rows.is_empty());
        let rows = tx
            .query(
                "SELECT document_id FROM search_documents('tea running invoices', $1, 100)",
                &[&axis_vector(1, 0, 0.0)],
            )
            .unwrap();
        assert!(rows
            .iter()
            .all(|r| ![theirs.shoes_doc, theirs.billing_doc].contains(&r.get::<_, Uuid>(0))));
    });
    // The definer function behind keyword search (it bypasses row-level
    // security to use the GIN index) takes the tenant from the context only.
    as_tenant(&mut app, mine.tenant, |tx| {
        let rows = tx
            .query(
                "SELECT id FROM platform_keyword_candidates(to_tsquery('english', 'tea | refunds | runners'), NULL, 'any', 100, NULL, false)",
                &[],
            )
            .unwrap();
        let found: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|id| !their_chunks.contains(id)));
    });
    let rows = app
        .query(
            "SELECT id FROM platform_keyword_candidates(to_tsquery('english', 'tea | refunds | runners'), NULL, 'any', 100, NULL, false)",
            &[],
        )
        .unwrap();
    assert!(rows.is_empty(), "no context, no rows");
    // Without a context there is nothing to find.
    let rows = app
        .query(
            "SELECT chunk_id FROM hybrid_search('tea', $1, 10)",
            &[&axis_vector(2, 0, 0.0)],
        )
        .unwrap();
    assert!(rows.is_empty());
}

/// What the design document's vector CTE gets for `tenant`: the 30 nearest
/// chunks of all tenants, then the tenant's among them (its WHERE is applied
/// to what the shared index returns).
fn document_style_vector_rows(tenant: Uuid, query: &pgvector::Vector) -> i64 {
    admin()
        .query_one(
            "SELECT count(*) FROM (SELECT tenant_id FROM knowledge_chunks ORDER BY embedding <=> $1 LIMIT 30) s
             WHERE tenant_id = $2",
            &[query, &tenant],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_tenant_with_one_percent_of_the_chunks_still_gets_match_count_rows() {
    let big = provision_tenant("Big");
    let small = provision_tenant("Small");
    let mut app = app();
    // 2,000 chunks near axis 0 for the big tenant, 20 for the small one
    // further away: the nearest rows of the shared index are all the big
    // tenant's.
    as_tenant(&mut app, big, |tx| {
        insert_spread_chunks(tx, "big", 2000, 5, 0.0, 0.0002)
    });
    as_tenant(&mut app, small, |tx| {
        insert_spread_chunks(tx, "small", 20, 6, 0.2, 0.01)
    });
    admin()
        .batch_execute("VACUUM ANALYZE knowledge_chunks")
        .unwrap();
    let query = axis_vector(0, 5, 0.01);
    let starved = document_style_vector_rows(small, &query);
    as_tenant(&mut app, small, |tx| {
        assert!(
            starved < 10,
            "the control should starve, got {starved} rows"
        );
        let exact: Vec<Uuid> = tx
            .query(
                // A subquery's column: the planner cannot walk an index for it.
                "SELECT id FROM (SELECT id, embedding <=> $1 AS distance FROM knowledge_chunks OFFSET 0) s
                 ORDER BY distance, id LIMIT 10",
                &[&query],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Both paths: the exact scan (default for 20 chunks) and HNSW with
        // iterative scan (forced by a limit of 1).
        for limit in ["DEFAULT", "1"] {
            tx.batch_execute(&format!("SET LOCAL platform.exact_scan_limit TO {limit}"))
                .unwrap();
            let rows = tx
                .query("SELECT chunk_id FROM vector_search($1, 10)", &[&query])
                .unwrap();
            if limit == "DEFAULT" {
                assert_eq!(ids(&rows), exact, "the exact scan");
            } else {
                // Approximate, but never short.
                let found = ids(&rows).iter().filter(|id| exact.contains(id)).count();
                assert_eq!(rows.len(), 10, "HNSW path");
                assert!(found >= 9, "HNSW path recall {found}/10");
            }
            let rows = tx
                .query(
                    "SELECT chunk_id FROM hybrid_search(NULL, $1, 10)",
                    &[&query],
                )
                .unwrap();
            assert_eq!(rows.len(), 10);
        }
        // The settings were the call's own.
        let setting: String = tx
            .query_one("SELECT current_setting('hnsw.iterative_scan')", &[])
            .unwrap()
            .get(0);
        assert_eq!(setting, "off");
    });
}

#[test]
fn search_documents_ranks_documents() {
    let lib = library("Documents", "{}");
    let mut app = app();
    as_tenant(&mut app, lib.tenant, |tx| {
        // Titles count: "invoices" is only in a title.
        let rows = tx
            .query(
                "SELECT document_id, title, keyword_rank FROM search_documents('invoices', NULL)",
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, Uuid>(0), lib.billing_doc);
        tx.execute(
            "UPDATE knowledge_documents SET embedding = $1 WHERE id = $2",
            &[&axis_vector(1, 0, 0.0), &lib.shoes_doc],
        )
        .unwrap();
        let rows = tx
            .query(
                "SELECT document_id, vector_rank FROM search_documents(NULL, $1)",
                &[&axis_vector(1, 0, 0.0)],
            )
            .unwrap();
        assert_eq!(
            rows.len(),
            1,
            "documents without an embedding are not in the vector branch"
        );
        assert_eq!(rows[0].get::<_, Uuid>(0), lib.shoes_doc);
        let rows = tx
            .query(
                "SELECT document_id FROM search_documents('green tea', $1, category => 'food')",
                &[&axis_vector(1, 0, 0.0)],
            )
            .unwrap();
        assert_eq!(rows.len(), 1);
    });
}

#[test]
fn ingest_document_stores_chunks_with_their_embeddings() {
    let tenant = provision_tenant("Ingest");
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        let content = "First paragraph about kayaks.\n\nSecond paragraph about paddles.";
        let chunks: Vec<String> = tx
            .query_one("SELECT chunk_text($1, 40, 0)", &[&content])
            .unwrap()
            .get(0);
        assert_eq!(
            chunks,
            vec![
                "First paragraph about kayaks.",
                "Second paragraph about paddles."
            ]
        );
        let embeddings = vec![axis_vector(7, 0, 0.0), axis_vector(8, 0, 0.0)];
        let document: Uuid = tx
            .query_one(
                "SELECT ingest_document('Boats', $1, $2, $3, category => 'outdoor', text_search_config => 'simple')",
                &[&content, &chunks, &embeddings],
            )
            .unwrap()
            .get(0);
        let stored = tx
            .query("SELECT position, content, text_search_config::text FROM knowledge_chunks WHERE document_id = $1 ORDER BY position", &[&document])
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(
            stored[1].get::<_, String>(1),
            "Second paragraph about paddles."
        );
        assert_eq!(stored[1].get::<_, String>(2), "simple");
        let rows = tx
            .query(
                "SELECT chunk_id, document_id FROM hybrid_search('paddles', $1, 1)",
                &[&axis_vector(8, 0, 0.0)],
            )
            .unwrap();
        assert_eq!(rows[0].get::<_, Uuid>("document_id"), document);
        // One embedding short: refused, nothing stored.
        let short = attempt(tx, |t| {
            t.query_one(
                "SELECT ingest_document('Bad', 'x', $1, $2)",
                &[&chunks, &embeddings[..1].to_vec()],
            )
        });
        assert_sqlstate(
            short,
            SqlState::INVALID_PARAMETER_VALUE,
            "one embedding short",
        );
    });
}

#[test]
fn bad_input_is_refused_with_a_sqlstate() {
    let lib = library("Bad input", "{}");
    let mut app = app();
    as_tenant(&mut app, lib.tenant, |tx| {
        let good = axis_vector(1, 0, 0.0);
        let zero = pgvector::Vector::from(vec![0.0f32; DIMENSIONS]);
        let short = pgvector::Vector::from(vec![1.0f32, 2.0, 3.0]);
        let cases: Vec<(
            &str,
            Box<dyn Fn(&mut Transaction) -> Result<Vec<postgres::Row>, postgres::Error>>,
            SqlState,
        )> = vec![
            (
                "wrong dimension",
                Box::new(move |t| t.query("SELECT * FROM hybrid_search('x', $1)", &[&short])),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "zero vector",
                Box::new(move |t| t.query("SELECT * FROM vector_search($1)", &[&zero])),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "match_count 0",
                Box::new(move |t| t.query("SELECT * FROM hybrid_search('x', $1, 0)", &[&good])),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "unknown fusion",
                Box::new(|t| {
                    t.query(
                        "SELECT * FROM hybrid_search('x', NULL, fusion => 'sum')",
                        &[],
                    )
                }),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "unknown keyword_match",
                Box::new(|t| {
                    t.query(
                        "SELECT * FROM keyword_search('x', keyword_match => 'most')",
                        &[],
                    )
                }),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "negative weight",
                Box::new(|t| {
                    t.query(
                        "SELECT * FROM hybrid_search('x', NULL, keyword_weight => -1)",
                        &[],
                    )
                }),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "nothing to search",
                Box::new(|t| t.query("SELECT * FROM hybrid_search(' ', NULL)", &[])),
                SqlState::NULL_VALUE_NOT_ALLOWED,
            ),
            (
                "NULL match_count",
                Box::new(|t| t.query("SELECT * FROM keyword_search('x', NULL)", &[])),
                SqlState::NULL_VALUE_NOT_ALLOWED,
            ),
            (
                "NULL embedding in vector_search",
                Box::new(|t| t.query("SELECT * FROM vector_search(NULL)", &[])),
                SqlState::NULL_VALUE_NOT_ALLOWED,
            ),
            (
                "unknown configuration",
                Box::new(|t| {
                    t.query(
                        "SELECT * FROM hybrid_search('x', NULL, text_search_config => 'klingon')",
                        &[],
                    )
                }),
                SqlState::UNDEFINED_OBJECT,
            ),
            (
                "chunk overlap >= size",
                Box::new(|t| t.query("SELECT chunk_text('abc', 10, 10)", &[])),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "chunk size 0",
                Box::new(|t| t.query("SELECT chunk_text('abc', 0, 0)", &[])),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
        ];
        for (what, call, expected) in cases {
            assert_sqlstate(attempt(tx, |t| call(t)), expected, what);
        }
        for count in [-1, 1001, i32::MAX] {
            let result = attempt(tx, |t| {
                t.query(
                    "SELECT * FROM hybrid_search('x', $1, $2)",
                    &[&axis_vector(1, 0, 0.0), &count],
                )
            });
            assert_sqlstate(
                result,
                SqlState::INVALID_PARAMETER_VALUE,
                &format!("match_count {count}"),
            );
        }
        // pgvector itself refuses NaN and infinity in a vector value.
        for text in ["NaN", "Infinity"] {
            let literal = format!("[{text}{}]", ",1".repeat(DIMENSIONS - 1));
            let result = attempt(tx, |t| {
                t.query(
                    "SELECT * FROM hybrid_search('x', $1::text::vector)",
                    &[&literal],
                )
            });
            let state = sqlstate_of(result, text);
            assert!(state.code().starts_with("22"), "{text}: {}", state.code());
        }
    });
    // A tenant setting that names an unknown configuration is refused when
    // it is written; one whose configuration was dropped since fails the
    // search with the same SQLSTATE.
    assert_sqlstate(
        admin().query_one(
            "SELECT create_tenant('Broken', 'starter', '{\"textSearchConfig\": \"klingon\"}')",
            &[],
        ),
        SqlState::UNDEFINED_OBJECT,
        "create_tenant with textSearchConfig klingon",
    );
    let broken: Uuid = {
        let mut admin = admin();
        admin
            .batch_execute("CREATE TEXT SEARCH CONFIGURATION public.vanishing (COPY = simple)")
            .unwrap();
        let tenant = admin
            .query_one(
                "SELECT create_tenant('Broken', 'starter', '{\"textSearchConfig\": \"public.vanishing\"}')",
                &[],
            )
            .unwrap()
            .get(0);
        admin
            .batch_execute("DROP TEXT SEARCH CONFIGURATION public.vanishing")
            .unwrap();
        tenant
    };
    as_tenant(&mut app, broken, |tx| {
        let result = attempt(tx, |t| t.query("SELECT * FROM keyword_search('x')", &[]));
        assert_sqlstate(result, SqlState::UNDEFINED_OBJECT, "tenant setting klingon");
    });
}

#[test]
fn any_word_mode_leaves_out_words_common_in_the_tenants_chunks() {
    let tenant = provision_tenant("Common words");
    let mut app = app();
    let (error_code_chunk, noisy): (Uuid, Vec<Uuid>) = as_tenant(&mut app, tenant, |tx| {
        let document = insert_document(tx, "Errors", "Errors", None);
        // "customer" and "error" are in nearly every chunk, "zx81" in one.
        let noisy = (0..60)
            .map(|i| {
                insert_chunk(
                    tx,
                    document,
                    i,
                    "customer error customer error",
                    &axis_vector(9, 0, 0.0),
                )
            })
            .collect();
        let rare = insert_chunk(
            tx,
            document,
            60,
            "error zx81 appears",
            &axis_vector(9, 0, 0.0),
        );
        (rare, noisy)
    });
    as_tenant(&mut app, tenant, |tx| {
        // "customer" and "error" are in 60 of the 61 chunks.
        tx.execute(
            "SELECT set_config('platform.common_word_share', '0.5', true)",
            &[],
        )
        .unwrap();
        let rows = tx
            .query(
                "SELECT chunk_id FROM keyword_search('customer error zx81', 100, keyword_match => 'any')",
                &[],
            )
            .unwrap();
        assert_eq!(
            ids(&rows),
            vec![error_code_chunk],
            "only the distinctive word is searched"
        );
        // When every word is common, they are all kept.
        let rows = tx
            .query(
                "SELECT chunk_id FROM keyword_search('customer error', 100, keyword_match => 'any')",
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), noisy.len() + 1);
    });
}

#[test]
fn any_word_mode_ranks_a_bounded_number_of_rows_and_keeps_the_rare_ones() {
    let tenant = provision_tenant("Bounded ranking");
    let mut app = app();
    let (rare, common, rare_document): (Uuid, Vec<Uuid>, Uuid) =
        as_tenant(&mut app, tenant, |tx| {
            let document = insert_document(tx, "Shipping", "Shipping", None);
            let common = (0..30)
                .map(|i| insert_chunk(tx, document, i, "shipping delayed", &axis_vector(9, 0, 0.0)))
                .collect();
            // Shares no word with the others: only a rare-word tier finds it.
            let rare = insert_chunk(tx, document, 30, "voucher zq17", &axis_vector(9, 0, 0.0));
            // The same over documents (search_documents' keyword branch).
            for i in 0..30 {
                insert_document(tx, &format!("Shipping {i}"), "shipping delayed", None);
            }
            let rare_document = insert_document(tx, "Voucher", "voucher zq17", None);
            (rare, common, rare_document)
        });
    fn search(tx: &mut Transaction, limit: &str) -> Vec<Uuid> {
        tx.execute(
            "SELECT set_config('platform.keyword_rank_limit', $1, true)",
            &[&limit],
        )
        .unwrap();
        ids(&tx
            .query(
                "SELECT chunk_id FROM keyword_search('shipping zq17', 100)",
                &[],
            )
            .unwrap())
    }
    fn search_documents(tx: &mut Transaction, limit: &str) -> Vec<Uuid> {
        tx.execute(
            "SELECT set_config('platform.keyword_rank_limit', $1, true)",
            &[&limit],
        )
        .unwrap();
        tx.query(
            "SELECT document_id FROM search_documents('shipping zq17', NULL, 100)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
    }
    as_tenant(&mut app, tenant, |tx| {
        // "shipping" is in all but one of the tenant's chunks: keep it, so
        // that both words are searched and ranked in tiers.
        tx.execute(
            "SELECT set_config('platform.common_word_share', '1', true)",
            &[],
        )
        .unwrap();
        let bounded = search(tx, "4");
        assert!(
            bounded.len() <= 4,
            "at most 4 rows ranked, got {}",
            bounded.len()
        );
        assert!(bounded.contains(&rare), "the rarer word's tier comes first");
        let every = search(tx, "0");
        assert_eq!(every.len(), common.len() + 1, "0 ranks every match");
        let bounded = search_documents(tx, "4");
        assert!(
            bounded.len() <= 4,
            "at most 4 documents ranked, got {}",
            bounded.len()
        );
        assert!(
            bounded.contains(&rare_document),
            "the rarer word's tier comes first over documents too"
        );
        assert_eq!(
            search_documents(tx, "0").len(),
            32,
            "0 ranks every matching document"
        );
    });
    // An 'any' query is its words; an 'all' query (AND, phrases, negation)
    // is matched as a whole, and hands on all of its words for scoring.
    let split = |query: &str, mode: &str| -> Option<Vec<String>> {
        admin()
            .query_one(
                "SELECT lexemes FROM platform_keyword_query($1, 'simple', $2, false)",
                &[&query, &mode],
            )
            .unwrap()
            .get(0)
    };
    let mut words = split("apple pear", "any").unwrap();
    words.sort();
    assert_eq!(words, ["apple", "pear"]);
    for all in ["apple pear", "\"apple pear\"", "apple -pear"] {
        let mut words = split(all, "all").unwrap();
        words.sort();
        assert_eq!(words, ["apple", "pear"], "{all}");
    }
}

/// A vector whose first coordinate is `first` and every other one `rest`.
fn leaning_vector(first: f32, rest: f32) -> pgvector::Vector {
    let mut v = vec![rest; 1024];
    v[0] = first;
    pgvector::Vector::from(v)
}

#[test]
fn a_scan_compares_whole_vectors_only_for_the_nearest_sketches() {
    let tenant = provision_tenant("Sketches");
    let mut app = app();
    // The question leans slightly positive on every axis but the first. The
    // nearest chunk by cosine leans slightly negative there: its sketch (the
    // signs) is the question's farthest. Forty decoys far away by cosine
    // share the question's signs, so their sketches match it exactly.
    let query = leaning_vector(1.0, 0.001);
    let (nearest, decoys) = as_tenant(&mut app, tenant, |tx| {
        // The documents the same way, for search_documents.
        tx.execute(
            "INSERT INTO knowledge_documents (title, content, embedding)
             SELECT 'decoy document ' || i, 'decoy', $1 FROM generate_series(1, 40) AS i",
            &[&leaning_vector(0.2, 0.05)],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO knowledge_documents (title, content, embedding) VALUES ('nearest document', 'nearest', $1)",
            &[&leaning_vector(1.0, -0.001)],
        )
        .unwrap();
        let document = insert_document(tx, "Signs", "Signs", None);
        let nearest = insert_chunk(tx, document, 0, "nearest", &leaning_vector(1.0, -0.001));
        let decoys: Vec<Uuid> = (1..=40)
            .map(|i| {
                let decoy = leaning_vector(0.2 + i as f32 * 0.001, 0.05);
                insert_chunk(tx, document, i, &format!("decoy {i}"), &decoy)
            })
            .collect();
        (nearest, decoys)
    });
    as_tenant(&mut app, tenant, |tx| {
        let best_document = |tx: &mut Transaction| -> String {
            tx.query_one("SELECT title FROM search_documents(NULL, $1, 1)", &[&query])
                .unwrap()
                .get(0)
        };
        let search = |tx: &mut Transaction, count: i32| -> Vec<(Uuid, f64)> {
            tx.query(
                "SELECT chunk_id, distance FROM vector_search($1, $2)",
                &[&query, &count],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        };
        // 41 chunks, fewer than the default candidates: every one is
        // compared whole, and the nearest is found.
        assert_eq!(
            search(tx, 1)[0].0,
            nearest,
            "default: the whole scope compared"
        );
        assert_eq!(best_document(tx), "nearest document");
        // Five candidates by sketch: all decoys, so the nearest is not
        // among the rows compared, and the best decoy answers.
        tx.batch_execute("SET LOCAL platform.sketch_candidates = 5")
            .unwrap();
        let found = search(tx, 1);
        assert_eq!(found.len(), 1);
        assert!(
            decoys.contains(&found[0].0),
            "a decoy, ranked by sketch first"
        );
        // search_documents asks for 40 candidates: five is too few to
        // matter, so the 42 documents are ranked by sketch for 40.
        assert!(best_document(tx).starts_with("decoy document"));
        // Its distance is the exact cosine distance, not the sketch's.
        let exact: f64 = tx
            .query_one(
                "SELECT embedding <=> $1 FROM knowledge_chunks WHERE id = $2",
                &[&query, &found[0].0],
            )
            .unwrap()
            .get(0);
        assert!(
            (found[0].1 - exact).abs() < 1e-9,
            "{} against {exact}",
            found[0].1
        );
        // Never fewer candidates than rows wanted: ten asked, ten returned,
        // ordered by their exact distances.
        let ten = search(tx, 10);
        assert_eq!(ten.len(), 10);
        assert!(ten.windows(2).all(|w| w[0].1 <= w[1].1), "{ten:?}");
        let rows = tx
            .query(
                "SELECT chunk_id FROM hybrid_search(NULL, $1, 10)",
                &[&query],
            )
            .unwrap();
        assert_eq!(rows.len(), 10);
        // 0: every chunk compared whole, the exact answer again.
        tx.batch_execute("SET LOCAL platform.sketch_candidates = 0")
            .unwrap();
        assert_eq!(search(tx, 1)[0].0, nearest, "sketch_candidates 0: exact");
        assert_eq!(best_document(tx), "nearest document");
    });
}

/// The ids platform_nearest_sketches returns, and those of the SQL ranking it
/// stands for (`ORDER BY sketch <~> query, id`), as the application role.
fn sketch_rankings(
    tx: &mut Transaction,
    documents: bool,
    query: &pgvector::Vector,
    wanted: i32,
    scope: Option<&[Uuid]>,
    category: Option<&str>,
) -> (Vec<Uuid>, Vec<Uuid>) {
    let index = if documents {
        "knowledge_category_idx"
    } else {
        "knowledge_chunk_document_idx"
    };
    let from_index: Vec<Uuid> = tx
        .query_one(
            &format!(
                "SELECT platform_nearest_sketches('{index}'::regclass, $1::vector::real[], $2, $3, $4)"
            ),
            &[query, &wanted, &scope, &category],
        )
        .unwrap()
        .get(0);
    let by_sql = if documents {
        "SELECT d.id FROM knowledge_documents d
         WHERE d.embedding_sketch IS NOT NULL AND ($4::text IS NULL OR d.category = $4)
           AND $3::uuid[] IS NULL
         ORDER BY d.embedding_sketch <~> binary_quantize($1::vector)::bit(1024), d.id LIMIT $2"
    } else {
        "SELECT c.id FROM knowledge_chunks c
         WHERE ($3::uuid[] IS NULL OR c.document_id = ANY ($3)) AND $4::text IS NULL
         ORDER BY c.embedding_sketch <~> binary_quantize($1::vector)::bit(1024), c.id LIMIT $2"
    };
    let wanted = i64::from(wanted);
    let expected = tx
        .query(by_sql, &[query, &wanted, &scope, &category])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (from_index, expected)
}

#[test]
fn the_sketch_scan_ranks_as_the_sql_ordering_by_sketch_distance_does() {
    let tenant = provision_tenant("Sketch scan");
    let other = provision_tenant("Sketch scan, other tenant");
    let mut app = app();
    // Many ties: sketches of vectors with few distinct sign patterns.
    let spread = |tx: &mut Transaction,
                  title: &str,
                  category: Option<&str>,
                  count: i32,
                  seed: i32| {
        let document = insert_document(tx, title, title, category);
        tx.execute(
            "UPDATE knowledge_documents SET embedding =
                 (SELECT array_agg(sin(i * 0.37 + $2::float8) ORDER BY i) FROM generate_series(0, 1023) i)::real[]::vector
             WHERE id = $1",
            &[&document, &(seed as f64)],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO knowledge_chunks (document_id, position, content, embedding)
             SELECT $1, g, 'chunk ' || g,
                    (SELECT array_agg(sin(i * 0.37 + (g % 7) + $3::float8) + (random() - 0.5) * 0.3 ORDER BY i)
                     FROM generate_series(0, 1023) i)::real[]::vector
             FROM generate_series(0, $2 - 1) g",
            &[&document, &count, &(seed as f64)],
        )
        .unwrap();
        document
    };
    let (first, second) = as_tenant(&mut app, tenant, |tx| {
        let first = spread(tx, "first", Some("guides"), 300, 1);
        let second = spread(tx, "second", None, 200, 2);
        spread(tx, "third", Some("guides"), 50, 3);
        // A document without an embedding has no sketch: never returned.
        insert_document(tx, "no embedding", "none", Some("guides"));
        (first, second)
    });
    as_tenant(&mut app, other, |tx| {
        spread(tx, "other tenant's", Some("guides"), 300, 1);
    });
    let query = platform_client_tests::fixture::embedding(0.5);
    // Vacuumed, the pages are all-visible and the scan reads the index
    // alone; the rows changed afterwards are checked in the heap.
    admin()
        .batch_execute("VACUUM knowledge_chunks, knowledge_documents")
        .unwrap();
    as_tenant(&mut app, tenant, |tx| {
        for wanted in [1, 17, 200, 1000] {
            let (got, expected) = sketch_rankings(tx, false, &query, wanted, None, None);
            assert_eq!(got.len(), expected.len());
            assert_eq!(got, expected, "chunks, {wanted} wanted");
            let scope = [second];
            let (got, expected) = sketch_rankings(tx, false, &query, wanted, Some(&scope), None);
            assert_eq!(got, expected, "chunks of one document, {wanted} wanted");
            let (got, expected) = sketch_rankings(tx, true, &query, wanted, None, Some("guides"));
            assert_eq!(got, expected, "documents of a category, {wanted} wanted");
            let (got, expected) = sketch_rankings(tx, true, &query, wanted, None, None);
            assert_eq!(got, expected, "documents, {wanted} wanted");
        }
        // What the statement cannot see, the scan does not return: rows
        // deleted in this transaction (still in the index), and rows added
        // in it are seen.
        tx.execute(
            "DELETE FROM knowledge_chunks WHERE document_id = $1 AND position < 100",
            &[&first],
        )
        .unwrap();
        let (got, expected) = sketch_rankings(tx, false, &query, 1000, None, None);
        assert_eq!(got.len(), 450);
        assert_eq!(got, expected, "after a delete in the same transaction");
    });
    // Another session's uncommitted rows and the other tenant's rows are
    // never among them; without a context, nothing.
    let mut writer = platform_client_tests::app();
    let mut pending = writer.transaction().unwrap();
    pending
        .execute("SELECT set_tenant($1)", &[&tenant])
        .unwrap();
    spread(&mut pending, "uncommitted", None, 20, 4);
    as_tenant(&mut app, tenant, |tx| {
        let (got, expected) = sketch_rankings(tx, false, &query, 1000, None, None);
        assert_eq!(got.len(), 450, "the committed chunks of this tenant only");
        assert_eq!(got, expected);
    });
    pending.rollback().unwrap();
    let nothing: Vec<Uuid> = app
        .query_one(
            "SELECT platform_nearest_sketches('knowledge_chunk_document_idx'::regclass, $1::vector::real[], 10, NULL, NULL)",
            &[&query],
        )
        .unwrap()
        .get(0);
    assert!(nothing.is_empty(), "no tenant context: {nothing:?}");
    // Only the extension's sketch indexes, with the filter that fits them.
    as_tenant(&mut app, tenant, |tx| {
        for (index, scope, category, expected) in [
            (
                "knowledge_chunks_pkey",
                None,
                None,
                SqlState::WRONG_OBJECT_TYPE,
            ),
            ("knowledge_chunks", None, None, SqlState::WRONG_OBJECT_TYPE),
            (
                "pg_class_oid_index",
                None,
                None,
                SqlState::WRONG_OBJECT_TYPE,
            ),
            (
                "knowledge_category_idx",
                Some(vec![first]),
                None,
                SqlState::INVALID_PARAMETER_VALUE,
            ),
            (
                "knowledge_chunk_document_idx",
                None,
                Some("guides"),
                SqlState::INVALID_PARAMETER_VALUE,
            ),
        ] {
            let result = attempt(tx, |tx| {
                tx.query_one(
                    &format!("SELECT platform_nearest_sketches('{index}'::regclass, $1::vector::real[], 10, $2, $3)"),
                    &[&query, &scope, &category],
                )
            });
            assert_sqlstate(result, expected, index);
        }
        let result = attempt(tx, |tx| {
            tx.query_one(
                "SELECT platform_nearest_sketches('knowledge_chunk_document_idx'::regclass, $1::vector::real[], 0, NULL, NULL)",
                &[&query],
            )
        });
        assert_sqlstate(result, SqlState::INVALID_PARAMETER_VALUE, "0 wanted");
    });
}

#[test]
fn when_hnsw_comes_back_short_the_exact_scan_answers() {
    let crowd = provision_tenant("Crowd near the question");
    let few = provision_tenant("Few documents");
    let mut app = app();
    // The crowd's documents and chunks lie nearer to the query than any of
    // the other tenant's: the graph's first candidates are all the crowd's.
    let spread = |tx: &mut Transaction, count: i32, first: f32, step: f32| {
        let document = insert_spread_chunks(tx, "spread", count, 5, first, step);
        tx.execute(
            "INSERT INTO knowledge_documents (title, content, embedding)
             SELECT 'doc ' || c.position, c.content, c.embedding FROM knowledge_chunks c
             WHERE c.document_id = $1",
            &[&document],
        )
        .unwrap();
    };
    as_tenant(&mut app, crowd, |tx| spread(tx, 400, 0.0, 0.0002));
    as_tenant(&mut app, few, |tx| spread(tx, 30, 0.3, 0.01));
    let query = axis_vector(0, 5, 0.01);
    as_tenant(&mut app, few, |tx| {
        let exact = |tx: &mut Transaction, table: &str| -> Vec<Uuid> {
            tx.query(
                // A subquery's column: the planner cannot walk an index for it.
                &format!(
                    "SELECT id FROM (SELECT id, embedding <=> $1 AS distance FROM {table}
                                     WHERE embedding IS NOT NULL OFFSET 0) s
                     ORDER BY distance, id LIMIT 10"
                ),
                &[&query],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
        };
        let (chunks, documents) = (
            exact(tx, "knowledge_chunks"),
            exact(tx, "knowledge_documents"),
        );
        // HNSW for every scope, and an iterative scan that gives up at once.
        tx.batch_execute(
            "SET LOCAL platform.exact_scan_limit = 1; SET LOCAL hnsw.max_scan_tuples = 1",
        )
        .unwrap();
        let found = ids(&tx
            .query("SELECT chunk_id FROM vector_search($1, 10)", &[&query])
            .unwrap());
        assert_eq!(found, chunks, "vector_search");
        let found: Vec<Uuid> = tx
            .query(
                "SELECT document_id FROM search_documents(NULL, $1, 10)",
                &[&query],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(found, documents, "search_documents");
    });
}

/// The demo (scripts/demo.sh) ingests demo/knowledge/ with vectors shipped for
/// each chunk chunk_text makes: a change to chunk_text must come with
/// vectors rebuilt by demo/knowledge/build.py.
#[test]
fn the_demo_knowledge_base_has_a_vector_for_every_chunk() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/knowledge");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let mut vectors = std::collections::HashMap::new();
    for line in read("chunks.tsv").lines() {
        let (digest, vector) = line.split_once('\t').expect("md5 TAB vector");
        vectors.insert(digest.to_owned(), vector.split(',').count());
    }
    let mut db = admin();
    let mut chunks = 0;
    for document in read("documents.jsonl").lines() {
        for row in db
            .query(
                "SELECT md5(c) FROM unnest(chunk_text($1::text::jsonb->>'content', 1000, 100)) AS c",
                &[&document],
            )
            .unwrap()
        {
            let digest: String = row.get(0);
            assert_eq!(
                vectors.get(&digest),
                Some(&384),
                "a chunk without its 384-dimension vector: run demo/knowledge/build.py"
            );
            chunks += 1;
        }
    }
    assert_eq!(chunks, vectors.len(), "every shipped vector is a chunk's");
    for line in read("questions.tsv").lines() {
        let (_, vector) = line.split_once('\t').expect("question TAB vector");
        assert_eq!(vector.split(',').count(), 384);
    }
}
