//! Embedding sketches: the signs of a vector's coordinates, one bit each,
//! and the `wanted` rows whose sketches are nearest to a query's by Hamming
//! distance. Plain Rust; `sketch_scan` feeds it the rows of an index.
//!
//! The bit layout is pgvector's `binary_quantize`: coordinate i is bit
//! `7 - i % 8` of byte `i / 8` (most significant bit first), set when the
//! coordinate is above zero. The query's sketch is built here the same way,
//! so its distance to a stored sketch is the one `<~>` computes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The sketch of `embedding`, as `binary_quantize(embedding)` stores it.
pub fn sketch_of(embedding: &[f32]) -> Vec<u8> {
    let mut sketch = vec![0u8; embedding.len().div_ceil(8)];
    for (i, &value) in embedding.iter().enumerate() {
        if value > 0.0 {
            sketch[i / 8] |= 0x80 >> (i % 8);
        }
    }
    sketch
}

/// Bits in which two sketches differ; None when their lengths differ (rows
/// of another dimension are not comparable, and `<~>` raises for them).
pub fn hamming_distance(a: &[u8], b: &[u8]) -> Option<u32> {
    if a.len() != b.len() {
        return None;
    }
    let mut chunks_a = a.chunks_exact(8);
    let mut chunks_b = b.chunks_exact(8);
    let mut distance = 0u32;
    for (x, y) in chunks_a.by_ref().zip(chunks_b.by_ref()) {
        let x = u64::from_ne_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(y.try_into().expect("8 bytes"));
        distance += (x ^ y).count_ones();
    }
    for (x, y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        distance += (x ^ y).count_ones();
    }
    Some(distance)
}

/// A row seen by the scan: its Hamming distance and its id (a UUID's bytes,
/// which order as PostgreSQL orders UUIDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    distance: u32,
    id: [u8; 16],
}

/// The `wanted` nearest rows seen so far, nearest first and ties by id, as
/// `ORDER BY sketch <~> query, id LIMIT wanted` returns them. Memory is
/// bounded by `wanted` whatever the number of rows offered.
pub struct NearestSketches {
    wanted: usize,
    /// A max-heap: its top is the farthest row kept, the first to go.
    kept: BinaryHeap<Candidate>,
}

impl NearestSketches {
    pub fn new(wanted: usize) -> Self {
        Self {
            wanted,
            kept: BinaryHeap::with_capacity(wanted.saturating_add(1).min(1 << 16)),
        }
    }

    /// Offers a row; it stays if it is among the `wanted` nearest so far.
    pub fn offer(&mut self, distance: u32, id: [u8; 16]) {
        if self.wanted == 0 {
            return;
        }
        let candidate = Candidate { distance, id };
        if self.kept.len() < self.wanted {
            self.kept.push(candidate);
        } else if let Some(farthest) = self.kept.peek() {
            if candidate.cmp(farthest) == Ordering::Less {
                self.kept.pop();
                self.kept.push(candidate);
            }
        }
    }

    /// The ids kept, nearest first.
    pub fn into_ids(self) -> Vec<[u8; 16]> {
        self.kept
            .into_sorted_vec()
            .into_iter()
            .map(|c| c.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[15] = n;
        id
    }

    #[test]
    fn a_sketch_sets_the_bits_of_positive_coordinates_most_significant_first() {
        assert_eq!(
            sketch_of(&[1.0, -1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 2.0]),
            vec![0b1001_0001]
        );
        // A ninth coordinate starts a second byte.
        assert_eq!(
            sketch_of(&[0.0; 8].iter().copied().chain([3.0]).collect::<Vec<_>>()),
            vec![0, 0x80]
        );
        assert_eq!(sketch_of(&[f32::NAN, -0.0]), vec![0]);
    }

    #[test]
    fn the_distance_counts_differing_bits_over_whole_words_and_the_rest() {
        let a: Vec<u8> = (0..19).collect();
        let mut b = a.clone();
        assert_eq!(hamming_distance(&a, &b), Some(0));
        b[0] ^= 0b1010_0000; // in the first 8-byte word
        b[18] ^= 0b0000_0111; // in the remainder
        assert_eq!(hamming_distance(&a, &b), Some(5));
        assert_eq!(hamming_distance(&[0xff; 128], &[0; 128]), Some(1024));
        assert_eq!(hamming_distance(&a, &a[..18]), None);
    }

    #[test]
    fn the_nearest_are_kept_nearest_first_with_ties_broken_by_id() {
        let mut nearest = NearestSketches::new(3);
        for (distance, n) in [(9, 1), (4, 7), (4, 2), (12, 3), (1, 9), (4, 0)] {
            nearest.offer(distance, id(n));
        }
        assert_eq!(nearest.into_ids(), vec![id(9), id(0), id(2)]);
    }

    #[test]
    fn fewer_rows_than_wanted_are_all_returned_and_none_wanted_keeps_none() {
        let mut nearest = NearestSketches::new(10);
        nearest.offer(5, id(1));
        nearest.offer(2, id(2));
        assert_eq!(nearest.into_ids(), vec![id(2), id(1)]);
        let mut none = NearestSketches::new(0);
        none.offer(0, id(1));
        assert!(none.into_ids().is_empty());
    }

    #[test]
    fn the_result_equals_a_full_sort_of_every_row() {
        // A deterministic pseudo-random stream with many ties.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut rows = Vec::new();
        let mut nearest = NearestSketches::new(50);
        for n in 0..5_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let distance = (state % 40) as u32;
            let mut row_id = [0u8; 16];
            row_id[..4].copy_from_slice(&(state as u32).to_be_bytes());
            row_id[12..].copy_from_slice(&n.to_be_bytes());
            rows.push((distance, row_id));
            nearest.offer(distance, row_id);
        }
        rows.sort();
        let expected: Vec<[u8; 16]> = rows.iter().take(50).map(|r| r.1).collect();
        assert_eq!(nearest.into_ids(), expected);
    }
}
