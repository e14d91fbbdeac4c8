//! The real-text benchmark: a knowledge base built from real documentation
//! (bench/realtext/build.py), embedded with a real model (bench/realtext/
//! embed.py), known-item queries judged by document. bench/search_realtext.sh
//! prepares the data and runs the two steps:
//!
//!   search_bench realtext load DATA_DIR          as postgres: a fresh database
//!   search_bench realtext measure DATA_DIR OUT   as the application role
//!
//! Loading and measuring are separate processes so that the script can load at
//! low priority and measure at normal priority. Every method runs on every
//! query in one run; the figures are reported for the tuning and the held-out
//! queries apart (the split is fixed by the data), by kind of query, for
//! queries found verbatim in their target or not, and by tenant size.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use pgvector::Vector;
use postgres::{Client, Statement};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::corpus::DIM;
use crate::load::{self, id, ChunkRow, DocumentRow, KnowledgeBase, APP_ROLE};
use crate::{connect, percentile, run, MATCH_COUNT};

/// Queries run with every method before measuring, to warm the caches.
const WARM_UP_QUERIES: usize = 5;

/// A small seeded generator (SplitMix64), enough to shuffle the order in
/// which the methods run, the same way in every run of a seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher-Yates.
    fn permute<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[derive(Deserialize)]
struct TenantLine {
    tenant: String,
    documents: usize,
    chunks: usize,
}

#[derive(Deserialize)]
struct DocumentLine {
    tenant: String,
    document: String,
    title: String,
    category: String,
    content: String,
    chunks: Vec<String>,
}

#[derive(Deserialize)]
struct QueryLine {
    id: String,
    tenant: String,
    text: String,
    target: String,
    kind: String,
    verbatim: bool,
    split: String,
}

#[derive(Deserialize)]
struct VectorsFile {
    model: String,
    dimensions: usize,
    chunks: usize,
    queries: usize,
}

struct Document {
    tenant: usize,
    title: String,
    category: String,
    content: String,
    first_chunk: usize,
    chunks: usize,
}

pub struct Query {
    pub id: String,
    /// Index into the tenants, which are in rank order (largest first).
    pub tenant: usize,
    pub text: String,
    pub target: usize,
    pub kind: String,
    pub verbatim: bool,
    pub split: String,
    pub embedding: Vec<f32>,
}

pub struct RealText {
    tenants: Vec<TenantLine>,
    documents: Vec<Document>,
    chunk_text: Vec<String>,
    chunk_document: Vec<usize>,
    /// One row of `dimensions` per chunk, as the model made them.
    chunk_vectors: Vec<f32>,
    dimensions: usize,
    model: String,
    pub queries: Vec<Query>,
    manifest: serde_json::Value,
}

fn read_lines<T: for<'de> Deserialize<'de>>(path: &str) -> Vec<T> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(&line.unwrap())
                .unwrap_or_else(|e| panic!("{path} line {}: {e}", n + 1))
        })
        .collect()
}

fn read_vectors(path: &str, rows: usize, dimensions: usize) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        bytes.len(),
        rows * dimensions * 4,
        "{path}: expected {rows} rows of {dimensions} float32"
    );
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A query's vector in the extension's column: zero-padded to its
/// dimensions, which leaves cosine distances and inner products as they were.
fn padded(vector: &[f32]) -> Vec<f32> {
    let mut out = vector.to_vec();
    out.resize(DIM, 0.0);
    out
}

/// The value a stored row's vector holds in one padding coordinate of its
/// own tenant's (see `stored`).
const TENANT_MARK: f32 = 1e-3;

/// A stored row's vector (a chunk's or a document's): zero-padded, but for
/// the padding coordinate of its tenant, set to TENANT_MARK. The large size
/// gives several tenants the same text, and pgvector's HNSW index keeps
/// identical vectors as one element, so without the mark its graph would
/// hold each distinct text once instead of each row, and be much smaller
/// and faster than an index of that many rows. Queries are zero-padded, so
/// every inner product is unchanged, and every stored norm grows by the same
/// factor, which scales every cosine similarity alike: no ranking changes.
fn stored(vector: &[f32], tenant: usize) -> Vec<f32> {
    let mut out = padded(vector);
    out[vector.len() + tenant] = TENANT_MARK;
    out
}

