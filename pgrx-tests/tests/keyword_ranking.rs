//! BM25 keyword ranking with each tenant's own statistics: the scores are
//! BM25's, the counts stay exact through every kind of write, and no other
//! tenant's rows change a tenant's results.

use platform_client_tests::search_fixture::*;
use platform_client_tests::*;
use postgres::error::SqlState;
use uuid::Uuid;

const K1: f64 = 1.2;
const B: f64 = 0.75;

fn simple_tenant(name: &str) -> Uuid {
    admin()
        .query_one(
            "SELECT create_tenant($1, 'starter', '{\"textSearchConfig\": \"simple\"}'::jsonb)",
            &[&name],
        )
        .unwrap()
        .get(0)
}

/// BM25 as the textbook has it (Lucene's inverse document frequency).
fn bm25(frequency: f64, length: f64, average: f64, rows: f64, rows_with_word: f64) -> f64 {
    let weight = (1.0 + (rows - rows_with_word + 0.5) / (rows_with_word + 0.5)).ln();
    weight * frequency * (K1 + 1.0) / (frequency + K1 * (1.0 - B + B * length / average))
}

fn keyword_scores(tx: &mut postgres::Transaction, query: &str) -> Vec<(Uuid, f64)> {
    tx.execute(
        "SELECT set_config('platform.common_word_share', '1', true)",
        &[],
    )
    .unwrap();
    tx.query(
        "SELECT chunk_id, keyword_score FROM keyword_search($1, 100)",
        &[&query],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn verify_statistics() -> i64 {
    admin()
        .query_one(
            "SELECT count(*) FROM platform_verify_keyword_statistics()",
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn keyword_scores_are_bm25_over_the_tenants_own_rows() {
    let tenant = simple_tenant("BM25 by hand");
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        let document = insert_document(tx, "Words", "Words", None);
        let twice = insert_chunk(tx, document, 0, "alpha beta beta", &axis_vector(1, 0, 0.0));
        let once = insert_chunk(tx, document, 1, "alpha gamma", &axis_vector(2, 0, 0.0));
        insert_chunk(tx, document, 2, "delta", &axis_vector(3, 0, 0.0));
        // Lengths count every word's occurrences, plus one for the tenant's
        // own lexeme that every row holds: 4, 3 and 2.
        let average = (4.0 + 3.0 + 2.0) / 3.0;
        let expected_twice = bm25(1.0, 4.0, average, 3.0, 2.0) + bm25(2.0, 4.0, average, 3.0, 1.0);
        let expected_once = bm25(1.0, 3.0, average, 3.0, 2.0);
        let scores = keyword_scores(tx, "beta alpha");
        assert_eq!(scores.len(), 2, "{scores:?}");
        assert_eq!(scores[0].0, twice);
        assert_eq!(scores[1].0, once);
        assert!(
            (scores[0].1 - expected_twice).abs() < 1e-9,
            "{scores:?} vs {expected_twice}"
        );
        assert!(
            (scores[1].1 - expected_once).abs() < 1e-9,
            "{scores:?} vs {expected_once}"
        );
    });
}

#[test]
fn a_rare_word_outweighs_repetitions_of_a_common_one() {
    let tenant = simple_tenant("Rare beats repeated");
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        let document = insert_document(tx, "Errors", "Errors", None);
        for i in 0..20 {
            insert_chunk(tx, document, i, "printer error", &axis_vector(1, 0, 0.0));
        }
        let repeated = insert_chunk(
            tx,
            document,
            20,
            "error error error error printer",
            &axis_vector(1, 0, 0.0),
        );
        let code = insert_chunk(
            tx,
            document,
            21,
            "printer e4012 occurred",
            &axis_vector(1, 0, 0.0),
        );
        let scores = keyword_scores(tx, "printer error e4012");
        assert_eq!(scores[0].0, code, "{scores:?}");
        assert_eq!(scores[1].0, repeated, "{scores:?}");
    });
}

