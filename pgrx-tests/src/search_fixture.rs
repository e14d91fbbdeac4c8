//! Knowledge-base rows for the search tests, written as the application role
//! under a tenant context: documents, chunks and embeddings whose distances
//! are known by construction.

use pgvector::Vector;
use postgres::Transaction;
use uuid::Uuid;

pub const DIMENSIONS: usize = 1024;

/// A unit vector leaning towards axis `axis`, with `lean` of its weight on
/// axis `towards` (0 = exactly the axis). Cosine distances between these are
/// known: the closer `lean`, the closer the vectors.
pub fn axis_vector(axis: usize, towards: usize, lean: f32) -> Vector {
    let mut v = vec![0.0f32; DIMENSIONS];
    v[axis] = 1.0 - lean;
    v[towards] += lean;
    Vector::from(v)
}

/// A document of the current tenant.
pub fn insert_document(
    tx: &mut Transaction,
    title: &str,
    content: &str,
    category: Option<&str>,
) -> Uuid {
    tx.query_one(
        "INSERT INTO knowledge_documents (title, content, category) VALUES ($1, $2, $3) RETURNING id",
        &[&title, &content, &category],
    )
    .unwrap_or_else(|e| panic!("insert document {title}: {e}"))
    .get(0)
}

/// A chunk of `document` at `position`.
pub fn insert_chunk(
    tx: &mut Transaction,
    document: Uuid,
    position: i32,
    content: &str,
    embedding: &Vector,
) -> Uuid {
    tx.query_one(
        "INSERT INTO knowledge_chunks (document_id, position, content, embedding)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&document, &position, &content, embedding],
    )
    .unwrap_or_else(|e| panic!("insert chunk {content}: {e}"))
    .get(0)
}

/// `count` chunks of one new document, in bulk, whose embeddings lean from
/// axis 0 towards axis `towards`: the first by `first`, each next one `step`
/// further (so the first is the nearest to axis 0), plus a little noise on
/// every axis (without it the vectors lie in a plane, and an HNSW graph over
/// such points is poorly connected).
pub fn insert_spread_chunks(
    tx: &mut Transaction,
    title: &str,
    count: i32,
    towards: i32,
    first: f32,
    step: f32,
) -> Uuid {
    let document = insert_document(tx, title, title, None);
    tx.execute(
        "INSERT INTO knowledge_chunks (document_id, position, content, embedding)
         SELECT $1, g, $2 || ' chunk ' || g,
                (SELECT array_agg(CASE WHEN i = 0 THEN 1 - ($5::real + g * $6::real)
                                       WHEN i = $4 THEN $5::real + g * $6::real ELSE 0 END
                                  + (random() - 0.5) * 0.004 ORDER BY i)
                 FROM generate_series(0, 1023) i)::real[]::vector
         FROM generate_series(0, $3 - 1) g",
        &[&document, &title, &count, &towards, &first, &step],
    )
    .unwrap_or_else(|e| panic!("insert {count} chunks: {e}"));
    document
}
