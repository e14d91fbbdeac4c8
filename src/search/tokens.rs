//! Token counts as OpenAI's embedding models see them (cl100k_base), without
//! Postgres, in time linear in the text whatever it holds.
//!
//! The byte-pair table is the one tiktoken-rs ships inside its crate, read
//! once per process on first use. The text is first split into pre-tokens by
//! cl100k_base's own pattern; BPE then merges the bytes of each pre-token.
//! The pattern is run with the `regex` crate, whose matching is linear, and
//! its one look-ahead (`\s+(?!\S)`: a run of spaces leaves its last space to
//! the word that follows) is applied afterwards. A pre-token longer than
//! `MAX_PIECE_BYTES` (a run of letters without a space, a line of dashes) is
//! cut into pieces of at most that many bytes before BPE, so BPE's cost per
//! byte is bounded too. Counts equal tiktoken's whenever no pre-token is that
//! long, which is the case for ordinary prose and code.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;
use rustc_hash::FxHashMap;

/// Longest piece handed to BPE, in bytes. BPE of a piece of n bytes costs
/// about n² steps, so this bounds the cost per byte; a piece never has more
/// tokens than bytes, so a chunk of this many tokens can always hold one.
pub const MAX_PIECE_BYTES: usize = 64;

/// cl100k_base's pre-token pattern without its look-ahead alternative
/// (`\s+(?!\S)`, here `\s+`, corrected in `pieces`) and without possessive
/// quantifiers, which change nothing for these alternatives.
const PRE_TOKEN_PATTERN: &str = concat!(
    r"'(?i:[sdmt]|ll|ve|re)",
    r"|[^\r\n\p{L}\p{N}]?\p{L}+",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*",
    r"|\s+$",
    r"|\s*[\r\n]",
    r"|\s+",
    r"|\s",
);

/// The byte-pair ranks of cl100k_base and the pre-token pattern.
pub struct Tokenizer {
    ranks: FxHashMap<Vec<u8>, tiktoken_rs::Rank>,
    pre_tokens: Regex,
}

/// Ranks 0..=LAST_ORDINARY_RANK are cl100k_base's ordinary tokens (the
/// special tokens come after them and never occur in counted text).
const LAST_ORDINARY_RANK: tiktoken_rs::Rank = 100_255;

/// Room for the matcher's lazily built automaton: text drawing on many
/// scripts at once needs more of it than the default, or the matcher keeps
/// rebuilding it (still linear, but many times slower).
const DFA_CACHE_BYTES: usize = 16 << 20;

static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();

/// The tokenizer, built on the first call in this process (a backend).
pub fn cl100k() -> &'static Tokenizer {
    TOKENIZER.get_or_init(Tokenizer::load)
}

impl Tokenizer {
    fn load() -> Tokenizer {
        // tiktoken-rs keeps its table private; its decoder gives each rank's
        // bytes, which is all BPE needs. The rest of its encoder (regexes for
        // many threads, reverse maps) is dropped again.
        let full = tiktoken_rs::cl100k_base().expect("cl100k_base ships inside tiktoken-rs");
        let mut ranks = FxHashMap::default();
        ranks.reserve(LAST_ORDINARY_RANK as usize + 1);
        for rank in 0..=LAST_ORDINARY_RANK {
            if let Ok(bytes) = full.decode_bytes(&[rank]) {
                ranks.insert(bytes, rank);
            }
        }
        ranks.shrink_to_fit();
        Tokenizer {
            ranks,
            pre_tokens: regex::RegexBuilder::new(PRE_TOKEN_PATTERN)
                .dfa_size_limit(DFA_CACHE_BYTES)
                .build()
                .expect("the pre-token pattern compiles"),
        }
    }

    /// Byte ranges of the pieces of `text`, in order and covering it: its
    /// pre-tokens, each cut at character boundaries into parts of at most
    /// MAX_PIECE_BYTES (a character longer than that cannot occur).
    pub fn pieces<'t>(&'t self, text: &'t str) -> impl Iterator<Item = Range<usize>> + 't {
        let mut at = 0;
        let mut pending: Option<Range<usize>> = None;
        std::iter::from_fn(move || {
            if pending.is_none() {
                pending = self.pre_token_at(text, at);
                if let Some(found) = &pending {
                    at = found.end;
                }
            }
            let whole = pending.take()?;
            if whole.len() <= MAX_PIECE_BYTES {
                return Some(whole);
            }
            let mut cut = whole.start + MAX_PIECE_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            pending = Some(cut..whole.end);
            Some(whole.start..cut)
        })
    }

