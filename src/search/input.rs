//! Checks of a search request's arguments, without Postgres: the query
//! embedding (dimension, finite components, not all zeros) and the counts
//! (rows wanted, candidates per branch). A bad argument is an error, never a
//! silent "no rows": a zero vector has no cosine distance to anything, and a
//! 3-dimensional vector passed where 1024 are expected would otherwise only
//! fail deep inside pgvector with a message about "different dimensions".

/// The dimension of every embedding column (Voyage multimodal-3).
pub const EMBEDDING_DIMENSIONS: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    WrongDimension {
        got: usize,
    },
    NonFinite {
        index: usize,
        value: f32,
    },
    ZeroVector,
    OutOfRange {
        name: String,
        got: Option<i64>,
        min: i64,
        max: i64,
    },
    NotPositive {
        name: String,
        got: f64,
    },
    UnknownChoice {
        name: String,
        got: String,
        allowed: &'static [&'static str],
    },
    /// NULL where a value is needed.
    Missing {
        name: String,
    },
    /// More than a setting allows: `what` has `got` `unit`s.
    TooLarge {
        what: &'static str,
        unit: &'static str,
        got: usize,
        limit: usize,
        setting: &'static str,
    },
    /// chunk_text's chunks would take more characters than allowed.
    ChunksTooLarge {
        limit: usize,
    },
    /// An array holds NULL at `index` (0-based).
    NullElement {
        name: &'static str,
        index: usize,
    },
    /// Two arrays that go in pairs have different lengths.
    Unpaired {
        first: &'static str,
        second: &'static str,
        first_len: usize,
        second_len: usize,
    },
}

/// The elements of an array argument, or NullElement at the first NULL.
pub fn without_nulls<T>(name: &'static str, items: Vec<Option<T>>) -> Result<Vec<T>, InputError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| item.ok_or(InputError::NullElement { name, index }))
        .collect()
}

/// Ok if two arrays that go in pairs are as long as each other.
pub fn check_pairs(
    first: &'static str,
    first_len: usize,
    second: &'static str,
    second_len: usize,
) -> Result<(), InputError> {
    if first_len == second_len {
        Ok(())
    } else {
        Err(InputError::Unpaired {
            first,
            second,
            first_len,
            second_len,
        })
    }
}

/// `got` if it is at most `limit`, else TooLarge.
pub fn check_size(
    what: &'static str,
    unit: &'static str,
    got: usize,
    limit: usize,
    setting: &'static str,
) -> Result<usize, InputError> {
    if got <= limit {
        Ok(got)
    } else {
        Err(InputError::TooLarge {
            what,
            unit,
            got,
            limit,
            setting,
        })
    }
}