impl RealText {
    pub fn read(data: &str) -> RealText {
        let tenants: Vec<TenantLine> = read_lines(&format!("{data}/tenants.jsonl"));
        let tenant_index: HashMap<&str, usize> = tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tenant.as_str(), i))
            .collect();
        let vectors: VectorsFile = serde_json::from_str(
            &std::fs::read_to_string(format!("{data}/vectors.json"))
                .expect("vectors.json: run bench/realtext/embed.py first"),
        )
        .unwrap();
        assert!(
            vectors.dimensions + tenants.len() <= DIM,
            "the model's vectors and a padding coordinate per tenant do not fit the column"
        );

        let mut documents = Vec::new();
        let mut chunk_text = Vec::new();
        let mut chunk_document = Vec::new();
        let mut document_index: HashMap<(usize, String), usize> = HashMap::new();
        for line in read_lines::<DocumentLine>(&format!("{data}/documents.jsonl")) {
            let tenant = tenant_index[line.tenant.as_str()];
            document_index.insert((tenant, line.document), documents.len());
            documents.push(Document {
                tenant,
                title: line.title,
                category: line.category,
                content: line.content,
                first_chunk: chunk_text.len(),
                chunks: line.chunks.len(),
            });
            chunk_document.extend(std::iter::repeat_n(documents.len() - 1, line.chunks.len()));
            chunk_text.extend(line.chunks);
        }
        assert_eq!(
            chunk_text.len(),
            vectors.chunks,
            "vectors.json is not for these chunks: embed again"
        );

        let query_lines: Vec<QueryLine> = read_lines(&format!("{data}/queries.jsonl"));
        assert_eq!(
            query_lines.len(),
            vectors.queries,
            "vectors.json is not for these queries: embed again"
        );
        let query_vectors = read_vectors(
            &format!("{data}/query_vectors.f32"),
            vectors.queries,
            vectors.dimensions,
        );
        let queries = query_lines
            .into_iter()
            .enumerate()
            .map(|(n, q)| {
                let tenant = tenant_index[q.tenant.as_str()];
                let target = document_index[&(tenant, q.target.clone())];
                let row = &query_vectors[n * vectors.dimensions..(n + 1) * vectors.dimensions];
                Query {
                    id: q.id,
                    tenant,
                    text: q.text,
                    target,
                    kind: q.kind,
                    verbatim: q.verbatim,
                    split: q.split,
                    embedding: padded(row),
                }
            })
            .collect();
        RealText {
            chunk_vectors: read_vectors(
                &format!("{data}/chunk_vectors.f32"),
                vectors.chunks,
                vectors.dimensions,
            ),
            tenants,
            documents,
            chunk_text,
            chunk_document,
            dimensions: vectors.dimensions,
            model: vectors.model,
            queries,
            manifest: serde_json::from_str(
                &std::fs::read_to_string(format!("{data}/manifest.json")).unwrap(),
            )
            .unwrap(),
        }
    }

    fn chunk_vector(&self, chunk: usize) -> &[f32] {
        &self.chunk_vectors[chunk * self.dimensions..(chunk + 1) * self.dimensions]
    }

    fn database(&self) -> String {
        format!(
            "search_realtext_{}",
            self.manifest["size"].as_str().unwrap()
        )
    }
}

impl KnowledgeBase for RealText {
    fn tenant_names(&self) -> Vec<String> {
        self.tenants.iter().map(|t| t.tenant.clone()).collect()
    }
    fn document_count(&self) -> usize {
        self.documents.len()
    }
    /// A document's own embedding (knowledge_documents.embedding, what the
    /// design document's SQL and search_documents compare with): the mean
    /// of its chunks' vectors, normalised, since the model sees only a
    /// document's first 256 tokens.
    fn document(&self, d: usize) -> DocumentRow {
        let doc = &self.documents[d];
        let mut mean = vec![0.0f64; self.dimensions];
        for c in doc.first_chunk..doc.first_chunk + doc.chunks {
            for (acc, x) in mean.iter_mut().zip(self.chunk_vector(c)) {
                *acc += *x as f64;
            }
        }
        let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mean: Vec<f32> = mean.iter().map(|x| (x / norm) as f32).collect();
        DocumentRow {
            tenant: doc.tenant,
            title: doc.title.clone(),
            content: doc.content.clone(),
            category: doc.category.clone(),
            embedding: stored(&mean, doc.tenant),
        }
    }
    fn chunk_count(&self) -> usize {
        self.chunk_text.len()
    }
    fn chunk(&self, c: usize) -> ChunkRow {
        let document = self.chunk_document[c];
        ChunkRow {
            document,
            position: c - self.documents[document].first_chunk,
            content: self.chunk_text[c].clone(),
            embedding: stored(self.chunk_vector(c), self.documents[document].tenant),
        }
    }
}

pub fn main(args: &[String]) {
    let usage =
        "search_bench realtext load DATA_DIR | search_bench realtext measure DATA_DIR OUT_DIR";
    let step = args.first().map(String::as_str).expect(usage);
    let data = args.get(1).expect(usage);
    let corpus = RealText::read(data);
    match step {
        "load" => {
            let dbname = corpus.database();
            eprintln!(
                "== loading {} chunks, {} documents, {} tenants into {dbname}",
                corpus.chunk_count(),
                corpus.document_count(),
                corpus.tenants.len()
            );
            load::create_database(&mut connect("postgres", "postgres"), &dbname);
            load::load(&mut connect(&dbname, "postgres"), &corpus);
        }
        "measure" => measure(&corpus, args.get(2).expect(usage)),
        _ => panic!("{usage}"),
    }
}

// --- methods --------------------------------------------------------------

/// What a method's SQL is given, each as one parameter.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Input {
    /// The query's text.
    Text,
    /// The query's embedding, padded to the column's dimensions.
    Embedding,
    /// match_count (MATCH_COUNT), as the statement's parameter type wants it.
    Count,
    /// The query's tenant id (only the design document's SQL filters by it
    /// itself; everything else is left to row-level security).
    Tenant,
}

/// What the rows a method returns identify; the first column is their id.
#[derive(Clone, Copy, PartialEq)]
enum Returns {
    Chunks,
    Documents,
}

/// One way of searching, run as the application role inside the query's
/// tenant context.
struct Method {
    name: String,
    /// SQL with numbered parameters, `$n` being `inputs[n - 1]`.
    sql: String,
    inputs: Vec<Input>,
    returns: Returns,
    /// Settings (name, value) set for the query's transaction only.
    settings: Vec<(String, String)>,
}