    /// The pre-token that starts at byte `at` (every character starts one).
    fn pre_token_at(&self, text: &str, at: usize) -> Option<Range<usize>> {
        let found = self.pre_tokens.find_at(text, at)?;
        debug_assert_eq!(found.start(), at, "every character matches the pattern");
        let matched = found.as_str();
        // `\s+(?!\S)`: a run of spaces without a line break, followed by a
        // word, leaves its last space to that word (" world" is one token).
        // A run ending the text or holding a line break matched an earlier
        // alternative, and a single space is `\s`, which keeps it.
        let run_of_spaces_before_a_word = found.end() < text.len()
            && matched
                .chars()
                .all(|c| c.is_whitespace() && c != '\r' && c != '\n')
            && matched.chars().nth(1).is_some();
        if run_of_spaces_before_a_word {
            let last = matched.char_indices().last().map_or(0, |(i, _)| i);
            return Some(found.start()..found.start() + last);
        }
        Some(found.range())
    }

    /// The tokens of one piece (at most MAX_PIECE_BYTES bytes, so never more
    /// than that many tokens).
    pub fn piece_tokens(&self, piece: &[u8]) -> usize {
        if piece.is_empty() {
            0
        } else if self.ranks.contains_key(piece) {
            // Every single byte is a token, so this covers one-byte pieces.
            1
        } else {
            tiktoken_rs::byte_pair_split(piece, &self.ranks).len()
        }
    }

    /// The tokens of `text` on its own.
    pub fn count(&self, text: &str) -> usize {
        self.pieces(text)
            .map(|piece| self.piece_tokens(&text.as_bytes()[piece]))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> usize {
        static FULL: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
        FULL.get_or_init(|| tiktoken_rs::cl100k_base().unwrap())
            .encode_ordinary(text)
            .len()
    }

    #[test]
    fn counts_equal_tiktoken_on_ordinary_text() {
        let samples = [
            "Hello world",
            "Hello  world,   how are you?\n\nI'm fine; it's 2024-05-01 and we've 12345 items.",
            "  leading and trailing spaces   ",
            "tabs\tand\r\nwindows line ends\r\n\r\n",
            "Grüße aus Köln. Ça va très bien, merci.",
            "日本語の文章です。次の文です。",
            "emoji 😀👍🏽 and flags 🇫🇷 in a row",
            "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n",
            "# Heading\n\n- item one\n- item two\n\n```sql\nSELECT 1;\n```\n",
            "नमस्ते दुनिया, यह एक वाक्य है।",
            "THEY'LL SEE IT'S DONE. They'Re here.",
            "trailing newline runs\n\n\n   \n",
            "a\u{00a0}\u{00a0}b and\u{2003}\u{2003}\u{2003}c",
            "",
        ];
        let tokenizer = cl100k();
        for text in samples {
            assert_eq!(tokenizer.count(text), reference(text), "{text:?}");
        }
    }

    #[test]
    fn pieces_cover_the_text_and_respect_the_piece_limit() {
        let tokenizer = cl100k();
        let text = format!(
            "{} {} {}",
            "x".repeat(1000),
            "é".repeat(333),
            "-".repeat(200)
        );
        let mut expected_start = 0;
        for piece in tokenizer.pieces(&text) {
            assert_eq!(piece.start, expected_start);
            assert!(piece.len() <= MAX_PIECE_BYTES && !piece.is_empty());
            assert!(text.is_char_boundary(piece.start) && text.is_char_boundary(piece.end));
            expected_start = piece.end;
        }
        assert_eq!(expected_start, text.len());
    }

    /// Pieces are at most MAX_PIECE_BYTES whatever the text, so BPE's steps
    /// per byte are bounded: the largest piece over a long run without a
    /// boundary is no larger than over a short one.
    #[test]
    fn work_per_byte_is_bounded_on_text_without_boundaries() {
        let tokenizer = cl100k();
        for text in [
            "x".repeat(100_000),
            "ab1".repeat(30_000),
            "🙂".repeat(20_000),
        ] {
            let pieces: Vec<_> = tokenizer.pieces(&text).collect();
            let largest = pieces.iter().map(|p| p.len()).max().unwrap();
            assert!(largest <= MAX_PIECE_BYTES);
            assert!(pieces.len() >= text.len() / MAX_PIECE_BYTES);
        }
    }
}
