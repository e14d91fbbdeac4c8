//! Benchmark of the extension's search against the design document's SQL, on
//! the same synthetic corpus in one run (see corpus.rs). Usage:
//!
//!   search_bench SIZE OUT_DIR     SIZE = smoke | small | large
//!
//! connecting as postgres to BENCH_HOST:BENCH_PORT (bench/search.sh starts a
//! throw-away cluster and runs this). Writes OUT_DIR/search-SIZE.md (tables)
//! and OUT_DIR/search-SIZE.json (figures for bench/plot_search.py).
//!
//!   search_bench realtext load|measure DATA_DIR [OUT_DIR]
//!
//! runs the benchmark on real text instead (realtext.rs,
//! bench/search_realtext.sh).

mod corpus;
mod load;
mod realtext;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use pgvector::Vector;
use postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use corpus::{Corpus, Query, QueryKind};
use load::{id, APP_ROLE};

const MATCH_COUNT: i64 = 10;

struct Size {
    name: &'static str,
    chunks: usize,
    queries_per_kind: usize,
    /// The design document's SQL recomputes to_tsvector over the tenant's
    /// rows on every query: at the large size it runs on fewer queries.
    document_sql_queries_per_kind: usize,
}

const SIZES: [Size; 3] = [
    Size {
        name: "smoke",
        chunks: 3_000,
        queries_per_kind: 6,
        document_sql_queries_per_kind: 6,
    },
    Size {
        name: "small",
        chunks: 20_000,
        queries_per_kind: 60,
        document_sql_queries_per_kind: 60,
    },
    Size {
        name: "large",
        chunks: 250_000,
        queries_per_kind: 60,
        document_sql_queries_per_kind: 12,
    },
];

fn connect(dbname: &str, user: &str) -> Client {
    let host = std::env::var("BENCH_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("BENCH_PORT")
        .expect("BENCH_PORT")
        .parse()
        .unwrap();
    postgres::Config::new()
        .host(&host)
        .port(port)
        .user(user)
        .dbname(dbname)
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("connect to {dbname} as {user}: {e}"))
}

/// What a method returned for one query.
struct Outcome {
    millis: f64,
    ids: Vec<Uuid>,
}

/// A way of searching, as the application role inside the tenant's context.
struct Method {
    name: &'static str,
    /// Judged against the target document (true) or chunk (false).
    document_level: bool,
    sql: &'static str,
    /// (text, embedding, tenant) -> parameters
    params: fn(&str, &Vector, &Uuid) -> Vec<Box<dyn postgres::types::ToSql + Sync>>,
    limited: bool,
    /// Extension settings (name, value) set for the query's transaction:
    /// how the alternatives to the built-in limits are measured.
    settings: &'static [(&'static str, &'static str)],
}

fn text_and_vector(t: &str, v: &Vector, _: &Uuid) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    vec![Box::new(t.to_owned()), Box::new(v.clone())]
}
fn document_sql_params(
    t: &str,
    v: &Vector,
    tenant: &Uuid,
) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    vec![
        Box::new(v.clone()),
        Box::new(*tenant),
        Box::new(t.to_owned()),
        Box::new(MATCH_COUNT),
    ]
}
fn vector_only(_: &str, v: &Vector, _: &Uuid) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    vec![Box::new(v.clone())]
}
fn text_only(t: &str, _: &Vector, _: &Uuid) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    vec![Box::new(t.to_owned())]
}

/// The design document's query, verbatim but for the placeholders.
const DOCUMENT_SQL: &str = "
    WITH vector_search AS (
      SELECT id, title, content, 1 - (embedding <=> $1::vector) AS vector_score
      FROM knowledge_documents
      WHERE tenant_id = $2
      ORDER BY embedding <=> $1::vector
      LIMIT 30
    ),
    keyword_search AS (
      SELECT id, title, content,
        ts_rank(to_tsvector('english', content), plainto_tsquery('english', $3)) AS keyword_score
      FROM knowledge_documents
      WHERE tenant_id = $2
        AND to_tsvector('english', content) @@ plainto_tsquery('english', $3)
      ORDER BY keyword_score DESC
      LIMIT 30
    ),
    combined AS (
      SELECT COALESCE(v.id, k.id) AS id, COALESCE(v.title, k.title) AS title,
        COALESCE(v.content, k.content) AS content,
        COALESCE(v.vector_score, 0) * 0.6 + COALESCE(k.keyword_score, 0) * 0.4 AS combined_score
      FROM vector_search v
      FULL OUTER JOIN keyword_search k ON v.id = k.id
    )
    SELECT id FROM combined ORDER BY combined_score DESC LIMIT $4";