impl Method {
    /// A method whose SQL names its inputs `{text}`, `{embedding}`, `{count}`
    /// and `{tenant}`; each becomes one numbered parameter.
    fn named(name: &str, sql: &str, returns: Returns) -> Method {
        let mut numbered = String::new();
        let mut inputs: Vec<Input> = Vec::new();
        let mut rest = sql;
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}').expect("unclosed {");
            let input = match &rest[open + 1..close] {
                "text" => Input::Text,
                "embedding" => Input::Embedding,
                "count" => Input::Count,
                "tenant" => Input::Tenant,
                other => panic!("{name}: unknown placeholder {{{other}}}"),
            };
            let number = match inputs.iter().position(|i| *i == input) {
                Some(p) => p + 1,
                None => {
                    inputs.push(input);
                    inputs.len()
                }
            };
            write!(numbered, "{}${number}", &rest[..open]).unwrap();
            rest = &rest[close + 1..];
        }
        numbered.push_str(rest);
        Method::positional(name, &numbered, inputs, returns)
    }

    /// A method whose SQL already has numbered parameters.
    fn positional(name: &str, sql: &str, inputs: Vec<Input>, returns: Returns) -> Method {
        Method {
            name: name.to_owned(),
            sql: sql.to_owned(),
            inputs,
            returns,
            settings: Vec::new(),
        }
    }

    /// One of the extension's search functions, called with the query's
    /// inputs in its leading positional arguments (`hybrid_search` and
    /// `search_documents`: text, embedding, count; `keyword_search`: text,
    /// count; `vector_search`: embedding, count) and `extra` named
    /// arguments after them, e.g. `"fusion => 'rrf'"`.
    fn function(function: &str, extra: &str) -> Method {
        let (leading, id, returns) = match function {
            "hybrid_search" => ("{text}, {embedding}, {count}", "chunk_id", Returns::Chunks),
            "keyword_search" => ("{text}, {count}", "chunk_id", Returns::Chunks),
            "vector_search" => ("{embedding}, {count}", "chunk_id", Returns::Chunks),
            "search_documents" => (
                "{text}, {embedding}, {count}",
                "document_id",
                Returns::Documents,
            ),
            other => panic!("no calling convention for {other}"),
        };
        let (name, arguments) = if extra.is_empty() {
            (format!("{function} (defaults)"), leading.to_owned())
        } else {
            (
                format!("{function} ({extra})"),
                format!("{leading}, {extra}"),
            )
        };
        Method::named(
            &name,
            &format!("SELECT {id} FROM {function}({arguments})"),
            returns,
        )
    }

    /// The same method with `name = value` set for each query's transaction
    /// (an operator-level setting; the loader lets the application role set
    /// the extension's search settings).
    fn with_setting(mut self, name: &str, value: &str) -> Method {
        self.name = format!("{} [{name} = {value}]", self.name);
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The design document's "Vector Search with Hybrid Ranking", as written
/// but for its placeholders: `0.6 * cosine similarity + 0.4 * ts_rank`
/// over the 30 nearest and the 30 best keyword matches, by document
/// (crate::DOCUMENT_SQL: $1 embedding, $2 tenant, $3 text, $4 count).
const DESIGN_DOCUMENT_INPUTS: [Input; 4] =
    [Input::Embedding, Input::Tenant, Input::Text, Input::Count];

/// Hybrid search as Supabase's guide describes it: Reciprocal Rank Fusion
/// with k = 50 of a full-text list ranked by ts_rank_cd over
/// websearch_to_tsquery and a semantic list ranked by inner product, each
/// of twice the rows asked for (at most 30 asked), weights 1. The tenant is
/// left to row-level security, as in Supabase.
const SUPABASE_STYLE_RRF: &str = "
    WITH full_text AS (
      SELECT id, row_number() OVER (ORDER BY ts_rank_cd(search_vector, query) DESC, id) AS rank
      FROM knowledge_chunks, websearch_to_tsquery('english', {text}) AS query
      WHERE search_vector @@ query
      ORDER BY rank
      LIMIT least({count}, 30) * 2
    ),
    semantic AS (
      SELECT id, row_number() OVER (ORDER BY embedding <#> {embedding}::vector, id) AS rank
      FROM knowledge_chunks
      ORDER BY rank
      LIMIT least({count}, 30) * 2
    )
    SELECT coalesce(f.id, s.id) AS id
    FROM full_text f FULL JOIN semantic s ON f.id = s.id
    ORDER BY coalesce(1.0 / (50 + f.rank), 0) + coalesce(1.0 / (50 + s.rank), 0) DESC,
             coalesce(f.id, s.id)
    LIMIT least({count}, 30)";

/// Every chunk of the tenant by cosine distance: ordering by a column of a
/// subquery keeps the planner off the HNSW index, so this is the exact
/// answer (and the truth vector_search's recall is measured against).
const EXACT_VECTOR: &str = "
    SELECT id FROM (SELECT id, embedding <=> {embedding}::vector AS distance
                    FROM knowledge_chunks OFFSET 0) s
    ORDER BY distance, id LIMIT {count}";
const EXACT_VECTOR_NAME: &str = "exact vector (cosine, every chunk of the tenant)";

/// Plain full-text search on the stored tsvector.
const KEYWORD_ONLY: &str = "
    SELECT id FROM knowledge_chunks, websearch_to_tsquery('english', {text}) AS query
    WHERE search_vector @@ query
    ORDER BY ts_rank(search_vector, query) DESC, id LIMIT {count}";

/// Everything measured, in the order reported. A variant is one more line:
/// `Method::function("hybrid_search", "fusion => 'tmm'")`; one
/// the installed extension does not have is skipped with a message.
fn methods() -> Vec<Method> {
    use Returns::*;
    vec![
        Method::positional(
            "design document's SQL (documents)",
            crate::DOCUMENT_SQL,
            DESIGN_DOCUMENT_INPUTS.to_vec(),
            Documents,
        ),
        Method::positional(
            "design document's SQL over chunks",
            crate::DOCUMENT_SQL_OVER_CHUNKS,
            DESIGN_DOCUMENT_INPUTS.to_vec(),
            Chunks,
        ),
        Method::named(
            "Supabase-style RRF (k 50, ts_rank_cd, inner product)",
            SUPABASE_STYLE_RRF,
            Chunks,
        ),
        Method::named(EXACT_VECTOR_NAME, EXACT_VECTOR, Chunks),
        Method::named(
            "keyword only (ts_rank, websearch_to_tsquery)",
            KEYWORD_ONLY,
            Chunks,
        ),
        Method::function("hybrid_search", ""),
        Method::function("hybrid_search", "").with_setting("platform.exact_match_word_share", "0"),
        Method::function("hybrid_search", "").with_setting("platform.exact_match_word_share", "1"),
        Method::function("hybrid_search", "keyword_match => 'all'"),
        Method::function("hybrid_search", "vector_weight => 1.5"),
        Method::function("hybrid_search", "vector_weight => 2"),
        Method::function("hybrid_search", "vector_weight => 3"),
        Method::function("hybrid_search", "fusion => 'tmm'"),
        Method::function("hybrid_search", "fusion => 'tmm', vector_weight => 2"),
        Method::function("hybrid_search", "fusion => 'tmm', vector_weight => 3"),
        Method::function("hybrid_search", "fusion => 'tmm', keyword_weight => 2"),
        Method::function("hybrid_search", "fusion => 'rrf'"),
        Method::function("hybrid_search", "fusion => 'rrf', vector_weight => 2"),
        Method::function("hybrid_search", "candidates => 80"),
        Method::function("hybrid_search", "").with_setting("platform.exact_scan_limit", "3000"),
        Method::function("hybrid_search", "").with_setting("platform.exact_scan_limit", "30000"),
        Method::function("hybrid_search", "").with_setting("platform.exact_scan_limit", "100000"),
        Method::function("hybrid_search", "").with_setting("platform.sketch_candidates", "0"),
        Method::function("hybrid_search", "").with_setting("platform.sketch_candidates", "100"),
        Method::function("hybrid_search", "").with_setting("platform.sketch_candidates", "400"),
        Method::function("vector_search", "").with_setting("platform.exact_scan_limit", "30000"),
        Method::function("vector_search", "").with_setting("platform.exact_scan_limit", "100000"),
        Method::function("vector_search", "").with_setting("platform.sketch_candidates", "0"),
        Method::function("vector_search", "").with_setting("platform.sketch_candidates", "100"),
        Method::function("vector_search", "").with_setting("platform.sketch_candidates", "400"),
        Method::function("keyword_search", ""),
        Method::function("vector_search", ""),
        Method::function("search_documents", ""),
        Method::function("search_documents", "fusion => 'tmm'"),
    ]
}

/// A method ready to run: its statement and how to fill its parameters.
struct Prepared {
    statement: Statement,
    /// The count's parameter type: integer for the functions, bigint where
    /// it is only a LIMIT.
    count_is_bigint: bool,
}

/// Prepares every method as the application role; a method that names a
/// function or argument the installed extension lacks is left out with a
/// message, so that the list can run against an older build.
fn prepare(app: &mut Client, all: Vec<Method>) -> (Vec<Method>, Vec<Prepared>, Vec<String>) {
    let (mut methods, mut prepared, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for method in all {
        match app.prepare(&method.sql) {
            Ok(statement) => {
                let count_is_bigint = method
                    .inputs
                    .iter()
                    .position(|i| *i == Input::Count)
                    .is_some_and(|p| statement.params()[p] == postgres::types::Type::INT8);
                prepared.push(Prepared {
                    statement,
                    count_is_bigint,
                });
                methods.push(method);
            }
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_FUNCTION) => {
                let reason = e
                    .as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_owned());
                eprintln!("skipped {}: {reason}", method.name);
                skipped.push(format!("{}: {reason}", method.name));
            }
            Err(e) => panic!("{}: {e}", method.name),
        }
    }
    (methods, prepared, skipped)
}

type Parameters = Vec<Box<dyn postgres::types::ToSql + Sync>>;

fn parameters(method: &Method, prepared: &Prepared, query: &Query, tenant: Uuid) -> Parameters {
    method
        .inputs
        .iter()
        .map(|input| -> Box<dyn postgres::types::ToSql + Sync> {
            match input {
                Input::Text => Box::new(query.text.clone()),
                Input::Embedding => Box::new(Vector::from(query.embedding.clone())),
                Input::Count if prepared.count_is_bigint => Box::new(MATCH_COUNT),
                Input::Count => Box::new(MATCH_COUNT as i32),
                Input::Tenant => Box::new(tenant),
            }
        })
        .collect()
}

// --- measuring --------------------------------------------------------------

/// One method's answer to one query.
#[derive(Clone)]
struct Record {
    millis: f64,
    /// Fewer than match_count rows although the tenant holds that many of
    /// what the method returns (chunks or documents).
    short: bool,
    /// The target document's rank among the distinct documents returned.
    rank: Option<usize>,
    ids: Vec<Uuid>,
}

#[derive(Default, Clone, Copy)]
struct Summary {
    queries: usize,
    mrr: f64,
    ndcg: f64,
    hit: f64,
    p50: f64,
    p95: f64,
    short: usize,
}

fn summarise<'a>(records: impl Iterator<Item = &'a Record>) -> Summary {
    let records: Vec<&Record> = records.collect();
    let n = records.len();
    if n == 0 {
        return Summary::default();
    }
    let mut millis: Vec<f64> = records.iter().map(|r| r.millis).collect();
    millis.sort_by(f64::total_cmp);
    let mean = |f: &dyn Fn(&Record) -> f64| records.iter().map(|r| f(r)).sum::<f64>() / n as f64;
    Summary {
        queries: n,
        mrr: mean(&|r| r.rank.map_or(0.0, |k| 1.0 / k as f64)),
        // One relevant document, so the ideal DCG is 1.
        ndcg: mean(&|r| r.rank.map_or(0.0, |k| 1.0 / ((k + 1) as f64).log2())),
        hit: mean(&|r| r.rank.map_or(0.0, |_| 1.0)),
        p50: percentile(&millis, 50.0),
        p95: percentile(&millis, 95.0),
        short: records.iter().filter(|r| r.short).count(),
    }
}