/// Fails unless `embedding` can be compared by cosine distance with the
/// stored ones.
pub fn check_embedding(embedding: &[f32]) -> Result<(), InputError> {
    if embedding.len() != EMBEDDING_DIMENSIONS {
        return Err(InputError::WrongDimension {
            got: embedding.len(),
        });
    }
    if let Some((index, &value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(InputError::NonFinite { index, value });
    }
    if embedding.iter().all(|&v| v == 0.0) {
        return Err(InputError::ZeroVector);
    }
    Ok(())
}

/// `value` if it lies in `min..=max` (a NULL is out of range).
pub fn check_range(name: &str, value: Option<i64>, min: i64, max: i64) -> Result<i64, InputError> {
    match value {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        got => Err(InputError::OutOfRange {
            name: name.to_owned(),
            got,
            min,
            max,
        }),
    }
}

/// A weight: finite and not negative (zero switches a branch off).
pub fn check_weight(name: &str, value: Option<f64>) -> Result<f64, InputError> {
    match value {
        Some(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Some(value) => Err(InputError::NotPositive {
            name: name.to_owned(),
            got: value,
        }),
        None => Err(InputError::Missing {
            name: name.to_owned(),
        }),
    }
}

/// One of `allowed`, by name (a NULL is missing, not an unknown choice).
pub fn check_choice<'a>(
    name: &str,
    value: Option<&'a str>,
    allowed: &'static [&'static str],
) -> Result<&'a str, InputError> {
    match value {
        Some(value) if allowed.contains(&value) => Ok(value),
        Some(value) => Err(InputError::UnknownChoice {
            name: name.to_owned(),
            got: value.to_owned(),
            allowed,
        }),
        None => Err(InputError::Missing {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(index: usize) -> Vec<f32> {
        let mut v = vec![0.0; EMBEDDING_DIMENSIONS];
        v[index] = 1.0;
        v
    }

    #[test]
    fn a_proper_embedding_passes() {
        assert_eq!(check_embedding(&unit(7)), Ok(()));
    }

    #[test]
    fn wrong_dimension_names_what_it_got() {
        assert_eq!(
            check_embedding(&[1.0, 2.0, 3.0]),
            Err(InputError::WrongDimension { got: 3 })
        );
        assert_eq!(
            check_embedding(&[]),
            Err(InputError::WrongDimension { got: 0 })
        );
    }

    #[test]
    fn nan_and_infinity_are_refused_with_their_position() {
        let mut v = unit(0);
        v[5] = f32::INFINITY;
        assert_eq!(
            check_embedding(&v),
            Err(InputError::NonFinite {
                index: 5,
                value: f32::INFINITY
            })
        );
        let mut v = unit(0);
        v[9] = f32::NAN;
        assert!(matches!(
            check_embedding(&v),
            Err(InputError::NonFinite { index: 9, .. })
        ));
    }

    #[test]
    fn the_zero_vector_is_refused() {
        assert_eq!(
            check_embedding(&vec![0.0; EMBEDDING_DIMENSIONS]),
            Err(InputError::ZeroVector)
        );
        assert_eq!(
            check_embedding(&vec![-0.0; EMBEDDING_DIMENSIONS]),
            Err(InputError::ZeroVector)
        );
    }

    #[test]
    fn ranges_include_both_ends_and_refuse_null() {
        assert_eq!(check_range("match_count", Some(1), 1, 1000), Ok(1));
        assert_eq!(check_range("match_count", Some(1000), 1, 1000), Ok(1000));
        for bad in [Some(0), Some(-1), Some(1001), None] {
            assert!(check_range("match_count", bad, 1, 1000).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn weights_must_be_finite_and_not_negative() {
        assert_eq!(check_weight("w", Some(0.0)), Ok(0.0));
        assert_eq!(check_weight("w", Some(2.5)), Ok(2.5));
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(
                    check_weight("w", Some(bad)),
                    Err(InputError::NotPositive { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            check_weight("w", None),
            Err(InputError::Missing { .. })
        ));
    }

    #[test]
    fn arrays_without_nulls() {
        assert_eq!(without_nulls("a", vec![Some(1), Some(2)]), Ok(vec![1, 2]));
        assert_eq!(
            without_nulls("a", vec![Some(1), None]),
            Err(InputError::NullElement {
                name: "a",
                index: 1
            })
        );
    }

    #[test]
    fn sizes_up_to_the_limit() {
        assert_eq!(
            check_size("the text", "characters", 10, 10, "platform.x"),
            Ok(10)
        );
        assert_eq!(
            check_size("the text", "characters", 11, 10, "platform.x"),
            Err(InputError::TooLarge {
                what: "the text",
                unit: "characters",
                got: 11,
                limit: 10,
                setting: "platform.x"
            })
        );
    }

    #[test]
    fn choices_by_name_and_null_is_missing() {
        const MODES: &[&str] = &["rrf", "convex"];
        assert_eq!(check_choice("fusion", Some("rrf"), MODES), Ok("rrf"));
        assert!(matches!(
            check_choice("fusion", Some("RRF"), MODES),
            Err(InputError::UnknownChoice { .. })
        ));
        assert!(matches!(
            check_choice("fusion", None, MODES),
            Err(InputError::Missing { .. })
        ));
    }
}
