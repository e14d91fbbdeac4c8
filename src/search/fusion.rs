//! Fusing the ranked lists of the vector and keyword branches into one, without
//! Postgres. The design document adds `0.6 * cosine + 0.4 * ts_rank`, two
//! scores on unrelated scales (ts_rank is unbounded and tiny for long texts),
//! so one branch silently dominates. Three fusions that do not have that flaw:
//!
//! * Reciprocal Rank Fusion: `sum over branches of weight / (k + rank)`; only
//!   ranks matter, so the scales never meet. k = 60 is the usual default.
//! * Convex combination of scores min-max normalised per branch to [0, 1]
//!   over that branch's candidates, weighted by `weight / sum of weights`.
//! * The same with theoretical min-max normalisation (Bruch, Gai and
//!   Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS
//!   2023): each score's distance from the lowest score the branch can give
//!   (cosine similarity -1, BM25 0) over the best candidate's. Observed
//!   min-max maps a branch's worst candidate to 0 and its best to 1 whatever
//!   they are: a lone keyword match, however weak, scores as much as the
//!   best vector match.
//!
//! Rows the keyword branch marks as exact (holding every distinctive query
//! word) can be put first, in fused order among themselves: a query made of
//! an error code or a product name finds the row that holds it, whatever
//! the embedding says.
//!
//! Ties are broken by the better of the two ranks, then by id, so the same
//! inputs always give the same order.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    ReciprocalRank { k: f64 },
    Convex,
    TheoreticalConvex,
}

/// The lowest score each branch can give: what theoretical min-max
/// normalisation measures from.
pub const VECTOR_SCORE_FLOOR: f64 = -1.0;
pub const KEYWORD_SCORE_FLOOR: f64 = 0.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub vector: f64,
    pub keyword: f64,
}

/// One row of the fused list. Ranks are 1-based; None = not a candidate of
/// that branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused<Id> {
    pub id: Id,
    pub score: f64,
    pub vector_rank: Option<usize>,
    pub keyword_rank: Option<usize>,
}

impl<Id> Fused<Id> {
    fn best_rank(&self) -> usize {
        self.vector_rank
            .into_iter()
            .chain(self.keyword_rank)
            .min()
            .unwrap_or(usize::MAX)
    }
}

/// A branch's candidates, best first, each with the branch's own score
/// (higher is better: cosine similarity for vectors, BM25 for keywords).
pub type Ranked<Id> = [(Id, f64)];

/// The fused top `limit` of the two lists, the ids in `first` ahead of the
/// others. An id listed twice in one branch counts at its first (best)
/// position.
pub fn fuse<Id: Ord + Copy>(
    vector: &Ranked<Id>,
    keyword: &Ranked<Id>,
    fusion: Fusion,
    weights: Weights,
    limit: usize,
    first: &[Id],
) -> Vec<Fused<Id>> {
    let mut rows: BTreeMap<Id, Fused<Id>> = BTreeMap::new();
    for (is_vector, list, weight, floor) in [
        (true, vector, weights.vector, VECTOR_SCORE_FLOOR),
        (false, keyword, weights.keyword, KEYWORD_SCORE_FLOOR),
    ] {
        let normalise = match fusion {
            Fusion::TheoreticalConvex => min_max(list, Some(floor)),
            _ => min_max(list, None),
        };
        for (index, &(id, raw)) in list.iter().enumerate() {
            let row = rows.entry(id).or_insert(Fused {
                id,
                score: 0.0,
                vector_rank: None,
                keyword_rank: None,
            });
            let rank_slot = if is_vector {
                &mut row.vector_rank
            } else {
                &mut row.keyword_rank
            };
            if rank_slot.is_some() {
                continue;
            }
            let rank = index + 1;
            *rank_slot = Some(rank);
            row.score += match fusion {
                Fusion::ReciprocalRank { k } => weight / (k + rank as f64),
                Fusion::Convex | Fusion::TheoreticalConvex => weight * normalise(raw),
            };
        }
    }
    // Divided by the weights of the branches that have candidates, so a
    // single-branch search still scores its best row 1.
    let total_weight = [(vector, weights.vector), (keyword, weights.keyword)]
        .iter()
        .filter(|(list, _)| !list.is_empty())
        .map(|(_, weight)| weight)
        .sum::<f64>();
    let mut fused: Vec<Fused<Id>> = rows.into_values().collect();
    if !matches!(fusion, Fusion::ReciprocalRank { .. }) && total_weight > 0.0 {
        for row in &mut fused {
            row.score /= total_weight;
        }
    }
    let first: std::collections::BTreeSet<Id> = first.iter().copied().collect();
    fused.sort_by(|a, b| {
        first
            .contains(&b.id)
            .cmp(&first.contains(&a.id))
            .then(b.score.total_cmp(&a.score))
            .then(a.best_rank().cmp(&b.best_rank()))
            .then(a.id.cmp(&b.id))
    });
    fused.truncate(limit);
    fused
}