/// The same over chunks (which have no title).
const DOCUMENT_SQL_OVER_CHUNKS: &str = "
    WITH vector_search AS (
      SELECT id, content, 1 - (embedding <=> $1::vector) AS vector_score
      FROM knowledge_chunks
      WHERE tenant_id = $2
      ORDER BY embedding <=> $1::vector
      LIMIT 30
    ),
    keyword_search AS (
      SELECT id, content,
        ts_rank(to_tsvector('english', content), plainto_tsquery('english', $3)) AS keyword_score
      FROM knowledge_chunks
      WHERE tenant_id = $2
        AND to_tsvector('english', content) @@ plainto_tsquery('english', $3)
      ORDER BY keyword_score DESC
      LIMIT 30
    ),
    combined AS (
      SELECT COALESCE(v.id, k.id) AS id,
        COALESCE(v.vector_score, 0) * 0.6 + COALESCE(k.keyword_score, 0) * 0.4 AS combined_score
      FROM vector_search v
      FULL OUTER JOIN keyword_search k ON v.id = k.id
    )
    SELECT id FROM combined ORDER BY combined_score DESC LIMIT $4";

/// What is measured. The defaults of hybrid_search (convex fusion, 'any'
/// word, 40 candidates) are the ones these figures chose; the other rows are
/// the alternatives they were chosen from.
fn methods() -> Vec<Method> {
    vec![
        Method {
            name: "document SQL (documents)",
            document_level: true,
            sql: DOCUMENT_SQL,
            params: document_sql_params,
            limited: true,
            settings: &[],
        },
        Method {
            name: "document SQL over chunks",
            document_level: false,
            sql: DOCUMENT_SQL_OVER_CHUNKS,
            params: document_sql_params,
            limited: true,
            settings: &[],
        },
        Method {
            name: "vector_search",
            document_level: false,
            sql: "SELECT chunk_id FROM vector_search($1, 10)",
            params: vector_only,
            limited: false,
            settings: &[],
        },
        Method {
            name: "keyword_search (default: any word)",
            document_level: false,
            sql: "SELECT chunk_id FROM keyword_search($1, 10)",
            params: text_only,
            limited: false,
            settings: &[],
        },
        Method {
            name: "keyword_search (all words)",
            document_level: false,
            sql: "SELECT chunk_id FROM keyword_search($1, 10, keyword_match => 'all')",
            params: text_only,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (default: convex, any word)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10)",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (convex, all words)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, keyword_match => 'all')",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (rrf, any word)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, fusion => 'rrf')",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (rrf, all words)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, fusion => 'rrf', keyword_match => 'all')",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (convex, any word, vector weight 2)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, vector_weight => 2)",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (convex, any word, 20 candidates)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, candidates => 20)",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (convex, any word, 100 candidates)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, candidates => 100)",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (convex, any word, 30 candidates)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10, candidates => 30)",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "hybrid_search (convex, any word, every match ranked: before)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10)",
            params: text_and_vector,
            limited: false,
            settings: &[("platform.keyword_rank_limit", "0")],
        },
        Method {
            name: "hybrid_search (convex, any word, 1000 ranked)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10)",
            params: text_and_vector,
            limited: false,
            settings: &[("platform.keyword_rank_limit", "1000")],
        },
        Method {
            name: "hybrid_search (convex, any word, common words 1%)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10)",
            params: text_and_vector,
            limited: false,
            settings: &[("platform.common_word_share", "0.01")],
        },
        Method {
            name: "hybrid_search (convex, any word, common words 0.5%)",
            document_level: false,
            sql: "SELECT chunk_id FROM hybrid_search($1, $2, 10)",
            params: text_and_vector,
            limited: false,
            settings: &[("platform.common_word_share", "0.005")],
        },
        Method {
            name: "keyword_search (any word, every match ranked: before)",
            document_level: false,
            sql: "SELECT chunk_id FROM keyword_search($1, 10)",
            params: text_only,
            limited: false,
            settings: &[("platform.keyword_rank_limit", "0")],
        },
        Method {
            name: "search_documents (default: convex, any word)",
            document_level: true,
            sql: "SELECT document_id FROM search_documents($1, $2, 10)",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
        Method {
            name: "search_documents (rrf, all words)",
            document_level: true,
            sql: "SELECT document_id FROM search_documents($1, $2, 10, fusion => 'rrf', keyword_match => 'all')",
            params: text_and_vector,
            limited: false,
            settings: &[],
        },
    ]
}