struct Judge {
    chunk_document: HashMap<Uuid, usize>,
    document: HashMap<Uuid, usize>,
}

impl Judge {
    fn new(corpus: &RealText) -> Judge {
        Judge {
            chunk_document: (0..corpus.chunk_count())
                .map(|c| (id(3, c), corpus.chunk_document[c]))
                .collect(),
            document: (0..corpus.document_count())
                .map(|d| (id(2, d), d))
                .collect(),
        }
    }

    /// The target's rank among the distinct documents of `ids`, in order.
    fn rank(&self, returns: Returns, ids: &[Uuid], target: usize) -> Option<usize> {
        let mut seen: Vec<usize> = Vec::new();
        for row in ids {
            let document = match returns {
                Returns::Documents => self.document[row],
                Returns::Chunks => self.chunk_document[row],
            };
            if !seen.contains(&document) {
                seen.push(document);
            }
        }
        seen.iter().position(|&d| d == target).map(|p| p + 1)
    }
}

fn measure(corpus: &RealText, out_dir: &str) {
    let started = Instant::now();
    let dbname = corpus.database();
    let mut admin = connect(&dbname, "postgres");
    let checks = database_checks(&mut admin);
    let mut app = connect(&dbname, APP_ROLE);
    let (methods, prepared, skipped) = prepare(&mut app, methods());
    let judge = Judge::new(corpus);
    let ask = |app: &mut Client, m: usize, query: &Query| -> Record {
        let tenant = id(1, query.tenant);
        let settings: Vec<(&str, &str)> = methods[m]
            .settings
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let outcome = run(
            app,
            &prepared[m].statement,
            &settings,
            tenant,
            &parameters(&methods[m], &prepared[m], query, tenant),
        );
        let available = match methods[m].returns {
            Returns::Chunks => corpus.tenants[query.tenant].chunks,
            Returns::Documents => corpus.tenants[query.tenant].documents,
        };
        let wanted = MATCH_COUNT as usize;
        Record {
            millis: outcome.millis,
            short: outcome.ids.len() < wanted && available >= wanted,
            rank: judge.rank(methods[m].returns, &outcome.ids, query.target),
            ids: outcome.ids,
        }
    };

    let (probes, measured): (Vec<&Query>, Vec<&Query>) =
        corpus.queries.iter().partition(|q| q.split == "probe");
    eprintln!(
        "== measuring {} queries with {} methods",
        measured.len(),
        methods.len()
    );
    for query in measured.iter().take(WARM_UP_QUERIES) {
        for m in 0..methods.len() {
            ask(&mut app, m, query);
        }
    }
    // records[method][query]. Each query runs the methods in an order of its
    // own (a seeded shuffle), so that no method always meets the query's
    // pages first, nor always follows the same method: with a fixed rotation
    // the method after the heaviest ones was measured slower than its
    // identical variants further down the list.
    let mut records: Vec<Vec<Option<Record>>> = vec![vec![None; measured.len()]; methods.len()];
    let mut order: Vec<usize> = (0..methods.len()).collect();
    let mut shuffle = SplitMix64(corpus.manifest["seed"].as_u64().unwrap_or(0));
    for (n, query) in measured.iter().enumerate() {
        shuffle.permute(&mut order);
        for &m in &order {
            records[m][n] = Some(ask(&mut app, m, query));
        }
        if n % 100 == 99 {
            eprintln!("   {} / {}", n + 1, measured.len());
        }
    }
    let records: Vec<Vec<Record>> = records
        .into_iter()
        .map(|per_query| per_query.into_iter().map(Option::unwrap).collect())
        .collect();
    let probe_ranks: Vec<Vec<Option<usize>>> = (0..methods.len())
        .map(|m| probes.iter().map(|q| ask(&mut app, m, q).rank).collect())
        .collect();
    let measure_seconds = started.elapsed().as_secs_f64();

    let report = Report {
        corpus,
        methods: &methods,
        skipped: &skipped,
        measured: &measured,
        records: &records,
        probes: &probes,
        probe_ranks: &probe_ranks,
        checks: &checks,
        measure_seconds,
    };
    let markdown = report.markdown();
    println!("{markdown}");
    let size = corpus.manifest["size"].as_str().unwrap();
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(format!("{out_dir}/search-realtext-{size}.md"), &markdown).unwrap();
    std::fs::write(
        format!("{out_dir}/search-realtext-{size}.json"),
        serde_json::to_string_pretty(&report.json()).unwrap() + "\n",
    )
    .unwrap();

    // As in the generated-corpus benchmark, the promise the extension makes:
    // the vector branch and the fused search return match_count rows
    // whenever the tenant holds that many chunks. Checked after the report
    // is written, so that a failing run still shows its figures.
    let short: Vec<&str> = methods
        .iter()
        .zip(&records)
        .filter(|(m, r)| {
            (m.name.starts_with("vector_search") || m.name.starts_with("hybrid_search"))
                && r.iter().any(|r| r.short)
        })
        .map(|(m, _)| m.name.as_str())
        .collect();
    if !short.is_empty() {
        eprintln!("FAILED: some queries returned fewer than {MATCH_COUNT} rows: {short:?}");
        std::process::exit(1);
    }
}