#[test]
fn another_tenants_rows_never_change_a_tenants_results() {
    let mine = simple_tenant("Mine, unaffected");
    let theirs = simple_tenant("Theirs, noisy");
    let mut app = app();
    as_tenant(&mut app, mine, |tx| {
        let document = insert_document(tx, "Refunds", "Refunds", None);
        insert_chunk(
            tx,
            document,
            0,
            "refunds take five days",
            &axis_vector(1, 0, 0.0),
        );
        insert_chunk(
            tx,
            document,
            1,
            "invoice refunds and credits",
            &axis_vector(2, 0, 0.0),
        );
        insert_chunk(tx, document, 2, "credits expire", &axis_vector(3, 0, 0.0));
    });
    let query = "refunds credits invoice";
    let search = |app: &mut postgres::Client| {
        as_tenant(app, mine, |tx| {
            let keyword = keyword_scores(tx, query);
            let hybrid: Vec<(Uuid, f64)> = tx
                .query(
                    "SELECT chunk_id, score FROM hybrid_search($1, $2, 10)",
                    &[&query, &axis_vector(2, 1, 0.3)],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            (keyword, hybrid)
        })
    };
    let before = search(&mut app);
    as_tenant(&mut app, theirs, |tx| {
        let document = insert_document(tx, "Noise", "refunds credits invoice", None);
        for i in 0..200 {
            insert_chunk(
                tx,
                document,
                i,
                if i % 2 == 0 {
                    "refunds refunds refunds"
                } else {
                    "credits invoice"
                },
                &axis_vector(2, 1, 0.3),
            );
        }
    });
    admin().batch_execute("ANALYZE knowledge_chunks").unwrap();
    let after = search(&mut app);
    assert_eq!(before, after, "the same ids with bit-identical scores");
}

#[test]
fn the_counts_stay_exact_through_every_kind_of_write() {
    let tenant = simple_tenant("Counted");
    let other = simple_tenant("Counted too");
    let mut app = app();
    let (document, chunk) = as_tenant(&mut app, tenant, |tx| {
        let document: Uuid = tx
            .query_one(
                "SELECT ingest_document('Guide', 'How to reset a router',
                     ARRAY['reset the router', 'hold the button', 'wait for the light'],
                     ARRAY[$1, $2, $3]::vector[])",
                &[
                    &axis_vector(1, 0, 0.0),
                    &axis_vector(2, 0, 0.0),
                    &axis_vector(3, 0, 0.0),
                ],
            )
            .unwrap()
            .get(0);
        let chunk: Uuid = tx
            .query_one(
                "SELECT id FROM knowledge_chunks WHERE document_id = $1 AND position = 0",
                &[&document],
            )
            .unwrap()
            .get(0);
        (document, chunk)
    });
    as_tenant(&mut app, other, |tx| {
        let document = insert_document(tx, "Router", "reset the router", None);
        insert_chunk(tx, document, 0, "router lights", &axis_vector(1, 0, 0.0));
    });
    assert_eq!(verify_statistics(), 0, "after inserts");
    let counts = |tenant: Uuid, lexeme: &str| -> Option<(i32, i32)> {
        admin()
            .query_opt(
                "SELECT chunks, documents FROM knowledge_lexeme_counts WHERE tenant_id = $1 AND lexeme = $2",
                &[&tenant, &lexeme],
            )
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    };
    assert_eq!(counts(tenant, "router"), Some((1, 1)));
    assert_eq!(
        counts(other, "router"),
        Some((1, 1)),
        "each tenant counts its own"
    );
    assert_eq!(
        counts(tenant, "the"),
        Some((3, 0)),
        "the simple configuration keeps 'the'"
    );

    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "UPDATE knowledge_chunks SET content = 'unplug the modem' WHERE id = $1",
            &[&chunk],
        )
        .unwrap();
        // An update that leaves the text alone changes no count.
        tx.execute(
            "UPDATE knowledge_chunks SET metadata = '{}' WHERE document_id = $1",
            &[&document],
        )
        .unwrap();
        tx.execute(
            "UPDATE knowledge_documents SET content = 'How to unplug a modem' WHERE id = $1",
            &[&document],
        )
        .unwrap();
    });
    assert_eq!(verify_statistics(), 0, "after updates");
    assert_eq!(
        counts(tenant, "router"),
        None,
        "a word no row holds is gone"
    );
    assert_eq!(counts(tenant, "modem"), Some((1, 1)));

    as_tenant(&mut app, tenant, |tx| {
        tx.execute("DELETE FROM knowledge_chunks WHERE id = $1", &[&chunk])
            .unwrap();
    });
    assert_eq!(verify_statistics(), 0, "after deleting a chunk");
    as_tenant(&mut app, tenant, |tx| {
        tx.execute(
            "DELETE FROM knowledge_documents WHERE id = $1",
            &[&document],
        )
        .unwrap();
    });
    assert_eq!(
        verify_statistics(),
        0,
        "after deleting a document and its chunks"
    );
    let totals: (i64, i64) = admin()
        .query_one(
            "SELECT chunks, documents FROM knowledge_keyword_totals WHERE tenant_id = $1",
            &[&tenant],
        )
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(totals, (0, 0));

    // Counts that drifted (a load with triggers off) are found and rebuilt,
    // for one tenant without touching the others.
    admin()
        .execute(
            "UPDATE knowledge_lexeme_counts SET chunks = chunks + 5 WHERE tenant_id = $1",
            &[&other],
        )
        .unwrap();
    assert!(verify_statistics() > 0);
    admin()
        .execute("SELECT platform_rebuild_keyword_statistics($1)", &[&other])
        .unwrap();
    assert_eq!(verify_statistics(), 0, "after a rebuild");

    // Deleting a tenant deletes its counts with it.
    admin()
        .execute("DELETE FROM tenants WHERE id = $1", &[&other])
        .unwrap();
    assert_eq!(verify_statistics(), 0, "after deleting a tenant");
    assert_eq!(counts(other, "router"), None);
}

