//! Splitting a document into chunks for embedding, without Postgres.
//!
//! Sizes are in characters (Unicode scalar values), never bytes, so a chunk
//! never splits a multi-byte character. A chunk never exceeds `size`; within
//! that, it ends at the last paragraph break of its window if there is one in
//! the window's second half, else at the last sentence end, else at the last
//! whitespace, and only as a last resort mid-word. Looking only in the second
//! half keeps chunks from becoming tiny just because a paragraph ended early.
//! Consecutive chunks share about `overlap` characters, starting at a word.

/// How good a place to end a chunk is; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    Word,
    Sentence,
    Paragraph,
}

/// What kind of boundary lies just before `chars[at]` (None: mid-word).
fn boundary_before(chars: &[char], at: usize) -> Option<Boundary> {
    let previous = chars[at - 1];
    let next = chars.get(at).copied();
    if previous == '\n' && at >= 2 && chars[at - 2] == '\n' {
        return Some(Boundary::Paragraph);
    }
    let next_is_space = next.is_none_or(char::is_whitespace);
    // A full stop followed by a space ends a sentence ("3.14" does not); the
    // ideographic full stop is never followed by one.
    let full_stop = matches!(previous, '.' | '!' | '?' | '…') && next_is_space;
    if previous == '\n' || previous == '。' || full_stop {
        return Some(Boundary::Sentence);
    }
    (previous.is_whitespace() || next_is_space).then_some(Boundary::Word)
}

/// Where to end the chunk that starts at `start`, given it must end by `end`.
fn cut_point(chars: &[char], start: usize, end: usize) -> usize {
    let earliest = start + (end - start) / 2 + 1;
    let mut best: Option<(Boundary, usize)> = None;
    for at in (earliest.max(start + 1)..=end).rev() {
        if let Some(kind) = boundary_before(chars, at) {
            if best.is_none_or(|(found, _)| kind > found) {
                best = Some((kind, at));
            }
            if kind == Boundary::Paragraph {
                break;
            }
        }
    }
    best.map_or(end, |(_, at)| at)
}

/// Where the next chunk starts: `overlap` characters before `cut`, moved
/// forward to the start of a word, and always after `start`.
fn next_start(chars: &[char], start: usize, cut: usize, overlap: usize) -> usize {
    let mut next = cut.saturating_sub(overlap).max(start + 1);
    if next < cut && next > 0 && !chars[next - 1].is_whitespace() {
        if let Some(space) = chars[next..cut].iter().position(|c| c.is_whitespace()) {
            next += space + 1;
        }
    }
    next
}

/// The chunks would hold more characters in all than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMuchOutput {
    pub limit: usize,
}

