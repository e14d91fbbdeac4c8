//! Splitting a document into chunks for embedding, without Postgres.
//!
//! A chunk's size is counted in characters (Unicode scalar values, never
//! bytes, so a chunk never splits a multi-byte character) or in cl100k_base
//! tokens (`tokens.rs`). A chunk never exceeds `size`; within that, it ends at
//! the best boundary of its window's second half: for plain text a paragraph
//! break, else a sentence end, else whitespace; for Markdown a heading, else a
//! paragraph break, else a line break (a list item), else a sentence end, else
//! whitespace, and never inside a fenced code block that could be a chunk of
//! its own. Only as a last resort does it end mid-word. Looking only in the
//! second half keeps chunks from becoming tiny just because a paragraph ended
//! early. Consecutive chunks share about `overlap` units, starting at a word;
//! in Markdown a chunk that ends before a heading or a code block leaves the
//! next one to start there, without overlap.
//!
//! The text is measured in atoms: characters, or the pieces the tokenizer
//! splits it into (cuts fall between pieces, so a chunk's pieces are the
//! whole text's). Character chunks of plain text are exactly what the first
//! release returned.

use std::cell::Cell;
use std::ops::Range;

use super::markdown::{Line, Structure};
use super::tokens::{Tokenizer, MAX_PIECE_BYTES};

/// What `size` and `overlap` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Characters,
    Tokens,
}

/// How the text is read for boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

/// How to chunk: at most `size` units a chunk, about `overlap` shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub size: usize,
    pub overlap: usize,
    pub unit: Unit,
    pub format: Format,
}

/// The smallest token size: one piece always fits in a chunk, since a piece
/// has at most MAX_PIECE_BYTES bytes and never more tokens than bytes.
pub const MIN_TOKEN_SIZE: usize = MAX_PIECE_BYTES;

/// How good a place to end a chunk is; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    Word,
    Sentence,
    Line,
    Paragraph,
    Heading,
}

/// What kind of plain-text boundary lies just before `chars[at]` (None:
/// mid-word).
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

/// The atoms a text is measured in, and their sizes.
enum Measure<'t> {
    /// Atom i is character i.
    Characters,
    /// Atom i is a tokenizer piece starting at character `starts[i]` and
    /// preceded by `tokens_before[i]` tokens; both have one more entry, for
    /// the text's end.
    Tokens {
        tokenizer: &'t Tokenizer,
        starts: Vec<u32>,
        tokens_before: Vec<u32>,
    },
}

/// The chunks would hold more characters in all than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMuchOutput {
    pub limit: usize,
}

/// How often chunking checks for a cancel while it tokenizes, in pieces.
const PIECES_PER_CHECKPOINT: usize = 4096;

struct Chunker<'a> {
    chars: &'a [char],
    spec: Spec,
    measure: Measure<'a>,
    /// Markdown's structure, and whether each of its code blocks fits in a
    /// chunk; None for plain text.
    markdown: Option<(Structure, Vec<bool>)>,
    /// Positions inspected and characters tokenized, to show the work is
    /// linear in the text.
    work: Cell<usize>,
}

impl<'a> Chunker<'a> {
    fn atoms(&self) -> usize {
        match &self.measure {
            Measure::Characters => self.chars.len(),
            Measure::Tokens { starts, .. } => starts.len() - 1,
        }
    }

    /// The character position where `atom` starts.
    fn char_at(&self, atom: usize) -> usize {
        match &self.measure {
            Measure::Characters => atom,
            Measure::Tokens { starts, .. } => starts[atom] as usize,
        }
    }

    fn is_blank(&self, atom: usize) -> bool {
        self.chars[self.char_at(atom)..self.char_at(atom + 1)]
            .iter()
            .all(|c| c.is_whitespace())
    }

    /// The text of atoms `start..end`, trimmed.
    fn text_of(&self, start: usize, end: usize) -> String {
        let chunk: String = self.chars[self.char_at(start)..self.char_at(end)]
            .iter()
            .collect();
        chunk.trim().to_owned()
    }