/// Maps a branch's scores onto [0, 1], from `floor` (the lowest score the
/// branch can give) or else its lowest candidate's, to its best candidate's;
/// a branch whose candidates all score the same (or a single candidate)
/// maps to 1 when measured from its lowest candidate: they are its best.
fn min_max<Id>(list: &Ranked<Id>, floor: Option<f64>) -> impl Fn(f64) -> f64 {
    let (lowest, high) = list
        .iter()
        .map(|&(_, s)| s)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s), hi.max(s))
        });
    let low = floor.map_or(lowest, |floor| floor.min(lowest));
    move |s| {
        if high > low {
            (s - low) / (high - low)
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RRF: Fusion = Fusion::ReciprocalRank { k: 60.0 };
    const EVEN: Weights = Weights {
        vector: 1.0,
        keyword: 1.0,
    };

    fn ids<Id: Copy>(rows: &[Fused<Id>]) -> Vec<Id> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_over_both_branches() {
        let vector = [(1, 0.9), (2, 0.8), (3, 0.7)];
        let keyword = [(3, 5.0), (4, 4.0)];
        let fused = fuse(&vector, &keyword, RRF, EVEN, 10, &[]);
        // 3 is in both lists: 1/63 + 1/61 beats 1's 1/61 alone; 2 and 4 tie
        // at 1/62 (both rank 2 in their branch), so the smaller id first.
        assert_eq!(ids(&fused), vec![3, 1, 2, 4]);
        let three = &fused[0];
        assert!((three.score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!((three.vector_rank, three.keyword_rank), (Some(3), Some(1)));
        assert_eq!(
            (fused[3].vector_rank, fused[3].keyword_rank),
            (None, Some(2))
        );
    }

    #[test]
    fn rrf_ignores_the_scale_of_raw_scores() {
        let vector = [(1, 0.99), (2, 0.98)];
        let keyword = [(2, 1e-6), (1, 1e-7)];
        let huge_keyword = [(2, 1e6), (1, 1e5)];
        let a = fuse(&vector, &keyword, RRF, EVEN, 10, &[]);
        let b = fuse(&vector, &huge_keyword, RRF, EVEN, 10, &[]);
        assert_eq!(a, b);
    }

    #[test]
    fn weights_shift_the_order() {
        let vector = [(1, 0.9), (2, 0.8)];
        let keyword = [(2, 3.0), (1, 1.0)];
        let favour_vector = Weights {
            vector: 2.0,
            keyword: 1.0,
        };
        let favour_keyword = Weights {
            vector: 1.0,
            keyword: 2.0,
        };
        assert_eq!(
            ids(&fuse(&vector, &keyword, RRF, favour_vector, 10, &[])),
            vec![1, 2]
        );
        assert_eq!(
            ids(&fuse(&vector, &keyword, RRF, favour_keyword, 10, &[])),
            vec![2, 1]
        );
        let keyword_off = Weights {
            vector: 1.0,
            keyword: 0.0,
        };
        assert_eq!(
            ids(&fuse(
                &vector,
                &keyword,
                Fusion::Convex,
                keyword_off,
                10,
                &[]
            )),
            vec![1, 2]
        );
    }

    #[test]
    fn ties_break_by_best_rank_then_id() {
        // 7 and 5 each appear once at rank 1 of a branch: equal RRF scores,
        // equal best rank, so the smaller id first.
        let fused = fuse(&[(7, 0.5)], &[(5, 2.0)], RRF, EVEN, 10, &[]);
        assert_eq!(ids(&fused), vec![5, 7]);
        // The same pair the other way round gives the same order.
        let fused = fuse(&[(5, 0.5)], &[(7, 2.0)], RRF, EVEN, 10, &[]);
        assert_eq!(ids(&fused), vec![5, 7]);
        // Equal convex scores: the row ranked higher in its branch first.
        let vector = [(9, 0.9), (8, 0.1)];
        let keyword = [(1, 3.0), (8, 3.0)];
        let fused = fuse(&vector, &keyword, Fusion::Convex, EVEN, 10, &[]);
        // 8: vector 0 + keyword 1 (both keyword scores equal) = 0.5 with best
        // rank 2; 9 and 1 score 0.5 with best rank 1.
        assert_eq!(ids(&fused), vec![1, 9, 8]);
    }

    #[test]
    fn convex_normalises_each_branch_to_the_unit_interval() {
        let vector = [(1, 0.90), (2, 0.80), (3, 0.70)];
        let keyword = [(3, 0.5), (2, 0.1)];
        let fused = fuse(&vector, &keyword, Fusion::Convex, EVEN, 10, &[]);
        let score = |id| fused.iter().find(|r| r.id == id).unwrap().score;
        // 1: vector 1.0, keyword none -> 0.5; 2: 0.5 + 0 -> 0.25; 3: 0 + 1 -> 0.5.
        assert!((score(1) - 0.5).abs() < 1e-12);
        assert!((score(2) - 0.25).abs() < 1e-12);
        assert!((score(3) - 0.5).abs() < 1e-12);
        // 1 and 3 tie at 0.5 with best rank 1 each: id order.
        assert_eq!(ids(&fused), vec![1, 3, 2]);
    }

    #[test]
    fn a_single_candidate_or_equal_scores_normalise_to_one() {
        let fused = fuse(&[(4, 0.3)], &[], Fusion::Convex, EVEN, 10, &[]);
        assert_eq!(fused.len(), 1);
        assert!((fused[0].score - 1.0).abs() < 1e-12);
        let fused = fuse(&[], &[(4, 0.3), (5, 0.3)], Fusion::Convex, EVEN, 10, &[]);
        assert!(fused.iter().all(|r| (r.score - 1.0).abs() < 1e-12));
    }

    #[test]
    fn one_branch_alone_keeps_its_order_and_limit_cuts() {
        let keyword = [(30, 3.0), (10, 2.0), (20, 1.0)];
        let fused = fuse(&[], &keyword, RRF, EVEN, 2, &[]);
        assert_eq!(ids(&fused), vec![30, 10]);
        assert!(fused.iter().all(|r| r.vector_rank.is_none()));
        assert!(fuse::<i32>(&[], &[], RRF, EVEN, 10, &[]).is_empty());
    }

    #[test]
    fn a_repeated_id_counts_once_at_its_best_position() {
        let vector = [(1, 0.9), (1, 0.1), (2, 0.5)];
        let fused = fuse(&vector, &[], RRF, EVEN, 10, &[]);
        assert_eq!(ids(&fused), vec![1, 2]);
        assert_eq!(fused[1].vector_rank, Some(3));
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn theoretical_min_max_measures_from_the_lowest_possible_score() {
        let vector = [(1, 0.9), (2, 0.5)];
        let keyword = [(2, 4.0), (3, 1.0)];
        let fused = fuse(&vector, &keyword, Fusion::TheoreticalConvex, EVEN, 10, &[]);
        let score = |id| fused.iter().find(|r| r.id == id).unwrap().score;
        // Vector from -1: 1 -> 1.9 / 1.9, 2 -> 1.5 / 1.9; keyword from 0:
        // 2 -> 4 / 4, 3 -> 1 / 4 (observed min-max would give 3 nothing).
        assert!((score(1) - 0.5).abs() < 1e-12);
        assert!((score(2) - (1.5 / 1.9 + 1.0) / 2.0).abs() < 1e-12);
        assert!((score(3) - 0.125).abs() < 1e-12);
        let observed = fuse(&vector, &keyword, Fusion::Convex, EVEN, 10, &[]);
        assert_eq!(observed.iter().find(|r| r.id == 3).unwrap().score, 0.0);
        // A lone candidate still scores its branch's best.
        let alone = fuse(&[], &[(4, 0.3)], Fusion::TheoreticalConvex, EVEN, 10, &[]);
        assert!((alone[0].score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn exact_matches_come_first_in_fused_order_then_the_rest() {
        let vector = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)];
        let keyword = [(4, 1.0), (2, 0.5)];
        let plain = fuse(&vector, &keyword, RRF, EVEN, 10, &[]);
        assert_eq!(ids(&plain), vec![2, 4, 1, 3]);
        let exact_first = fuse(&vector, &keyword, RRF, EVEN, 10, &[4, 3]);
        assert_eq!(ids(&exact_first), vec![4, 3, 2, 1]);
        // The limit applies after: the exact rows are never cut for others.
        let cut = fuse(&vector, &keyword, Fusion::Convex, EVEN, 1, &[3]);
        assert_eq!(ids(&cut), vec![3]);
        // An exact id no branch returned adds nothing.
        assert_eq!(
            ids(&fuse(&vector, &keyword, RRF, EVEN, 10, &[99])),
            ids(&plain)
        );
    }
}
