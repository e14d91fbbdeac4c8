//! BM25 as SQL functions over stored `tsvector`s (the algorithm is
//! `bm25`): keyword search ranks its candidates with `platform_bm25`, with
//! weights from the tenant's own counts (`sql/search/keyword_statistics.sql`).

use pgrx::prelude::*;

use crate::error::PlatformError;
use crate::search::bm25::{self, Lexemes, StoredTsVector};
use crate::search::input::{check_pairs, without_nulls};
use crate::search::raise;
use crate::search::text_search::TsVector;
use crate::settings;

fn parsed<'a>(vector: &'a TsVector, function: &'static str) -> StoredTsVector<'a> {
    StoredTsVector::parse(vector.body())
        .unwrap_or_else(|_| PlatformError::MalformedTsVector.raise(function))
}

/// A row's length for BM25: its words' occurrences (stop words left out).
/// What the tenant's average row length is summed from.
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
fn platform_keyword_length(search_vector: TsVector) -> i64 {
    i64::from(parsed(&search_vector, "platform_keyword_length").length())
}

/// The weights of query words found in `rows_with_word` of the tenant's
/// `rows` rows: BM25's inverse document frequencies.
#[pg_extern(immutable, parallel_safe, strict, create_or_replace)]
fn platform_bm25_weights(rows: i64, rows_with_word: Vec<Option<i64>>) -> Vec<f64> {
    const NAME: &str = "platform_bm25_weights";
    let counts = without_nulls("rows_with_word", rows_with_word).unwrap_or_else(|e| raise(e, NAME));
    counts
        .into_iter()
        .map(|with| bm25::inverse_document_frequency(rows as f64, with as f64))
        .collect()
}

/// A row's BM25 score for the query's `lexemes` and their `weights`
/// (platform_bm25_weights), with the tenant's average row length, under
/// platform.bm25_k1 and platform.bm25_b.
#[pg_extern(stable, parallel_safe, strict, create_or_replace)]
fn platform_bm25(
    search_vector: TsVector,
    lexemes: Vec<Option<String>>,
    weights: Vec<Option<f64>>,
    average_length: f64,
) -> f64 {
    const NAME: &str = "platform_bm25";
    let lexemes = without_nulls("lexemes", lexemes).unwrap_or_else(|e| raise(e, NAME));
    let weights = without_nulls("weights", weights).unwrap_or_else(|e| raise(e, NAME));
    check_pairs("lexemes", lexemes.len(), "weights", weights.len())
        .unwrap_or_else(|e| raise(e, NAME));
    let words: Vec<&[u8]> = lexemes.iter().map(|l| l.as_bytes()).collect();
    let row = parsed(&search_vector, NAME);
    bm25::score(&row, &words, &weights, average_length, settings::bm25())
}