    /// The size of atoms `start..end` when they begin a chunk. A chunk is
    /// trimmed, so its first piece counts without its leading whitespace.
    fn size_of(&self, start: usize, end: usize) -> usize {
        match &self.measure {
            Measure::Characters => end - start,
            Measure::Tokens {
                tokenizer,
                tokens_before,
                ..
            } => {
                let first = self.text_of(start, start + 1);
                self.work.set(self.work.get() + first.len());
                let rest = tokens_before[end] - tokens_before[start + 1];
                tokenizer.count(&first) + rest as usize
            }
        }
    }

    /// The furthest end (at least one atom) of a chunk starting at `start`
    /// whose size is at most `size`.
    fn window_end(&self, start: usize, size: usize) -> usize {
        match &self.measure {
            Measure::Characters => (start + size).min(self.chars.len()),
            Measure::Tokens { tokens_before, .. } => {
                let first = self.size_of(start, start + 1);
                let budget = size.saturating_sub(first) as u32;
                let base = tokens_before[start + 1];
                let fitting = tokens_before[start + 1..].partition_point(|&b| b - base <= budget);
                start + fitting
            }
        }
    }

    /// The earliest atom from which `overlap` units reach `cut`.
    fn overlap_from(&self, cut: usize) -> usize {
        let overlap = self.spec.overlap;
        match &self.measure {
            Measure::Characters => cut.saturating_sub(overlap),
            Measure::Tokens { tokens_before, .. } => {
                let at_cut = tokens_before[cut];
                tokens_before[..=cut].partition_point(|&b| (at_cut - b) as usize > overlap)
            }
        }
    }

    /// The code block fitting in one chunk that `at` lies strictly inside.
    fn protected_block(&self, at: usize) -> Option<usize> {
        let (structure, fits) = self.markdown.as_ref()?;
        structure
            .block_around(self.char_at(at))
            .filter(|&block| fits[block])
    }

    /// Whether a code block fitting in one chunk starts at `atom`.
    fn opens_protected_block(&self, atom: usize) -> bool {
        let Some((structure, _)) = &self.markdown else {
            return false;
        };
        let at = self.char_at(atom);
        atom < self.atoms()
            && structure
                .line_at(at)
                .is_some_and(|line| line.line == Line::FenceOpening)
            && self.protected_block(atom + 1).is_some()
    }

    /// What kind of boundary lies before atom `atom` (None: no cut there).
    fn boundary_at(&self, atom: usize) -> Option<Boundary> {
        let at = self.char_at(atom);
        let Some((structure, fits)) = &self.markdown else {
            return boundary_before(self.chars, at);
        };
        if let Some(block) = structure.block_around(at) {
            if fits[block] {
                return None;
            }
            // A block too long for one chunk is cut at its lines, else at
            // whitespace.
            return if structure.line_at(at).is_some() {
                Some(Boundary::Line)
            } else {
                boundary_before(self.chars, at).map(|_| Boundary::Word)
            };
        }
        match structure.line_at(at) {
            Some(start) if start.line == Line::Heading => Some(Boundary::Heading),
            Some(start) if start.after_break || start.line == Line::FenceOpening => {
                Some(Boundary::Paragraph)
            }
            Some(_) => Some(Boundary::Line),
            None => boundary_before(self.chars, at),
        }
    }

    /// The best boundary before an atom in `lowest..=highest`, the latest of
    /// equals; the scan stops at the best kind there is.
    fn best_boundary(&self, lowest: usize, highest: usize) -> Option<(Boundary, usize)> {
        let top = match self.markdown {
            Some(_) => Boundary::Heading,
            None => Boundary::Paragraph,
        };
        let mut best: Option<(Boundary, usize)> = None;
        for at in (lowest..=highest).rev() {
            self.work.set(self.work.get() + 1);
            if let Some(kind) = self.boundary_at(at) {
                if best.is_none_or(|(found, _)| kind > found) {
                    best = Some((kind, at));
                }
                if kind == top {
                    break;
                }
            }
        }
        best
    }

