//! Search and ingestion: the Rust half. The algorithms are plain Rust with
//! unit tests (chunking, fusion, input checks, keyword queries); this module
//! and `text_search` adapt them to SQL types. The searches themselves are SQL
//! (`sql/search/`), where `ORDER BY embedding <=> $1` lets the planner use the
//! HNSW index; these functions only decide, check and fuse.
//! Embeddings arrive as `real[]` through pgvector's implicit cast.

pub mod bm25;
pub mod chunking;
pub mod fusion;
pub mod input;
pub mod keyword_query;
pub mod keyword_ranking;
pub mod markdown;
pub mod sketch;
pub mod sketch_scan;
pub mod text_search;
pub mod tokens;

use pgrx::prelude::*;

use crate::error::PlatformError;
use crate::settings;
use fusion::{fuse, Fusion, Weights};
use input::{
    check_choice, check_embedding, check_pairs, check_range, check_size, check_weight,
    without_nulls, InputError,
};

/// Raises a bad search or ingestion argument as its PlatformError.
fn raise(input: InputError, function: &'static str) -> ! {
    PlatformError::BadSearchInput(input).raise(function)
}

/// Raises unless the query embedding can be searched with (1024 finite
/// components, not all zero); returns true so SQL can use it in an expression.
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
fn platform_check_query_embedding(embedding: Vec<Option<f32>>) -> bool {
    const NAME: &str = "platform_check_query_embedding";
    let embedding = without_nulls("the embedding", embedding).unwrap_or_else(|e| raise(e, NAME));
    check_embedding(&embedding).unwrap_or_else(|e| raise(e, NAME));
    true
}

/// `value` if it lies in 1..=max, else an error naming the argument.
#[pg_extern(immutable, parallel_safe, create_or_replace)]
fn platform_checked_count(name: Option<&str>, value: Option<i32>, max: Option<i32>) -> i32 {
    const NAME: &str = "platform_checked_count";
    let name = name.unwrap_or_else(|| {
        raise(
            InputError::Missing {
                name: "name".into(),
            },
            NAME,
        )
    });
    let max = max.unwrap_or_else(|| raise(InputError::Missing { name: "max".into() }, NAME));
    check_range(name, value.map(i64::from), 1, i64::from(max)).unwrap_or_else(|e| raise(e, NAME))
        as i32
}

/// Most candidates one branch hands to fusion (hybrid_search's `candidates`).
const MAX_CANDIDATES: usize = 1000;

/// A branch's candidates as (id, score) pairs, checked: as many scores as ids,
/// no NULLs, at most MAX_CANDIDATES.
fn candidates(
    names: (&'static str, &'static str),
    ids: Option<Vec<Option<pgrx::Uuid>>>,
    scores: Option<Vec<Option<f64>>>,
) -> Result<Vec<([u8; 16], f64)>, InputError> {
    let ids = without_nulls(names.0, ids.unwrap_or_default())?;
    let scores = without_nulls(names.1, scores.unwrap_or_default())?;
    check_pairs(names.0, ids.len(), names.1, scores.len())?;
    check_range(
        &format!("the number of {}", names.0),
        Some(ids.len() as i64),
        0,
        MAX_CANDIDATES as i64,
    )?;
    Ok(ids.iter().map(|id| *id.as_bytes()).zip(scores).collect())
}

fn fusion_of(mode: Option<&str>, rrf_k: i32) -> Fusion {
    match check_choice("fusion", mode, &["rrf", "convex", "tmm"]) {
        Ok("rrf") => Fusion::ReciprocalRank {
            k: f64::from(rrf_k),
        },
        Ok("tmm") => Fusion::TheoreticalConvex,
        Ok(_) => Fusion::Convex,
        Err(e) => raise(e, "platform_fuse"),
    }
}

/// The fused top `match_count` of two candidate lists given best first:
/// vector candidates with their similarity (1 - cosine distance), keyword
/// candidates with their BM25 score and whether each is an exact match
/// (`keyword_exact`, NULL: none is); those come first unless the keyword
/// weight is 0. `position` is the row's place in the result.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, create_or_replace)]
fn platform_fuse(
    vector_ids: Option<Vec<Option<pgrx::Uuid>>>,
    vector_scores: Option<Vec<Option<f64>>>,
    keyword_ids: Option<Vec<Option<pgrx::Uuid>>>,
    keyword_scores: Option<Vec<Option<f64>>>,
    keyword_exact: Option<Vec<Option<bool>>>,
    fusion: Option<&str>,
    rrf_k: Option<i32>,
    vector_weight: Option<f64>,
    keyword_weight: Option<f64>,
    match_count: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(id, pgrx::Uuid),
        name!(score, f64),
        name!(vector_rank, Option<i64>),
        name!(keyword_rank, Option<i64>),
        name!(position, i64),
    ),