/// Splits `text` into chunks of at most `size` characters that overlap by
/// about `overlap` characters. Needs `size >= 1` and `overlap < size` (the
/// SQL function checks them first). Chunks are trimmed; empty ones dropped.
///
/// The work is bounded by what it returns: each chunk scans at most its own
/// length for a boundary, and a large overlap with a small advance means many
/// long chunks, so the characters taken into chunks (before trimming) may not
/// exceed `max_output`. `checkpoint` runs once per chunk (the SQL function
/// checks for a cancel there).
pub fn chunk_text(
    text: &str,
    size: usize,
    overlap: usize,
    max_output: usize,
    mut checkpoint: impl FnMut(),
) -> Result<Vec<String>, TooMuchOutput> {
    assert!(
        size >= 1 && overlap < size,
        "chunk_text: size >= 1 and overlap < size"
    );
    let chars: Vec<char> = text.chars().collect();
    let mut chunks = Vec::new();
    let mut taken = 0usize;
    let mut start = 0;
    loop {
        checkpoint();
        while start < chars.len() && chars[start].is_whitespace() {
            start += 1;
        }
        if start >= chars.len() {
            break;
        }
        let end = (start + size).min(chars.len());
        let cut = if end == chars.len() {
            end
        } else {
            cut_point(&chars, start, end)
        };
        taken += cut - start;
        if taken > max_output {
            return Err(TooMuchOutput { limit: max_output });
        }
        let chunk: String = chars[start..cut].iter().collect();
        let chunk = chunk.trim();
        if !chunk.is_empty() {
            chunks.push(chunk.to_owned());
        }
        if cut == chars.len() {
            break;
        }
        start = next_start(&chars, start, cut, overlap);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an output limit (the limit has a test of its own).
    fn chunk_text(text: &str, size: usize, overlap: usize) -> Vec<String> {
        super::chunk_text(text, size, overlap, usize::MAX, || {}).expect("no limit")
    }

    fn lengths(chunks: &[String]) -> Vec<usize> {
        chunks.iter().map(|c| c.chars().count()).collect()
    }

    #[test]
    fn short_and_empty_texts() {
        assert_eq!(chunk_text("Hello world.", 100, 10), vec!["Hello world."]);
        assert!(chunk_text("", 100, 10).is_empty());
        assert!(chunk_text(" \n\n\t ", 100, 10).is_empty());
    }

    #[test]
    fn never_exceeds_the_size_and_covers_every_word() {
        let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(40)
            + "Final words here.";
        for (size, overlap) in [(1, 0), (7, 3), (50, 0), (50, 10), (200, 50), (2000, 100)] {
            let chunks = chunk_text(&text, size, overlap);
            assert!(
                lengths(&chunks).iter().all(|&n| n <= size && n > 0),
                "{size}/{overlap}"
            );
            let joined = chunks.join(" ");
            if size >= 12 {
                for word in text.split_whitespace() {
                    assert!(joined.contains(word), "{size}/{overlap}: {word} missing");
                }
            }
        }
    }

    #[test]
    fn prefers_paragraph_then_sentence_boundaries() {
        let para =
            "First paragraph has a sentence. And another one here.\n\nSecond paragraph starts.";
        // The paragraph break lies in the second half of a 70-character window.
        let chunks = chunk_text(para, 70, 0);
        assert_eq!(
            chunks[0],
            "First paragraph has a sentence. And another one here."
        );
        assert_eq!(chunks[1], "Second paragraph starts.");
        let sentences = "One short sentence here. Two short sentence here. Three short.";
        let chunks = chunk_text(sentences, 55, 0);
        assert_eq!(
            chunks[0],
            "One short sentence here. Two short sentence here."
        );
        // A decimal point is not a sentence end: the cut falls at a space.
        let chunks = chunk_text("Version 3.14 is out now", 14, 0);
        assert!(
            chunks[0] == "Version 3.14" || chunks[0] == "Version",
            "{chunks:?}"
        );
    }

    #[test]
    fn overlap_repeats_the_end_of_the_previous_chunk_from_a_word_start() {
        let text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";
        let chunks = chunk_text(text, 30, 12);
        assert!(chunks.len() >= 3);
        for pair in chunks.windows(2) {
            let first_word = pair[1].split_whitespace().next().unwrap();
            assert!(
                pair[0].split_whitespace().any(|w| w == first_word),
                "{pair:?}"
            );
        }
        assert!(chunk_text(text, 30, 0).iter().all(|c| !c.contains("  ")));
    }

    #[test]
    fn multi_byte_characters_are_counted_and_never_split() {
        let text = "é😀ü".repeat(100);
        let chunks = chunk_text(&text, 10, 3);
        assert!(lengths(&chunks).iter().all(|&n| n <= 10));
        assert_eq!(chunks[0].chars().count(), 10);
        let joined: String = chunk_text(&text, 10, 0).concat();
        assert_eq!(joined, text);
        let cjk = "日本語の文章です。次の文です。".repeat(5);
        let chunks = chunk_text(&cjk, 12, 0);
        assert!(chunks[0].ends_with('。'), "{chunks:?}");
    }

    #[test]
    fn a_word_longer_than_the_size_is_cut_hard() {
        let chunks = chunk_text(&"x".repeat(25), 10, 0);
        assert_eq!(lengths(&chunks), vec![10, 10, 5]);
    }

    #[test]
    fn the_characters_taken_into_chunks_are_bounded() {
        // A large overlap on text without boundaries advances one character
        // at a time: quadratic output without the limit.
        let text = "x".repeat(2_000);
        let limited = super::chunk_text(&text, 1_000, 999, 10_000, || {});
        assert_eq!(limited, Err(TooMuchOutput { limit: 10_000 }));
        // The same text with a sane overlap fits, and the checkpoint ran once
        // per chunk (plus the final pass).
        let mut checkpoints = 0;
        let chunks = super::chunk_text(&text, 1_000, 100, 10_000, || checkpoints += 1).unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(checkpoints >= chunks.len());
        // The limit counts what is taken, so a text fits a limit of its own
        // length when nothing overlaps.
        assert!(super::chunk_text(&text, 100, 0, text.len(), || {}).is_ok());
    }
}