    /// Where to end the chunk that starts at `start`, given it must end by
    /// `end` (`end` > `start`) and not before `lowest`; and the boundary
    /// there (None: a hard cut).
    fn cut_point(&self, start: usize, end: usize, lowest: usize) -> (usize, Option<Boundary>) {
        let earliest = (start + (end - start) / 2 + 1).max(lowest);
        if let Some((kind, at)) = self.best_boundary(earliest, end) {
            return (at, Some(kind));
        }
        // Nothing in the second half. A hard cut at the end is better than a
        // short chunk, unless the end lies inside a code block that could
        // move whole into the next chunk.
        if self.protected_block(end).is_none() || earliest == lowest {
            return (end, None);
        }
        self.best_boundary(lowest, earliest - 1)
            .map_or((end, None), |(kind, at)| (at, Some(kind)))
    }

    /// Where the next chunk starts: `overlap` units before `cut`, moved
    /// forward to the start of a word, and always after `start`.
    fn next_start(&self, start: usize, cut: usize) -> usize {
        let mut next = self.overlap_from(cut).max(start + 1);
        // An atom after whitespace starts a word, and so does one that is
        // whitespace itself (a token piece such as " word") short of `cut`.
        let starts_word = |atom: usize| {
            let at = self.char_at(atom);
            at == 0
                || self.chars[at - 1].is_whitespace()
                || (atom < cut && self.chars[at].is_whitespace())
        };
        if next < cut && next > 0 && !starts_word(next) {
            if let Some(word) = (next + 1..=cut).find(|&atom| starts_word(atom)) {
                next = word;
            }
        }
        next
    }

    /// The chunks, each with the characters it was taken from.
    fn chunks(
        &self,
        max_output: usize,
        checkpoint: &mut impl FnMut(),
    ) -> Result<Vec<(String, Range<usize>)>, TooMuchOutput> {
        let atoms = self.atoms();
        // Plain character chunks keep the first release's behaviour exactly;
        // the other modes never end a chunk at or before the previous end,
        // so each chunk moves on however large the overlap.
        let first_release = self.spec.unit == Unit::Characters && self.markdown.is_none();
        let mut chunks = Vec::new();
        let mut taken = 0usize;
        let mut start = 0;
        let mut previous_cut = 0;
        loop {
            checkpoint();
            while start < atoms && self.is_blank(start) {
                start += 1;
            }
            if start >= atoms {
                break;
            }
            let lowest_for = |end: usize| {
                if first_release || previous_cut < start + 1 || previous_cut + 1 > end {
                    start + 1
                } else {
                    previous_cut + 1
                }
            };
            let mut end = self.window_end(start, self.spec.size);
            let (mut cut, mut kind) = if end == atoms {
                (end, None)
            } else {
                self.cut_point(start, end, lowest_for(end))
            };
            let mut chunk = self.text_of(start, cut);
            if let Measure::Tokens { tokenizer, .. } = &self.measure {
                // The pieces' counts add up to the chunk's own count but for
                // its trimmed ends; counted again, and shortened if over.
                loop {
                    self.work.set(self.work.get() + chunk.len());
                    let count = tokenizer.count(&chunk);
                    if count <= self.spec.size || cut == start + 1 {
                        break;
                    }
                    let budget = self
                        .size_of(start, cut)
                        .saturating_sub(count - self.spec.size);
                    end = self.window_end(start, budget).min(cut - 1).max(start + 1);
                    (cut, kind) = self.cut_point(start, end, lowest_for(end));
                    chunk = self.text_of(start, cut);
                }
            }
            taken += self.char_at(cut) - self.char_at(start);
            if taken > max_output {
                return Err(TooMuchOutput { limit: max_output });
            }
            if !chunk.is_empty() {
                chunks.push((chunk, self.char_at(start)..self.char_at(cut)));
            }
            if cut == atoms {
                break;
            }
            let new_section = kind == Some(Boundary::Heading) || self.opens_protected_block(cut);
            previous_cut = cut;
            start = if new_section {
                cut
            } else {
                self.next_start(start, cut)
            };
        }
        Ok(chunks)
    }
}