/// What the database says about the loaded data, as the superuser.
struct Checks {
    /// Documents whose chunks are what the extension's chunk_text returns.
    chunked_as_the_extension_does: (i64, i64),
    index_megabytes: Vec<(String, f64)>,
    versions: String,
}

fn database_checks(admin: &mut Client) -> Checks {
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE same), count(*) FROM (
               SELECT chunk_text(d.content, 1000, 100) IS NOT DISTINCT FROM (
                        SELECT array_agg(c.content ORDER BY c.position)
                        FROM knowledge_chunks c WHERE c.document_id = d.id) AS same
               FROM knowledge_documents d) s",
            &[],
        )
        .unwrap();
    let index_megabytes = admin
        .query(
            "SELECT c.relname::text, pg_relation_size(c.oid) / 1e6::float8
             FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
             WHERE i.indrelid IN ('knowledge_chunks'::regclass, 'knowledge_documents'::regclass)
               AND c.relname IN ('knowledge_chunk_search_idx', 'knowledge_search_idx',
                                 'knowledge_chunk_embedding_idx', 'knowledge_embedding_idx')
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let versions: String = admin
        .query_one(
            "SELECT format('PostgreSQL %s, platform %s, pgvector %s', current_setting('server_version'),
                      (SELECT extversion FROM pg_extension WHERE extname = 'platform'),
                      (SELECT extversion FROM pg_extension WHERE extname = 'vector'))",
            &[],
        )
        .unwrap()
        .get(0);
    Checks {
        chunked_as_the_extension_does: (row.get(0), row.get(1)),
        index_megabytes,
        versions,
    }
}

