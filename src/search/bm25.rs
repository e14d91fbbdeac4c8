//! BM25 over PostgreSQL's stored `tsvector`s, in plain Rust.
//!
//! A row's term frequencies and length come from its `tsvector` (a lexeme's
//! positions are its occurrences); how many of the tenant's rows hold each
//! word and their average length come from the tenant's own counts
//! (`knowledge_lexeme_counts`, `knowledge_keyword_totals`), so no other
//! tenant's text changes a tenant's ranking.
//!
//! The formula is Lucene's (Robertson's with the `+ 1` inside the logarithm),
//! whose inverse document frequency is positive even for a word in every row.

/// BM25's two constants: `k1` saturates a word's repetitions, `b` is how much
/// a long row is discounted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Parameters {
    pub k1: f64,
    pub b: f64,
}

/// How much a word in `rows_with_word` of `rows` rows says about a row:
/// the rarer, the more. A word counted in no row (or more rows than the
/// total, which stale counts could say) still gets a finite positive weight.
pub fn inverse_document_frequency(rows: f64, rows_with_word: f64) -> f64 {
    let rows = rows.max(0.0);
    let with = rows_with_word.clamp(0.0, rows);
    (1.0 + (rows - with + 0.5) / (with + 0.5)).ln()
}

/// One word's share of a row's score: `weight` (its inverse document
/// frequency) scaled by how often the row holds it, saturating with `k1` and
/// discounted for rows longer than the average by `b`.
pub fn word_score(
    frequency: u32,
    length: u32,
    average_length: f64,
    weight: f64,
    parameters: Parameters,
) -> f64 {
    if frequency == 0 {
        return 0.0;
    }
    let frequency = f64::from(frequency);
    let relative_length = if average_length > 0.0 {
        f64::from(length) / average_length
    } else {
        1.0
    };
    let norm = parameters.k1 * (1.0 - parameters.b + parameters.b * relative_length);
    weight * frequency * (parameters.k1 + 1.0) / (frequency + norm)
}

/// A row's BM25 score for the query words `words` with their `weights`.
pub fn score(
    row: &impl Lexemes,
    words: &[&[u8]],
    weights: &[f64],
    average_length: f64,
    parameters: Parameters,
) -> f64 {
    let length = row.length();
    words
        .iter()
        .zip(weights)
        .map(|(word, &weight)| {
            word_score(
                row.frequency(word),
                length,
                average_length,
                weight,
                parameters,
            )
        })
        .sum()
}

/// What BM25 needs of a row: how often it holds a word, and its length.
pub trait Lexemes {
    fn frequency(&self, lexeme: &[u8]) -> u32;
    fn length(&self) -> u32;
}

/// Why bytes are not a tsvector.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// A `tsvector` as PostgreSQL stores it (`TSVectorData` in
/// `tsearch/ts_type.h`), read in place, after its 4-byte varlena header:
/// an `int32` entry count, then one 32-bit `WordEntry` per lexeme (sorted
/// bytewise, as `tsCompareString` compares), then the lexemes' bytes, each followed (2-byte
/// aligned) by its position count and positions when it has any.
pub struct StoredTsVector<'a> {
    entries: &'a [u8],
    strings: &'a [u8],
}

/// A `WordEntry`: the C bitfield `haspos:1, len:11, pos:20` of a
/// little-endian build, lowest bits first.
#[derive(Clone, Copy)]
struct WordEntry(u32);

impl WordEntry {
    fn has_positions(self) -> bool {
        self.0 & 1 == 1
    }
    fn len(self) -> usize {
        ((self.0 >> 1) & 0x7ff) as usize
    }
    fn offset(self) -> usize {
        (self.0 >> 12) as usize
    }
}

const WORD_ENTRY_SIZE: usize = 4;