/// Splits `text` into chunks of at most `spec.size` units that overlap by
/// about `spec.overlap` units. Needs `size >= 1` (MIN_TOKEN_SIZE for tokens)
/// and `overlap < size` (the SQL function checks them first). Chunks are
/// trimmed; empty ones dropped.
///
/// The work is bounded by what it returns: each chunk scans at most its own
/// window for a boundary, and a large overlap with a small advance means many
/// long chunks, so the characters taken into chunks (before trimming) may not
/// exceed `max_output`. `checkpoint` runs once per chunk, and while the text
/// is tokenized every PIECES_PER_CHECKPOINT pieces (the SQL function checks
/// for a cancel there).
pub fn chunk_text(
    text: &str,
    spec: Spec,
    max_output: usize,
    mut checkpoint: impl FnMut(),
) -> Result<Vec<String>, TooMuchOutput> {
    let (chunks, _) = chunk_with_work(text, spec, max_output, &mut checkpoint)?;
    Ok(chunks.into_iter().map(|(chunk, _)| chunk).collect())
}

/// `chunk_text` with where each chunk was taken from, and the work it did
/// (positions inspected for a boundary plus characters tokenized beyond the
/// text's one pass).
fn chunk_with_work(
    text: &str,
    spec: Spec,
    max_output: usize,
    checkpoint: &mut impl FnMut(),
) -> Result<(Vec<(String, Range<usize>)>, usize), TooMuchOutput> {
    let smallest = match spec.unit {
        Unit::Characters => 1,
        Unit::Tokens => MIN_TOKEN_SIZE,
    };
    assert!(
        spec.size >= smallest && spec.overlap < spec.size,
        "chunk_text: size >= {smallest} and overlap < size"
    );
    let chars: Vec<char> = text.chars().collect();
    let measure = match spec.unit {
        Unit::Characters => Measure::Characters,
        Unit::Tokens => tokenize(text, super::tokens::cl100k(), checkpoint),
    };
    let mut chunker = Chunker {
        chars: &chars,
        spec,
        measure,
        markdown: None,
        work: Cell::new(0),
    };
    if spec.format == Format::Markdown {
        let structure = Structure::of(&chars);
        let fits = structure
            .blocks()
            .iter()
            .map(|block| {
                let first = chunker.atom_starting_at_or_after(block.start);
                let end = chunker.atom_starting_at_or_after(block.end);
                first == end || chunker.size_of(first, end) <= spec.size
            })
            .collect();
        chunker.markdown = Some((structure, fits));
    }
    let chunks = chunker.chunks(max_output, checkpoint)?;
    Ok((chunks, chunker.work.get()))
}

impl Chunker<'_> {
    /// The first atom that starts at or after character `at`.
    fn atom_starting_at_or_after(&self, at: usize) -> usize {
        match &self.measure {
            Measure::Characters => at,
            Measure::Tokens { starts, .. } => starts.partition_point(|&s| (s as usize) < at),
        }
    }
}