// --- report -------------------------------------------------------------------

struct Report<'a> {
    corpus: &'a RealText,
    methods: &'a [Method],
    skipped: &'a [String],
    measured: &'a [&'a Query],
    records: &'a [Vec<Record>],
    probes: &'a [&'a Query],
    probe_ranks: &'a [Vec<Option<usize>>],
    checks: &'a Checks,
    measure_seconds: f64,
}

type Filter = Box<dyn Fn(&Query) -> bool>;

/// Tenant size bands by rank (tenants are in rank order, largest first):
/// the largest few, the middle, and the tail.
const LARGEST_BAND_END: usize = 3;
const MIDDLE_BAND_END: usize = 10;

fn band(tenant: usize) -> usize {
    if tenant < LARGEST_BAND_END {
        0
    } else if tenant < MIDDLE_BAND_END {
        1
    } else {
        2
    }
}

/// The groups every figure is reported for, within a split.
fn groups(corpus: &RealText) -> Vec<(String, Filter)> {
    let mut groups: Vec<(String, Filter)> = vec![
        ("all".into(), Box::new(|_| true)),
        ("verbatim".into(), Box::new(|q| q.verbatim)),
        ("not verbatim".into(), Box::new(|q| !q.verbatim)),
    ];
    let bands = [
        ("largest", 0, LARGEST_BAND_END),
        ("middle", LARGEST_BAND_END, MIDDLE_BAND_END),
        ("tail", MIDDLE_BAND_END, corpus.tenants.len()),
    ];
    for (b, (name, first, end)) in bands.into_iter().enumerate() {
        let sizes = (corpus.tenants[end - 1].chunks, corpus.tenants[first].chunks);
        groups.push((
            format!(
                "{name} tenants (ranks {}-{end}, {}-{} chunks)",
                first + 1,
                thousands(sizes.0),
                thousands(sizes.1)
            ),
            Box::new(move |q| band(q.tenant) == b),
        ));
    }
    for kind in ["desc", "title", "index", "faq"] {
        groups.push((format!("kind {kind}"), Box::new(move |q| q.kind == kind)));
    }
    groups
}