#[test]
fn the_statistics_are_the_owners_alone() {
    let tenant = simple_tenant("Private counts");
    let mut app = app();
    as_tenant(&mut app, tenant, |tx| {
        for table in ["knowledge_lexeme_counts", "knowledge_keyword_totals"] {
            let result = attempt(tx, |t| t.query(&format!("SELECT * FROM {table}"), &[]));
            assert_sqlstate(result, SqlState::INSUFFICIENT_PRIVILEGE, table);
        }
        let result = attempt(tx, |t| {
            t.execute("SELECT platform_rebuild_keyword_statistics()", &[])
        });
        assert_sqlstate(result, SqlState::INSUFFICIENT_PRIVILEGE, "rebuild");
    });
}

#[test]
fn an_exact_match_of_rare_words_ranks_first_whatever_the_embedding_says() {
    let tenant = simple_tenant("Rare words first");
    let mut app = app();
    let rare = as_tenant(&mut app, tenant, |tx| {
        // Sixty chunks near the query's embedding, none with the two words,
        // and one far from it that holds both.
        insert_spread_chunks(tx, "Near the question", 60, 2, 0.0, 0.002);
        let document = insert_document(tx, "Lab notes", "Lab notes", None);
        insert_chunk(
            tx,
            document,
            0,
            "the quasar zebrafish protocol",
            &axis_vector(700, 0, 0.0),
        )
    });
    as_tenant(&mut app, tenant, |tx| {
        for fusion in ["convex", "rrf", "tmm"] {
            let rows = tx
                .query(
                    "SELECT chunk_id, vector_rank, keyword_rank
                     FROM hybrid_search('quasar zebrafish', $1, 10, fusion => $2)",
                    &[&axis_vector(0, 2, 0.05), &fusion],
                )
                .unwrap();
            assert_eq!(rows.len(), 10, "{fusion}: match_count rows");
            assert_eq!(rows[0].get::<_, Uuid>(0), rare, "{fusion}");
            assert_ne!(
                rows[0].get::<_, Option<i64>>(1),
                Some(1),
                "{fusion}: not by its vector"
            );
        }
        // However little the keywords weigh; with the rule off, fused
        // order alone: a keyword weight of 0.1 sinks the row below the
        // vector branch's best.
        let position = |tx: &mut postgres::Transaction| {
            tx.query(
                "SELECT chunk_id FROM hybrid_search('quasar zebrafish', $1, 10, fusion => 'rrf',
                                                   keyword_weight => 0.1)",
                &[&axis_vector(0, 2, 0.05)],
            )
            .unwrap()
            .iter()
            .position(|r| r.get::<_, Uuid>(0) == rare)
        };
        assert_eq!(position(tx), Some(0));
        tx.execute(
            "SELECT set_config('platform.exact_match_word_share', '0', true)",
            &[],
        )
        .unwrap();
        assert!(position(tx).is_none_or(|p| p > 0), "{:?}", position(tx));
    });
    // The same over documents: the one whose text holds both words first.
    as_tenant(&mut app, tenant, |tx| {
        let document = insert_document(tx, "Quasar zebrafish", "A quasar zebrafish handbook", None);
        let first: Uuid = tx
            .query_one(
                "SELECT document_id FROM search_documents('quasar zebrafish', NULL, 1, fusion => 'tmm')",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(first, document);
    });
}