/// The text's pieces with their positions and running token counts.
fn tokenize<'t>(
    text: &str,
    tokenizer: &'t Tokenizer,
    checkpoint: &mut impl FnMut(),
) -> Measure<'t> {
    let mut starts = Vec::new();
    let mut tokens_before = Vec::new();
    let (mut at, mut tokens) = (0u32, 0u32);
    for (index, piece) in tokenizer.pieces(text).enumerate() {
        if index % PIECES_PER_CHECKPOINT == PIECES_PER_CHECKPOINT - 1 {
            checkpoint();
        }
        starts.push(at);
        tokens_before.push(tokens);
        let piece = &text[piece];
        at += piece.chars().count() as u32;
        tokens += tokenizer.piece_tokens(piece.as_bytes()) as u32;
    }
    starts.push(at);
    tokens_before.push(tokens);
    Measure::Tokens {
        tokenizer,
        starts,
        tokens_before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first release's chunking, kept as the reference the character
    /// mode for plain text must equal.
    mod first_release {
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
        pub(super) struct TooMuchOutput {
            limit: usize,
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
        pub(super) fn chunk_text(
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
    }

    /// A deterministic mix of words, punctuation, multi-byte characters and
    /// whitespace of every kind chunking looks at.
    fn mixed_text(seed: u64, words: usize) -> String {
        const PARTS: &[&str] = &[
            "alpha",
            "beta",
            "Grüße",
            "日本語",
            "😀",
            "3.14",
            "Köln",
            "x",
            "refund",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "ünïcödé",
            "it's",
        ];
        const SEPARATORS: &[&str] = &[
            " ", " ", " ", "  ", ". ", "\n", "\n\n", "\t", "! ", "。", " \n\n ", "? ", ", ",
        ];
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        };
        let mut text = String::new();
        for _ in 0..words {
            text.push_str(PARTS[next(PARTS.len())]);
            text.push_str(SEPARATORS[next(SEPARATORS.len())]);
        }
        text
    }

    /// Markdown with headings, lists, tables and code blocks of many sizes.
    fn markdown_text(seed: u64, sections: usize) -> String {
        let mut text = String::new();
        for section in 0..sections {
            let prose = mixed_text(seed + section as u64, 8 + section % 13);
            text.push_str(&format!("## Section {section}\n\n{prose}\n\n"));
            text.push_str(
                "- first item of the list\n- second item\n  continued here\n1. numbered\n\n",
            );
            if section % 3 == 0 {
                let lines = 1 + section % 7;
                text.push_str("```sql\n");
                for line in 0..lines {
                    text.push_str(&format!("SELECT {line} FROM t WHERE a = 'b';\n"));
                }
                text.push_str("```\n\n");
            }
            if section % 4 == 1 {
                text.push_str("| a | b |\n|---|---|\n| 1 | 2 |\n\n");
            }
        }
        text
    }

    #[test]
    fn characters_of_plain_text_are_the_first_releases_chunks() {
        let sizes = [
            (1, 0),
            (3, 1),
            (10, 0),
            (10, 9),
            (17, 5),
            (40, 20),
            (40, 39),
            (100, 10),
            (100, 60),
            (1000, 100),
        ];
        for seed in 0..40 {
            let text = mixed_text(seed, 10 + seed as usize * 7);
            for (size, overlap) in sizes {
                let expected = first_release::chunk_text(&text, size, overlap, usize::MAX, || {})
                    .map_err(|_| ())
                    .unwrap();
                assert_eq!(
                    chunk_text(&text, size, overlap),
                    expected,
                    "{seed} {size}/{overlap}"
                );
            }
        }
    }

    fn assert_fits(chunks: &[String], spec: Spec) {
        for chunk in chunks {
            let size = match spec.unit {
                Unit::Characters => chunk.chars().count(),
                Unit::Tokens => super::super::tokens::cl100k().count(chunk),
            };
            assert!(
                size <= spec.size && !chunk.is_empty(),
                "{spec:?}: {size} in {chunk:?}"
            );
        }
    }

    /// The chunks of `text`, in order, leave out nothing but whitespace.
    fn assert_covers_the_text(text: &str, spec: Spec) {
        let chars: Vec<char> = text.chars().collect();
        let (chunks, _) = chunk_with_work(text, spec, usize::MAX, &mut || {}).unwrap();
        let mut covered = 0;
        for (_, span) in &chunks {
            let skipped = &chars[covered.min(span.start)..span.start];
            assert!(
                skipped.iter().all(|c| c.is_whitespace()),
                "{spec:?}: {skipped:?} left out"
            );
            covered = covered.max(span.end);
        }
        assert!(
            chars[covered..].iter().all(|c| c.is_whitespace()),
            "{spec:?}: the end left out"
        );
    }

    #[test]
    fn markdown_prefers_headings_and_starts_the_next_chunk_there() {
        let text = "# Guide\n\nIntro sentence one. Intro sentence two.\n\n\
                    Second paragraph here.\n## Billing\n\nRefunds take ten days.";
        let chunks = chunks_of(text, spec(90, 30, Unit::Characters, Format::Markdown));
        assert_eq!(
            chunks,
            vec![
                "# Guide\n\nIntro sentence one. Intro sentence two.\n\nSecond paragraph here.",
                "## Billing\n\nRefunds take ten days."
            ]
        );
        // Plain text reads the heading as an ordinary line.
        let plain = chunks_of(text, spec(90, 30, Unit::Characters, Format::Text));
        assert_ne!(plain, chunks);
    }

    #[test]
    fn markdown_cuts_between_list_items_before_inside_them() {
        let text =
            "Steps:\n- open the settings page\n- choose security tab\n- reset the password now";
        let chunks = chunks_of(text, spec(60, 0, Unit::Characters, Format::Markdown));
        assert_eq!(
            chunks[0],
            "Steps:\n- open the settings page\n- choose security tab"
        );
        assert_eq!(chunks[1], "- reset the password now");
    }

    #[test]
    fn markdown_keeps_a_code_block_that_fits_whole() {
        let block =
            "```python\ndef refund(order):\n    return order.total\n\n\nprint(refund(o))\n```";
        let text = format!(
            "Some words before the code. {}\n\n{block}\n\nAnd after it.",
            "Filler text. ".repeat(5)
        );
        for (size, overlap) in [(90, 0), (90, 40), (120, 20), (200, 100)] {
            let chunks = chunks_of(
                &text,
                spec(size, overlap, Unit::Characters, Format::Markdown),
            );
            assert_fits(
                &chunks,
                spec(size, overlap, Unit::Characters, Format::Markdown),
            );
            assert!(
                chunks.iter().any(|c| c.contains(block)),
                "{size}/{overlap}: {chunks:#?}"
            );
            // Plain text cuts into it.
            let plain = chunks_of(&text, spec(size, overlap, Unit::Characters, Format::Text));
            if size < 120 {
                assert!(
                    !plain.iter().any(|c| c.contains(block)),
                    "{size}: {plain:#?}"
                );
            }
        }
    }

    #[test]
    fn markdown_cuts_a_code_block_too_long_for_one_chunk_at_its_lines() {
        let lines: Vec<String> = (0..40)
            .map(|i| format!("let value_{i} = compute({i});"))
            .collect();
        let text = format!("Intro.\n\n```rust\n{}\n```\nAfter.", lines.join("\n"));
        let chunks = chunks_of(&text, spec(100, 0, Unit::Characters, Format::Markdown));
        assert_fits(&chunks, spec(100, 0, Unit::Characters, Format::Markdown));
        for chunk in &chunks {
            for line in chunk.lines() {
                let whole = line == "Intro."
                    || line == "```rust"
                    || line == "```"
                    || line == "After."
                    || line.is_empty()
                    || lines.iter().any(|l| l == line);
                assert!(whole, "a line was cut: {line:?} in {chunks:#?}");
            }
        }
        assert_covers_the_text(&text, spec(100, 0, Unit::Characters, Format::Markdown));
    }

    #[test]
    fn markdown_chunks_fit_and_cover_every_word() {
        for seed in 0..12 {
            let text = markdown_text(seed, 6 + seed as usize * 3);
            for (size, overlap) in [(1, 0), (20, 5), (80, 0), (80, 70), (300, 50), (1000, 100)] {
                let spec = spec(size, overlap, Unit::Characters, Format::Markdown);
                let chunks = chunks_of(&text, spec);
                assert_fits(&chunks, spec);
                assert_covers_the_text(&text, spec);
            }
        }
    }

    #[test]
    fn token_chunks_never_exceed_the_size() {
        let texts = [
            mixed_text(1, 3000),
            markdown_text(2, 30),
            "日本語の文章です。次の文です。".repeat(300),
            "😀👍🏽🇫🇷 emoji ".repeat(400),
            "é".repeat(5000),
            "x".repeat(20_000),
            (0..20_000u32)
                .map(|i| {
                    char::from_u32(0x20 + (i.wrapping_mul(2654435761) % 0x3000)).unwrap_or('?')
                })
                .collect(),
        ];
        for text in &texts {
            for (size, overlap) in [(64, 0), (64, 63), (100, 20), (257, 0), (1000, 200)] {
                for format in [Format::Text, Format::Markdown] {
                    let spec = spec(size, overlap, Unit::Tokens, format);
                    let chunks = chunks_of(text, spec);
                    assert_fits(&chunks, spec);
                    assert_covers_the_text(text, spec);
                }
            }
        }
    }

    #[test]
    fn token_chunks_are_cut_at_boundaries_and_overlap_in_tokens() {
        let text = "Refunds are paid within ten days. Contact billing for a refund. ".repeat(40);
        let tokenizer = super::super::tokens::cl100k();
        let chunks = chunks_of(&text, spec(100, 0, Unit::Tokens, Format::Text));
        assert!(chunks.len() >= 5);
        for chunk in &chunks[..chunks.len() - 1] {
            assert!(chunk.ends_with('.'), "{chunk:?}");
            // Not much of the budget is left unused by a sentence cut.
            assert!(tokenizer.count(chunk) > 50, "{chunk:?}");
        }
        let overlapping = chunks_of(&text, spec(100, 30, Unit::Tokens, Format::Text));
        assert!(overlapping.len() > chunks.len());
        for pair in overlapping.windows(2) {
            let first_word = pair[1].split_whitespace().next().unwrap();
            assert!(pair[0].contains(first_word), "{pair:?}");
        }
    }

    #[test]
    #[should_panic(expected = "size >= ")]
    fn a_token_size_below_one_piece_is_refused() {
        chunks_of(
            "some text",
            spec(MIN_TOKEN_SIZE - 1, 0, Unit::Tokens, Format::Text),
        );
    }

    /// The work per character stays flat as texts grow, for every mode and
    /// for text with no boundary, with code blocks everywhere and with the
    /// largest overlap.
    #[test]
    fn work_is_linear_in_the_text() {
        let texts: Vec<(&str, Box<dyn Fn(usize) -> String>)> = vec![
            ("x", Box::new(|n| "x".repeat(n))),
            ("prose", Box::new(|n| mixed_text(7, n / 6))),
            ("markdown", Box::new(|n| markdown_text(3, n / 200))),
            (
                "tiny code blocks",
                Box::new(|n| "a\n```\nb\n```\n".repeat(n / 12)),
            ),
            ("headings", Box::new(|n| "# h\n".repeat(n / 4))),
        ];
        for (name, make) in &texts {
            for unit in [Unit::Characters, Unit::Tokens] {
                for format in [Format::Text, Format::Markdown] {
                    for overlap in [0, 99] {
                        let spec = spec(100, overlap, unit, format);
                        let per_char = |n: usize| {
                            let text = make(n);
                            let (_, work) =
                                chunk_with_work(&text, spec, usize::MAX, &mut || {}).unwrap();
                            work as f64 / text.chars().count() as f64
                        };
                        let (small, large) = (per_char(4_000), per_char(32_000));
                        assert!(
                            large <= small * 1.2 + 0.5 && large < 400.0,
                            "{name} {spec:?}: {small:.2} then {large:.2} per character"
                        );
                    }
                }
            }
        }
    }

    fn spec(size: usize, overlap: usize, unit: Unit, format: Format) -> Spec {
        Spec {
            size,
            overlap,
            unit,
            format,
        }
    }

    fn characters(size: usize, overlap: usize) -> Spec {
        spec(size, overlap, Unit::Characters, Format::Text)
    }

    /// Without an output limit (the limit has a test of its own).
    fn chunks_of(text: &str, spec: Spec) -> Vec<String> {
        super::chunk_text(text, spec, usize::MAX, || {}).expect("no limit")
    }

    fn chunk_text(text: &str, size: usize, overlap: usize) -> Vec<String> {
        chunks_of(text, characters(size, overlap))
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
        let limited = super::chunk_text(&text, characters(1_000, 999), 10_000, || {});
        assert_eq!(limited, Err(TooMuchOutput { limit: 10_000 }));
        // The same text with a sane overlap fits, and the checkpoint ran once
        // per chunk (plus the final pass).
        let mut checkpoints = 0;
        let chunks =
            super::chunk_text(&text, characters(1_000, 100), 10_000, || checkpoints += 1).unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(checkpoints >= chunks.len());
        // The limit counts what is taken, so a text fits a limit of its own
        // length when nothing overlaps.
        assert!(super::chunk_text(&text, characters(100, 0), text.len(), || {}).is_ok());
    }
}