fn run(
    app: &mut Client,
    statement: &Statement,
    settings: &[(&str, &str)],
    tenant: Uuid,
    params: &[Box<dyn postgres::types::ToSql + Sync>],
) -> Outcome {
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT set_tenant($1)", &[&tenant]).unwrap();
    for (name, value) in settings {
        tx.execute("SELECT set_config($1, $2, true)", &[name, value])
            .unwrap();
    }
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p.as_ref()).collect();
    let started = Instant::now();
    let rows = tx.query(statement, &refs).unwrap_or_else(|e| panic!("{e}"));
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    tx.commit().unwrap();
    Outcome {
        millis,
        ids: rows.iter().map(|r| r.get(0)).collect(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

#[derive(Default)]
struct Tally {
    millis: Vec<f64>,
    full: usize,
    reciprocal_rank: f64,
    ndcg: f64,
    count: usize,
    by_kind: HashMap<&'static str, (f64, usize)>,
    by_bucket: HashMap<&'static str, Vec<f64>>,
    /// MRR@10 over the queries the design document's SQL also ran on.
    subset: (f64, usize),
}

impl Tally {
    fn add(
        &mut self,
        outcome: &Outcome,
        target: Uuid,
        kind: QueryKind,
        bucket: &'static str,
        in_subset: bool,
    ) {
        self.millis.push(outcome.millis);
        self.by_bucket
            .entry(bucket)
            .or_default()
            .push(outcome.millis);
        if outcome.ids.len() as i64 == MATCH_COUNT {
            self.full += 1;
        }
        let rr = match outcome.ids.iter().position(|&i| i == target) {
            Some(p) => {
                self.ndcg += 1.0 / ((p + 2) as f64).log2();
                1.0 / (p + 1) as f64
            }
            None => 0.0,
        };
        self.reciprocal_rank += rr;
        if in_subset {
            self.subset.0 += rr;
            self.subset.1 += 1;
        }
        let entry = self.by_kind.entry(kind.name()).or_default();
        entry.0 += rr;
        entry.1 += 1;
        self.count += 1;
    }
    fn sorted(&self) -> Vec<f64> {
        let mut s = self.millis.clone();
        s.sort_by(f64::total_cmp);
        s
    }
}

/// Which tenants queries target: the largest, those holding 1-5% of the rows,
/// and the tail (with at least match_count chunks).
fn buckets(corpus: &Corpus) -> Vec<(&'static str, Vec<usize>)> {
    let total = corpus.chunk_doc.len() as f64;
    let share = |t: usize| corpus.tenants[t].chunks as f64 / total;
    let all: Vec<usize> = (0..corpus.tenants.len()).collect();
    vec![
        ("largest tenant", vec![0]),
        (
            "tenants with 1-5%",
            all.iter()
                .copied()
                .filter(|&t| (0.01..=0.05).contains(&share(t)))
                .collect(),
        ),
        (
            "tail tenants (<1%)",
            all.iter()
                .copied()
                .filter(|&t| share(t) < 0.01 && corpus.tenants[t].chunks >= MATCH_COUNT as usize)
                .collect(),
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("realtext") {
        realtext::main(&args[2..]);
        return;
    }
    let size = SIZES
        .iter()
        .find(|s| Some(s.name) == args.get(1).map(String::as_str))
        .expect("SIZE: smoke | small | large");
    let out_dir = args.get(2).cloned().unwrap_or_else(|| ".".into());
    let dbname = format!("search_bench_{}", size.name);

    eprintln!("== generating {} chunks over 1000 tenants", size.chunks);
    let corpus = Corpus::generate(size.chunks, 1000, 0.20);
    let total_chunks = corpus.chunk_doc.len();
    let largest = corpus.tenants[0].chunks;
    eprintln!(
        "   {} chunks, {} documents, largest tenant {} chunks ({:.1}%)",
        total_chunks,
        corpus.docs.len(),
        largest,
        100.0 * largest as f64 / total_chunks as f64
    );

    eprintln!("== loading");
    load::create_database(&mut connect("postgres", "postgres"), &dbname);
    let mut admin = connect(&dbname, "postgres");
    let builds = load::load(&mut admin, &corpus);

    // Known-item queries: per kind, targets spread evenly over the buckets.
    let buckets = buckets(&corpus);
    let mut queries: Vec<(Query, &'static str)> = Vec::new();
    let mut rng = corpus::Rng::new(7);
    for kind in [QueryKind::RareTerm, QueryKind::Paraphrase, QueryKind::Mixed] {
        for i in 0..size.queries_per_kind {
            let (bucket, tenants) = &buckets[i % buckets.len()];
            let tenant = tenants[rng.below(tenants.len())];
            let docs: Vec<usize> = (0..corpus.docs.len())
                .filter(|&d| corpus.docs[d].tenant == tenant)
                .collect();
            let doc = &corpus.docs[docs[rng.below(docs.len())]];
            let chunk = doc.first_chunk + rng.below(doc.chunks);
            queries.push((corpus.query(queries.len(), kind, chunk), bucket));
        }
    }

    eprintln!("== measuring {} queries", queries.len());
    let mut app = connect(&dbname, APP_ROLE);
    let methods = methods();
    let statements: Vec<Statement> = methods
        .iter()
        .map(|m| app.prepare(m.sql).unwrap())
        .collect();
    // Warm the caches and the plan caches.
    for (q, _) in queries.iter().take(5) {
        let v = Vector::from(q.embedding.clone());
        let tenant = id(1, q.tenant);
        for (m, s) in methods.iter().zip(&statements) {
            run(
                &mut app,
                s,
                m.settings,
                tenant,
                &(m.params)(&q.text, &v, &tenant),
            );
        }
    }
    let mut tallies: Vec<Tally> = methods.iter().map(|_| Tally::default()).collect();
    let mut recall = (0.0, 0usize);
    let mut document_cte_recall = (0.0, 0usize);
    let exact = admin
        .prepare(
            "SELECT id FROM (SELECT id, embedding <=> $1 AS d FROM knowledge_chunks WHERE tenant_id = $2 OFFSET 0) s
             ORDER BY d, id LIMIT 10",
        )
        .unwrap();
    let vector_branch = app
        .prepare("SELECT chunk_id FROM vector_search($1, 10)")
        .unwrap();
    let document_cte = app
        .prepare("SELECT id FROM knowledge_chunks WHERE tenant_id = $2 ORDER BY embedding <=> $1::vector LIMIT 10")
        .unwrap();
    let mut per_kind_seen: HashMap<&'static str, usize> = HashMap::new();
    for (n, (q, bucket)) in queries.iter().enumerate() {
        let v = Vector::from(q.embedding.clone());
        let tenant = id(1, q.tenant);
        let seen = per_kind_seen.entry(q.kind.name()).or_default();
        *seen += 1;
        for ((m, s), tally) in methods.iter().zip(&statements).zip(&mut tallies) {
            if m.limited && *seen > size.document_sql_queries_per_kind {
                continue;
            }
            let outcome = run(
                &mut app,
                s,
                m.settings,
                tenant,
                &(m.params)(&q.text, &v, &tenant),
            );
            let target = if m.document_level {
                id(2, q.target_doc)
            } else {
                id(3, q.target_chunk)
            };
            tally.add(
                &outcome,
                target,
                q.kind,
                bucket,
                *seen <= size.document_sql_queries_per_kind,
            );
        }
        let truth: Vec<Uuid> = admin
            .query(&exact, &[&v, &tenant])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for (statement, acc) in [
            (&vector_branch, &mut recall),
            (&document_cte, &mut document_cte_recall),
        ] {
            let got = if std::ptr::eq(statement, &vector_branch) {
                run(
                    &mut app,
                    statement,
                    &[],
                    tenant,
                    &vector_only("", &v, &tenant),
                )
                .ids
            } else {
                run(
                    &mut app,
                    statement,
                    &[],
                    tenant,
                    &[
                        Box::new(v.clone()) as Box<dyn postgres::types::ToSql + Sync>,
                        Box::new(tenant),
                    ],
                )
                .ids
            };
            let hits = truth.iter().filter(|t| got.contains(t)).count();
            acc.0 += hits as f64 / truth.len().max(1) as f64;
            acc.1 += 1;
        }
        if n % 30 == 29 {
            eprintln!("   {} / {}", n + 1, queries.len());
        }
    }

    eprintln!("== exact scan against HNSW by tenant size");
    let sweep = sweep(&mut app, &mut admin, &corpus);

    let report = report(
        size,
        &corpus,
        &builds,
        &methods,
        &tallies,
        recall,
        document_cte_recall,
        &sweep,
    );
    println!("{report}");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(format!("{out_dir}/search-{}.md", size.name), &report).unwrap();
    std::fs::write(
        format!("{out_dir}/search-{}.json", size.name),
        json(size, &methods, &tallies, &sweep),
    )
    .unwrap();

    // The one hard promise, checked so the CI smoke run can fail: every
    // query's tenant has at least match_count chunks, so the vector branch
    // and the fused search must always return match_count rows.
    let short: Vec<&str> = methods
        .iter()
        .zip(&tallies)
        .filter(|(m, t)| {
            (m.name == "vector_search" || m.name.starts_with("hybrid_search")) && t.full < t.count
        })
        .map(|(m, _)| m.name)
        .collect();
    if !short.is_empty() {
        eprintln!("FAILED: some queries returned fewer than {MATCH_COUNT} rows: {short:?}");
        std::process::exit(1);
    }
}

/// For tenants of growing size: vector_search latency with an exact scan
/// forced and with HNSW forced, and the HNSW path's recall@10. This is the
/// measurement behind platform_exact_scan_limit().
struct SweepRow {
    chunks: usize,
    exact_p50: f64,
    hnsw_p50: f64,
    hnsw_recall: f64,
}

fn sweep(app: &mut Client, admin: &mut Client, corpus: &Corpus) -> Vec<SweepRow> {
    let mut rows = Vec::new();
    let mut wanted = 100usize;
    let statement = app
        .prepare("SELECT chunk_id FROM vector_search($1, 10)")
        .unwrap();
    let exact = admin
        .prepare(
            "SELECT id FROM (SELECT id, embedding <=> $1 AS d FROM knowledge_chunks WHERE tenant_id = $2 OFFSET 0) s
             ORDER BY d, id LIMIT 10",
        )
        .unwrap();
    while wanted <= corpus.tenants[0].chunks {
        let tenant = (0..corpus.tenants.len())
            .min_by_key(|&t| corpus.tenants[t].chunks.abs_diff(wanted))
            .unwrap();
        let chunks = corpus.tenants[tenant].chunks;
        let tenant_id = id(1, tenant);
        let first = corpus
            .docs
            .iter()
            .find(|d| d.tenant == tenant)
            .unwrap()
            .first_chunk;
        let mut times = [Vec::new(), Vec::new()];
        let mut recall = 0.0;
        let samples = 12;
        for i in 0..samples {
            let q = corpus.query(
                1_000_000 + i,
                QueryKind::Paraphrase,
                first + (i * 7) % chunks,
            );
            let v = Vector::from(q.embedding);
            for (path, limit) in ["1000000000", "1"].iter().enumerate() {
                let mut tx = app.transaction().unwrap();
                tx.execute("SELECT set_tenant($1)", &[&tenant_id]).unwrap();
                tx.execute(
                    "SELECT set_config('platform.exact_scan_limit', $1, true)",
                    &[limit],
                )
                .unwrap();
                let started = Instant::now();
                let got: Vec<Uuid> = tx
                    .query(&statement, &[&v])
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                times[path].push(started.elapsed().as_secs_f64() * 1000.0);
                tx.commit().unwrap();
                if path == 1 {
                    let truth: Vec<Uuid> = admin
                        .query(&exact, &[&v, &tenant_id])
                        .unwrap()
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    recall += truth.iter().filter(|t| got.contains(t)).count() as f64
                        / truth.len() as f64;
                }
            }
        }
        for t in &mut times {
            t.sort_by(f64::total_cmp);
        }
        rows.push(SweepRow {
            chunks,
            exact_p50: percentile(&times[0], 50.0),
            hnsw_p50: percentile(&times[1], 50.0),
            hnsw_recall: recall / samples as f64,
        });
        wanted = if wanted * 3 > corpus.tenants[0].chunks && wanted < corpus.tenants[0].chunks {
            corpus.tenants[0].chunks
        } else {
            wanted * 3
        };
    }
    rows
}

#[allow(clippy::too_many_arguments)]
fn report(
    size: &Size,
    corpus: &Corpus,
    builds: &[load::IndexBuild],
    methods: &[Method],
    tallies: &[Tally],
    recall: (f64, usize),
    document_cte_recall: (f64, usize),
    sweep: &[SweepRow],
) -> String {
    let mut out = String::new();
    let total = corpus.chunk_doc.len();
    writeln!(
        out,
        "### Size `{}`: {} chunks, {} documents, {} tenants (largest {} chunks, {:.1}%)\n",
        size.name,
        total,
        corpus.docs.len(),
        corpus.tenants.len(),
        corpus.tenants[0].chunks,
        100.0 * corpus.tenants[0].chunks as f64 / total as f64
    )
    .unwrap();
    writeln!(out, "| method | queries | p50 ms | p95 ms | returned 10 | MRR@10 | nDCG@10 | MRR rare-term | MRR paraphrase | MRR mixed | MRR@10 on the document SQL's {} queries |", 3 * size.document_sql_queries_per_kind).unwrap();
    writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    .unwrap();
    for (m, t) in methods.iter().zip(tallies) {
        let s = t.sorted();
        let kind = |k: &str| t.by_kind.get(k).map_or(f64::NAN, |(rr, n)| rr / *n as f64);
        writeln!(
            out,
            "| {}{} | {} | {:.2} | {:.2} | {:.0}% | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            m.name,
            if m.document_level { " (judged by document)" } else { "" },
            t.count,
            percentile(&s, 50.0),
            percentile(&s, 95.0),
            100.0 * t.full as f64 / t.count as f64,
            t.reciprocal_rank / t.count as f64,
            t.ndcg / t.count as f64,
            kind("rare-term"),
            kind("paraphrase"),
            kind("mixed"),
            t.subset.0 / t.subset.1 as f64
        )
        .unwrap();
    }
    writeln!(out, "\nVector recall@10 against an exact tenant-scoped scan: `vector_search` {:.3}, the document's vector CTE (HNSW, tenant filtered afterwards) {:.3}.\n", recall.0 / recall.1 as f64, document_cte_recall.0 / document_cte_recall.1 as f64).unwrap();
    writeln!(out, "Latency by tenant (p50 / p95 ms):\n").unwrap();
    writeln!(out, "| method | largest tenant | tenants with 1-5% | tail tenants (<1%) |\n|---|---:|---:|---:|").unwrap();
    for (m, t) in methods.iter().zip(tallies) {
        let cell = |b: &str| {
            t.by_bucket.get(b).map_or("-".to_owned(), |v| {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                format!("{:.2} / {:.2}", percentile(&v, 50.0), percentile(&v, 95.0))
            })
        };
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            m.name,
            cell("largest tenant"),
            cell("tenants with 1-5%"),
            cell("tail tenants (<1%)")
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nIndex builds:\n\n| index | build s | size MB |\n|---|---:|---:|"
    )
    .unwrap();
    for b in builds {
        writeln!(
            out,
            "| {} | {:.1} | {:.1} |",
            b.name,
            b.seconds,
            b.bytes as f64 / 1e6
        )
        .unwrap();
    }
    writeln!(out, "\n`vector_search` by tenant size, exact scan forced against HNSW (iterative scan) forced:\n\n| tenant chunks | exact p50 ms | HNSW p50 ms | HNSW recall@10 |\n|---:|---:|---:|---:|").unwrap();
    for r in sweep {
        writeln!(
            out,
            "| {} | {:.2} | {:.2} | {:.3} |",
            r.chunks, r.exact_p50, r.hnsw_p50, r.hnsw_recall
        )
        .unwrap();
    }
    out
}

fn json(size: &Size, methods: &[Method], tallies: &[Tally], sweep: &[SweepRow]) -> String {
    let mut out = format!("{{\"size\": \"{}\", \"methods\": [", size.name);
    for (i, (m, t)) in methods.iter().zip(tallies).enumerate() {
        let s = t.sorted();
        let kind = |k: &str| t.by_kind.get(k).map_or(0.0, |(rr, n)| rr / *n as f64);
        write!(
            out,
            "{}{{\"name\": \"{}\", \"p50\": {:.3}, \"p95\": {:.3}, \"mrr\": {:.4}, \"mrr_rare\": {:.4}, \"mrr_paraphrase\": {:.4}, \"mrr_mixed\": {:.4}}}",
            if i > 0 { ", " } else { "" },
            m.name,
            percentile(&s, 50.0),
            percentile(&s, 95.0),
            t.reciprocal_rank / t.count as f64,
            kind("rare-term"),
            kind("paraphrase"),
            kind("mixed")
        )
        .unwrap();
    }
    out.push_str("], \"sweep\": [");
    for (i, r) in sweep.iter().enumerate() {
        write!(
            out,
            "{}{{\"chunks\": {}, \"exact\": {:.3}, \"hnsw\": {:.3}, \"recall\": {:.4}}}",
            if i > 0 { ", " } else { "" },
            r.chunks,
            r.exact_p50,
            r.hnsw_p50,
            r.hnsw_recall
        )
        .unwrap();
    }
    out.push_str("]}\n");
    out
}