> {
    const NAME: &str = "platform_fuse";
    let weights = Weights {
        vector: check_weight("vector_weight", vector_weight).unwrap_or_else(|e| raise(e, NAME)),
        keyword: check_weight("keyword_weight", keyword_weight).unwrap_or_else(|e| raise(e, NAME)),
    };
    let rrf_k =
        check_range("rrf_k", rrf_k.map(i64::from), 1, 100_000).unwrap_or_else(|e| raise(e, NAME));
    let fusion = fusion_of(fusion, rrf_k as i32);
    let vector = candidates(("vector_ids", "vector_scores"), vector_ids, vector_scores)
        .unwrap_or_else(|e| raise(e, NAME));
    let keyword = candidates(
        ("keyword_ids", "keyword_scores"),
        keyword_ids,
        keyword_scores,
    )
    .unwrap_or_else(|e| raise(e, NAME));
    let exact = keyword_exact.map(|flags| {
        let flags = without_nulls("keyword_exact", flags).unwrap_or_else(|e| raise(e, NAME));
        check_pairs("keyword_ids", keyword.len(), "keyword_exact", flags.len())
            .unwrap_or_else(|e| raise(e, NAME));
        flags
    });
    let first: Vec<[u8; 16]> = match exact {
        // A keyword weight of 0 leaves the keyword branch out altogether.
        Some(flags) if weights.keyword > 0.0 => keyword
            .iter()
            .zip(flags)
            .filter(|(_, exact)| *exact)
            .map(|((id, _), _)| *id)
            .collect(),
        _ => Vec::new(),
    };
    let rows = fuse(
        &vector,
        &keyword,
        fusion,
        weights,
        match_count.unwrap_or(0).clamp(0, MAX_CANDIDATES as i32) as usize,
        &first,
    );
    TableIterator::new(rows.into_iter().enumerate().map(|(index, row)| {
        (
            pgrx::Uuid::from_bytes(row.id),
            row.score,
            row.vector_rank.map(|r| r as i64),
            row.keyword_rank.map(|r| r as i64),
            index as i64 + 1,
        )
    }))
}

/// Longest chunk size accepted: far beyond any embedding model's input.
const MAX_CHUNK_SIZE: i64 = 1_000_000;

/// Splits `content` into chunks of at most `chunk_size` units that overlap by
/// about `overlap` units: characters, or cl100k_base tokens with `unit =>
/// 'tokens'`. They end at paragraph, sentence or word boundaries where
/// possible, and with `format => 'markdown'` before headings and outside
/// fenced code blocks (see `chunking.rs`). The content is bounded by
/// platform.max_text_length and the characters of all chunks together by
/// twice that; a cancel is honoured between chunks and while tokenizing.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn chunk_text(
    content: Option<&str>,
    chunk_size: Option<i32>,
    overlap: Option<i32>,
    unit: default!(Option<&str>, "'characters'"),
    format: default!(Option<&str>, "'text'"),
) -> Option<Vec<String>> {
    const NAME: &str = "chunk_text";
    let unit = match check_choice("unit", unit, &["characters", "tokens"]) {
        Ok("tokens") => chunking::Unit::Tokens,
        Ok(_) => chunking::Unit::Characters,
        Err(e) => raise(e, NAME),
    };
    let format = match check_choice("format", format, &["text", "markdown"]) {
        Ok("markdown") => chunking::Format::Markdown,
        Ok(_) => chunking::Format::Text,
        Err(e) => raise(e, NAME),
    };
    let smallest = match unit {
        chunking::Unit::Characters => 1,
        chunking::Unit::Tokens => chunking::MIN_TOKEN_SIZE as i64,
    };
    let size = check_range(
        "chunk_size",
        chunk_size.map(i64::from),
        smallest,
        MAX_CHUNK_SIZE,
    )
    .unwrap_or_else(|e| raise(e, NAME));
    let overlap = check_range("overlap", overlap.map(i64::from), 0, size - 1)
        .unwrap_or_else(|e| raise(e, NAME));
    let text = content?;
    check_text_length(text, NAME);
    // Twice the input limit: room for a usual overlap on the longest text.
    let output_limit = settings::max_text_length().saturating_mul(2);
    let spec = chunking::Spec {
        size: size as usize,
        overlap: overlap as usize,
        unit,
        format,
    };
    let chunks = chunking::chunk_text(text, spec, output_limit, || {
        pgrx::check_for_interrupts!();
    })
    .unwrap_or_else(|e| raise(InputError::ChunksTooLarge { limit: e.limit }, NAME));
    Some(chunks)
}

/// Raises 54000 when `content` is longer than platform.max_text_length; for
/// SQL functions that take a text to work through.
#[pg_extern(stable, parallel_safe, create_or_replace)]
fn platform_check_text_length(content: Option<&str>) {
    if let Some(text) = content {
        check_text_length(text, "platform_check_text_length");
    }
}

/// Raises 54000 when `text` is longer than platform.max_text_length (its
/// characters are counted only when its bytes exceed the limit).
pub fn check_text_length(text: &str, function: &'static str) {
    let limit = settings::max_text_length();
    // A character takes at least one byte: short texts need no count.
    if text.len() > limit {
        let got = text.chars().count();
        check_size(
            "the text",
            "characters",
            got,
            limit,
            "platform.max_text_length",
        )
        .unwrap_or_else(|e| raise(e, function));
    }
}
