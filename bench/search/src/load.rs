//! Loading a knowledge base (the generated corpus or the real-text one): a
//! fresh database with the extension, tenants, then documents and chunks by
//! binary COPY with the search indexes dropped, then the indexes rebuilt and
//! timed.

use std::time::Instant;

use pgvector::Vector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{Kind, Type};
use postgres::Client;
use uuid::Uuid;

/// What a benchmark loads: tenants, their documents, and the documents'
/// chunks, numbered from 0 (the ids in the database derive from the numbers,
/// see `id`). Rows are made on demand, so that a corpus too large to hold in
/// memory with its embeddings can compute them while it is loaded.
pub trait KnowledgeBase {
    fn tenant_names(&self) -> Vec<String>;
    fn document_count(&self) -> usize;
    fn document(&self, document: usize) -> DocumentRow;
    fn chunk_count(&self) -> usize;
    fn chunk(&self, chunk: usize) -> ChunkRow;
}

pub struct DocumentRow {
    pub tenant: usize,
    pub title: String,
    pub content: String,
    pub category: String,
    pub embedding: Vec<f32>,
}

pub struct ChunkRow {
    pub document: usize,
    /// The chunk's place in its document, from 0.
    pub position: usize,
    pub content: String,
    pub embedding: Vec<f32>,
}

pub const APP_ROLE: &str = "search_bench_app";

/// A deterministic id for entity `n` of kind `kind` (1 tenant, 2 doc, 3 chunk).
pub fn id(kind: u8, n: usize) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[0] = kind;
    bytes[8..].copy_from_slice(&(n as u64).to_be_bytes());
    bytes[6] = 0x40; // version 4 shape, so it looks like any other id
    bytes[8] |= 0x80;
    Uuid::from_bytes(bytes)
}

pub struct IndexBuild {
    pub name: &'static str,
    pub seconds: f64,
    pub bytes: i64,
}

const INDEXES: [(&str, &str); 4] = [
    ("knowledge_chunk_search_idx", "CREATE INDEX knowledge_chunk_search_idx ON knowledge_chunks USING gin (search_vector)"),
    ("knowledge_search_idx", "CREATE INDEX knowledge_search_idx ON knowledge_documents USING gin (search_vector)"),
    (
        "knowledge_chunk_embedding_idx",
        "CREATE INDEX knowledge_chunk_embedding_idx ON knowledge_chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)",
    ),
    (
        "knowledge_embedding_idx",
        "CREATE INDEX knowledge_embedding_idx ON knowledge_documents USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)",
    ),
];

pub fn create_database(server: &mut Client, dbname: &str) {
    for statement in [
        format!("DROP DATABASE IF EXISTS {dbname}"),
        format!("CREATE DATABASE {dbname}"),
        format!("DROP ROLE IF EXISTS {APP_ROLE}"),
        format!("CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"),
    ] {
        server
            .batch_execute(&statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

pub fn load(db: &mut Client, corpus: &dyn KnowledgeBase) -> Vec<IndexBuild> {
    db.batch_execute("CREATE EXTENSION platform CASCADE")
        .unwrap();
    db.execute("SELECT grant_app_access($1::text::regrole)", &[&APP_ROLE])
        .unwrap();
    // The variants the benchmark compares change search settings, which only
    // superusers may change unless an operator delegates them, as here.
    db.batch_execute(&format!(
        "SELECT platform_exact_scan_limit();
         GRANT SET ON PARAMETER platform.exact_scan_limit, platform.keyword_rank_limit,
                                platform.common_word_share, platform.exact_match_word_share,
                                platform.bm25_k1, platform.bm25_b, platform.sketch_candidates TO {APP_ROLE}"
    ))
    .unwrap();
    for (name, _) in INDEXES {
        db.batch_execute(&format!("DROP INDEX {name}")).unwrap();
    }
    let tenant_names = corpus.tenant_names();
    let tenant_ids: Vec<Uuid> = (0..tenant_names.len()).map(|t| id(1, t)).collect();
    db.execute(
        "INSERT INTO tenants (id, name, api_key)
         SELECT t, name, 'pk_bench_' || md5(n::text)
         FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS u(t, name, n)",
        &[&tenant_ids, &tenant_names],
    )
    .unwrap();
    let vector_type: u32 = db
        .query_one("SELECT 'vector'::regtype::oid", &[])
        .unwrap()
        .get(0);
    let vector = Type::new("vector".into(), vector_type, Kind::Simple, "public".into());

    let started = Instant::now();
    let mut document_tenant = Vec::with_capacity(corpus.document_count());
    {
        let sink = db
            .copy_in("COPY knowledge_documents (id, tenant_id, title, content, category, embedding) FROM STDIN BINARY")
            .unwrap();
        let types = [
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            vector.clone(),
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for d in 0..corpus.document_count() {
            let row = corpus.document(d);
            document_tenant.push(row.tenant);
            writer
                .write(&[
                    &id(2, d),
                    &id(1, row.tenant),
                    &row.title,
                    &row.content,
                    &row.category,
                    &Vector::from(row.embedding),
                ])
                .unwrap();
        }
        writer.finish().unwrap();
    }
    eprintln!(
        "   documents loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    {
        let sink = db
            .copy_in("COPY knowledge_chunks (id, tenant_id, document_id, content, embedding, position) FROM STDIN BINARY")
            .unwrap();
        let types = [
            Type::UUID,
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            vector.clone(),
            Type::INT4,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for c in 0..corpus.chunk_count() {
            let row = corpus.chunk(c);
            writer
                .write(&[
                    &id(3, c),
                    &id(1, document_tenant[row.document]),
                    &id(2, row.document),
                    &row.content,
                    &Vector::from(row.embedding),
                    &(row.position as i32),
                ])
                .unwrap();
        }
        writer.finish().unwrap();
    }
    eprintln!(
        "   chunks loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    vacuum(db);
    db.batch_execute("SET maintenance_work_mem = '3GB'; SET max_parallel_maintenance_workers = 1")
        .unwrap();
    let builds = INDEXES
        .iter()
        .map(|(name, sql)| {
            let started = Instant::now();
            db.batch_execute(sql).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            let bytes: i64 = db
                .query_one("SELECT pg_relation_size($1::text::regclass)", &[name])
                .unwrap()
                .get(0);
            eprintln!("   {name}: {seconds:.1} s, {} MB", bytes / 1_000_000);
            IndexBuild {
                name,
                seconds,
                bytes,
            }
        })
        .collect();
    vacuum(db);
    builds
}

/// One statement each: VACUUM refuses to run in a multi-statement string.
fn vacuum(db: &mut Client) {
    for table in ["knowledge_documents", "knowledge_chunks"] {
        db.batch_execute(&format!("VACUUM ANALYZE {table}"))
            .unwrap();
    }
}