impl<'a> StoredTsVector<'a> {
    /// Reads `body`, the bytes after the varlena header; checks every entry
    /// lies inside it, so a lookup never reads past the value.
    pub fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        let count = body
            .get(..4)
            .map(|b| i32::from_ne_bytes(b.try_into().expect("four bytes")))
            .ok_or(Malformed)?;
        let count = usize::try_from(count).map_err(|_| Malformed)?;
        let entries_end = count
            .checked_mul(WORD_ENTRY_SIZE)
            .and_then(|n| n.checked_add(4))
            .ok_or(Malformed)?;
        let entries = body.get(4..entries_end).ok_or(Malformed)?;
        let vector = StoredTsVector {
            entries,
            strings: &body[entries_end..],
        };
        for index in 0..count {
            let entry = vector.entry(index);
            vector
                .strings
                .get(entry.offset()..entry.offset() + entry.len())
                .ok_or(Malformed)?;
            vector.positions_of(entry).ok_or(Malformed)?;
        }
        Ok(vector)
    }

    fn count(&self) -> usize {
        self.entries.len() / WORD_ENTRY_SIZE
    }

    fn entry(&self, index: usize) -> WordEntry {
        let at = index * WORD_ENTRY_SIZE;
        WordEntry(u32::from_ne_bytes(
            self.entries[at..at + WORD_ENTRY_SIZE]
                .try_into()
                .expect("four bytes"),
        ))
    }

    fn lexeme(&self, entry: WordEntry) -> &'a [u8] {
        &self.strings[entry.offset()..entry.offset() + entry.len()]
    }

    /// How many positions `entry` has: 0 for a lexeme stored without any
    /// (a stripped vector, or one made by array_to_tsvector).
    fn positions_of(&self, entry: WordEntry) -> Option<u32> {
        if !entry.has_positions() {
            return Some(0);
        }
        let end = entry.offset() + entry.len();
        let at = end + end % 2;
        let count = self.strings.get(at..at + 2)?;
        let count = u16::from_ne_bytes(count.try_into().expect("two bytes"));
        self.strings.get(at + 2..at + 2 + 2 * usize::from(count))?;
        Some(u32::from(count))
    }

    /// How often a lexeme occurs: its positions, or 1 without positions.
    fn occurrences(&self, entry: WordEntry) -> u32 {
        self.positions_of(entry).unwrap_or(0).max(1)
    }

    /// A binary search in PostgreSQL's order of lexemes: memcmp, then the
    /// shorter of two where one begins the other; a byte slice's own order.
    fn find(&self, lexeme: &[u8]) -> Option<WordEntry> {
        let (mut low, mut high) = (0, self.count());
        while low < high {
            let middle = (low + high) / 2;
            let entry = self.entry(middle);
            let stored = self.lexeme(entry);
            match stored.cmp(lexeme) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(entry),
            }
        }
        None
    }
}