/// Where the tenant bands are among the groups.
const BAND_GROUPS: std::ops::Range<usize> = 3..6;

const SPLITS: [(&str, &str); 2] = [("heldout", "Held-out queries"), ("tune", "Tuning queries")];

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report<'_> {
    fn summary(&self, method: usize, split: &str, filter: &dyn Fn(&Query) -> bool) -> Summary {
        summarise(
            self.measured
                .iter()
                .zip(&self.records[method])
                .filter(|(q, _)| q.split == split && filter(q))
                .map(|(_, r)| r),
        )
    }

    fn count(&self, split: &str, filter: &dyn Fn(&Query) -> bool) -> usize {
        self.measured
            .iter()
            .filter(|q| q.split == split && filter(q))
            .count()
    }

    /// Recall@10 of vector_search against the exact tenant-scoped scan,
    /// over every measured query.
    fn vector_recall(&self) -> Option<f64> {
        let exact = self
            .methods
            .iter()
            .position(|m| m.name == EXACT_VECTOR_NAME)?;
        let hnsw = self
            .methods
            .iter()
            .position(|m| m.name == "vector_search (defaults)")?;
        let recalls: Vec<f64> = self.records[exact]
            .iter()
            .zip(&self.records[hnsw])
            .map(|(truth, got)| {
                truth.ids.iter().filter(|i| got.ids.contains(i)).count() as f64
                    / truth.ids.len().max(1) as f64
            })
            .collect();
        Some(recalls.iter().sum::<f64>() / recalls.len() as f64)
    }

    fn markdown(&self) -> String {
        let corpus = self.corpus;
        let manifest = &corpus.manifest;
        let mut out = String::new();
        let largest = &corpus.tenants[0];
        let smallest = corpus.tenants.last().unwrap();
        writeln!(
            out,
            "### Real text, size `{}`: {} chunks, {} documents, {} tenants (largest {} with {} chunks, smallest {} with {})\n",
            manifest["size"].as_str().unwrap(),
            thousands(corpus.chunk_count()),
            thousands(corpus.document_count()),
            corpus.tenants.len(),
            largest.tenant,
            thousands(largest.chunks),
            smallest.tenant,
            thousands(smallest.chunks),
        )
        .unwrap();
        let packages: Vec<String> = manifest["packages"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, version)| format!("{name} {}", version.as_str().unwrap()))
            .collect();
        writeln!(
            out,
            "Text: {}, Debian package descriptions of {}; seed {}. Queries: {} ({} tuning, {} held-out; {} found verbatim in their target). \
             Embeddings: {}, {} dimensions zero-padded to {DIM} (stored rows with {TENANT_MARK} in a padding coordinate of their tenant's, which keeps rows of different tenants with the same text apart in the HNSW index and changes no ranking). {}. Every method runs as the application role \
             (non-superuser, inside `set_tenant`) with match_count {MATCH_COUNT}, latency measured at the client, \
             and is judged by document: a query's rank is its target's place among the distinct documents of the rows returned.\n",
            packages.join(", "),
            manifest["apt_lists_date"].as_str().unwrap_or("unknown date"),
            manifest["seed"],
            self.measured.len(),
            self.count("tune", &|_| true),
            self.count("heldout", &|_| true),
            self.measured.iter().filter(|q| q.verbatim).count(),
            corpus.model,
            corpus.dimensions,
            self.checks.versions,
        )
        .unwrap();
        let (same, documents) = self.checks.chunked_as_the_extension_does;
        writeln!(
            out,
            "Chunks equal to the extension's `chunk_text(content, 1000, 100)`: {} of {} documents.\n",
            thousands(same as usize),
            thousands(documents as usize)
        )
        .unwrap();
        if let Ok(phases) = std::env::var("BENCH_PHASES") {
            let phases: Vec<String> = phases
                .split(';')
                .filter_map(|p| p.split_once('='))
                .map(|(name, seconds)| format!("{name} {seconds} s"))
                .collect();
            writeln!(
                out,
                "Phases: {}, measure {:.1} s.\n",
                phases.join(", "),
                self.measure_seconds
            )
            .unwrap();
        }
        for skipped in self.skipped {
            writeln!(out, "Skipped (not in the installed extension): {skipped}\n").unwrap();
        }

        let groups = groups(corpus);
        let not_verbatim = &groups[2].1;
        for (split, heading) in SPLITS {
            writeln!(out, "#### {heading} ({})\n", self.count(split, &|_| true)).unwrap();
            writeln!(
                out,
                "| method | MRR@10 | nDCG@10 | Hit@10 | MRR@10 not verbatim ({}) | p50 ms | p95 ms | short |",
                self.count(split, not_verbatim.as_ref())
            )
            .unwrap();
            writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|").unwrap();
            for (m, method) in self.methods.iter().enumerate() {
                let s = self.summary(m, split, &|_| true);
                let nv = self.summary(m, split, not_verbatim.as_ref());
                writeln!(
                    out,
                    "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {} |",
                    method.name, s.mrr, s.ndcg, s.hit, nv.mrr, s.p50, s.p95, s.short
                )
                .unwrap();
            }
            write!(out, "\nMRR@10 / Hit@10 by group:\n\n| method |").unwrap();
            for (name, filter) in groups.iter().skip(1) {
                write!(out, " {name} ({}) |", self.count(split, filter.as_ref())).unwrap();
            }
            writeln!(out, "\n|---|{}", "---:|".repeat(groups.len() - 1)).unwrap();
            for (m, method) in self.methods.iter().enumerate() {
                write!(out, "| {} |", method.name).unwrap();
                for (_, filter) in groups.iter().skip(1) {
                    let s = self.summary(m, split, filter.as_ref());
                    write!(out, " {:.3} / {:.2} |", s.mrr, s.hit).unwrap();
                }
                writeln!(out).unwrap();
            }
            write!(
                out,
                "\nLatency and short answers by tenant size (p50 ms / p95 ms / short):\n\n| method |"
            )
            .unwrap();
            for (name, filter) in &groups[BAND_GROUPS] {
                write!(out, " {name} ({}) |", self.count(split, filter.as_ref())).unwrap();
            }
            writeln!(out, "\n|---|{}", "---:|".repeat(BAND_GROUPS.len())).unwrap();
            for (m, method) in self.methods.iter().enumerate() {
                write!(out, "| {} |", method.name).unwrap();
                for (_, filter) in &groups[BAND_GROUPS] {
                    let s = self.summary(m, split, filter.as_ref());
                    write!(out, " {:.2} / {:.2} / {} |", s.p50, s.p95, s.short).unwrap();
                }
                writeln!(out).unwrap();
            }
            writeln!(out).unwrap();
        }
        writeln!(
            out,
            "short: queries answered with fewer than {MATCH_COUNT} rows although the tenant holds that many chunks \
             (documents, for the methods that return documents).\n"
        )
        .unwrap();

        if let Some(recall) = self.vector_recall() {
            writeln!(
                out,
                "`vector_search` recall@10 against the exact tenant-scoped scan, all {} queries: {recall:.3}.\n",
                self.measured.len()
            )
            .unwrap();
        }

        writeln!(out, "#### Rare-terms probe\n").unwrap();
        writeln!(
            out,
            "A document holding two invented words once each, queried by exactly those words with the embedding of an unrelated sentence; its rank among the documents returned (- : not in the first {MATCH_COUNT} rows).\n"
        )
        .unwrap();
        write!(out, "| method |").unwrap();
        for probe in self.probes {
            let tenant = &corpus.tenants[probe.tenant];
            write!(
                out,
                " `{}` in {} ({} chunks) |",
                probe.text,
                tenant.tenant,
                thousands(tenant.chunks)
            )
            .unwrap();
        }
        writeln!(out, "\n|---|{}", "---:|".repeat(self.probes.len())).unwrap();
        for (m, method) in self.methods.iter().enumerate() {
            write!(out, "| {} |", method.name).unwrap();
            for rank in &self.probe_ranks[m] {
                write!(out, " {} |", rank.map_or("-".to_owned(), |r| r.to_string())).unwrap();
            }
            writeln!(out).unwrap();
        }

        writeln!(out, "\nIndexes:\n\n| index | MB |\n|---|---:|").unwrap();
        for (name, megabytes) in &self.checks.index_megabytes {
            writeln!(out, "| {name} | {megabytes:.1} |").unwrap();
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let groups = groups(self.corpus);
        let methods: Vec<serde_json::Value> = self
            .methods
            .iter()
            .enumerate()
            .map(|(m, method)| {
                let mut splits = serde_json::Map::new();
                for (split, _) in SPLITS {
                    let mut by_group = serde_json::Map::new();
                    for (name, filter) in &groups {
                        let s = self.summary(m, split, filter.as_ref());
                        by_group.insert(
                            name.clone(),
                            json!({"queries": s.queries, "mrr": s.mrr, "ndcg": s.ndcg, "hit": s.hit,
                                   "p50_ms": s.p50, "p95_ms": s.p95, "short": s.short}),
                        );
                    }
                    splits.insert(split.to_owned(), by_group.into());
                }
                let probes: Vec<serde_json::Value> = self
                    .probes
                    .iter()
                    .zip(&self.probe_ranks[m])
                    .map(|(q, rank)| json!({"tenant": self.corpus.tenants[q.tenant].tenant, "query": q.text, "rank": rank}))
                    .collect();
                json!({"name": method.name, "sql": method.sql, "settings": method.settings,
                       "splits": splits, "probes": probes})
            })
            .collect();
        let per_query: Vec<serde_json::Value> = self
            .measured
            .iter()
            .enumerate()
            .map(|(n, q)| {
                let ranks: Vec<Option<usize>> = self.records.iter().map(|r| r[n].rank).collect();
                let millis: Vec<f64> = self
                    .records
                    .iter()
                    .map(|r| (r[n].millis * 1000.0).round() / 1000.0)
                    .collect();
                json!({"id": q.id, "split": q.split, "ranks": ranks, "millis": millis})
            })
            .collect();
        json!({
            "manifest": self.corpus.manifest,
            "model": self.corpus.model,
            "versions": self.checks.versions,
            "phases": std::env::var("BENCH_PHASES").ok(),
            "measure_seconds": self.measure_seconds,
            "chunked_as_the_extension_does": [self.checks.chunked_as_the_extension_does.0, self.checks.chunked_as_the_extension_does.1],
            "vector_search_recall_at_10": self.vector_recall(),
            "skipped": self.skipped,
            "methods": methods,
            "ranks_by_query": per_query,
        })
    }
}