impl Lexemes for StoredTsVector<'_> {
    fn frequency(&self, lexeme: &[u8]) -> u32 {
        self.find(lexeme).map_or(0, |e| self.occurrences(e))
    }

    /// Every lexeme's occurrences: the number of words the text had, less
    /// stop words, and at most 256 of one word (PostgreSQL keeps no more
    /// positions). The tenant's own lexeme counts one in every row alike.
    fn length(&self) -> u32 {
        (0..self.count())
            .map(|i| self.occurrences(self.entry(i)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LUCENE: Parameters = Parameters { k1: 1.2, b: 0.75 };

    /// The bytes of a tsvector body, laid out as PostgreSQL's tsvectorin
    /// does: `words` as (lexeme, positions), any order.
    fn stored(words: &[(&str, &[u16])]) -> Vec<u8> {
        let mut words = words.to_vec();
        words.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut strings = Vec::new();
        let mut entries = Vec::new();
        for (lexeme, positions) in &words {
            let offset = strings.len() as u32;
            strings.extend_from_slice(lexeme.as_bytes());
            let has_positions = !positions.is_empty();
            if has_positions {
                if strings.len() % 2 == 1 {
                    strings.push(0);
                }
                strings.extend_from_slice(&(positions.len() as u16).to_ne_bytes());
                for p in *positions {
                    strings.extend_from_slice(&p.to_ne_bytes());
                }
            }
            let word = u32::from(has_positions) | ((lexeme.len() as u32) << 1) | (offset << 12);
            entries.extend_from_slice(&word.to_ne_bytes());
        }
        let mut body = (words.len() as i32).to_ne_bytes().to_vec();
        body.extend(entries);
        body.extend(strings);
        body
    }

    #[test]
    fn frequencies_and_length_come_from_positions() {
        let body = stored(&[
            ("error", &[1, 7, 9]),
            ("disk", &[2]),
            ("tenant:ab", &[]),
            ("e", &[3]),
        ]);
        let vector = StoredTsVector::parse(&body).unwrap();
        assert_eq!(vector.frequency(b"error"), 3);
        assert_eq!(vector.frequency(b"disk"), 1);
        assert_eq!(vector.frequency(b"tenant:ab"), 1);
        assert_eq!(vector.frequency(b"e"), 1);
        assert_eq!(vector.frequency(b"errors"), 0);
        assert_eq!(vector.frequency(b"dis"), 0);
        assert_eq!(vector.length(), 3 + 1 + 1 + 1);
    }

    #[test]
    fn every_lexeme_of_a_long_vector_is_found() {
        let words: Vec<String> = (0..300).map(|i| format!("w{}", i * 7919 % 1000)).collect();
        let pairs: Vec<(&str, &[u16])> = words.iter().map(|w| (w.as_str(), &[1u16][..])).collect();
        let body = stored(&pairs);
        let vector = StoredTsVector::parse(&body).unwrap();
        for word in &words {
            assert_eq!(vector.frequency(word.as_bytes()), 1, "{word}");
        }
        assert_eq!(vector.frequency(b"w1001"), 0);
    }

    #[test]
    fn truncated_or_lying_bytes_are_refused() {
        let body = stored(&[("error", &[1, 2]), ("disk", &[3])]);
        for cut in 0..body.len() {
            assert!(StoredTsVector::parse(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut lying = body.clone();
        lying[..4].copy_from_slice(&1000i32.to_ne_bytes());
        assert_eq!(StoredTsVector::parse(&lying).err(), Some(Malformed));
        assert_eq!(
            StoredTsVector::parse(&(-1i32).to_ne_bytes()).err(),
            Some(Malformed)
        );
    }

    #[test]
    fn a_rarer_word_weighs_more_and_no_weight_is_negative() {
        let rare = inverse_document_frequency(1000.0, 1.0);
        let common = inverse_document_frequency(1000.0, 500.0);
        let everywhere = inverse_document_frequency(1000.0, 1000.0);
        assert!(rare > common && common > everywhere && everywhere > 0.0);
        assert_eq!(
            inverse_document_frequency(10.0, 0.0),
            (1.0f64 + 10.5 / 0.5).ln()
        );
        assert_eq!(
            inverse_document_frequency(10.0, 50.0),
            inverse_document_frequency(10.0, 10.0)
        );
        assert!(inverse_document_frequency(0.0, 0.0).is_finite());
    }

    #[test]
    fn repetitions_saturate_and_long_rows_are_discounted() {
        let once = word_score(1, 100, 100.0, 1.0, LUCENE);
        let twice = word_score(2, 100, 100.0, 1.0, LUCENE);
        let hundred = word_score(100, 100, 100.0, 1.0, LUCENE);
        assert!(
            (once - 1.0).abs() < 1e-12,
            "an average row holding it once scores its weight"
        );
        assert!(twice > once && hundred > twice);
        assert!(
            hundred < 1.0 * (LUCENE.k1 + 1.0),
            "bounded by weight * (k1 + 1)"
        );
        let long = word_score(1, 400, 100.0, 1.0, LUCENE);
        assert!(long < once);
        let no_length_norm = Parameters { k1: 1.2, b: 0.0 };
        assert_eq!(
            word_score(1, 400, 100.0, 1.0, no_length_norm),
            word_score(1, 100, 100.0, 1.0, no_length_norm)
        );
        assert_eq!(word_score(0, 100, 100.0, 5.0, LUCENE), 0.0);
        assert!(word_score(1, 100, 0.0, 1.0, LUCENE).is_finite());
    }

    #[test]
    fn a_row_scores_the_sum_of_its_words() {
        let body = stored(&[("quasar", &[1]), ("zebrafish", &[4]), ("disk", &[2, 3])]);
        let row = StoredTsVector::parse(&body).unwrap();
        let words: [&[u8]; 3] = [b"quasar", b"zebrafish", b"missing"];
        let weights = [3.0, 2.0, 9.0];
        let expected = word_score(1, 4, 8.0, 3.0, LUCENE) + word_score(1, 4, 8.0, 2.0, LUCENE);
        assert!((score(&row, &words, &weights, 8.0, LUCENE) - expected).abs() < 1e-12);
    }
}
