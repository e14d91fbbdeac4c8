//! The Markdown structure chunking cuts by, found in one pass over the text
//! without Postgres: which lines are ATX headings, list items or blank, and
//! where fenced code blocks begin and end. A small subset of CommonMark,
//! enough to choose cut points: nothing is rendered.

use std::ops::Range;

/// What a line is, as far as cutting before it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `#` to `######` then a space or the line's end, indented at most 3.
    Heading,
    /// The opening line of a fenced code block.
    FenceOpening,
    /// `-`, `*`, `+`, `1.` or `1)` then a space.
    ListItem,
    /// Any other line, blank ones and those inside code blocks included.
    Other,
}

/// A line, and whether a blank line or a code block's end comes just
/// before it (a paragraph break).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineStart {
    pub line: Line,
    pub after_break: bool,
}

/// The structure of one text, by character position.
pub struct Structure {
    /// For each position that starts a line (0 and every position after a
    /// line feed), what that line is.
    line_at: Vec<Option<LineStart>>,
    /// Fenced code blocks, each from the start of its opening line to just
    /// after its closing line (or the text's end when it is never closed).
    blocks: Vec<Range<usize>>,
    /// For each position, 1 + the index of the block it lies strictly
    /// inside, or 0.
    inside: Vec<u32>,
}

/// A fence: the character it is made of and its length.
#[derive(Clone, Copy)]
struct Fence {
    mark: char,
    length: usize,
}

/// Up to three spaces of indentation, then the rest of the line.
fn after_indent(line: &[char]) -> Option<&[char]> {
    let indent = line.iter().take_while(|&&c| c == ' ').count();
    (indent <= 3).then(|| &line[indent..])
}

fn fence_opening(line: &[char]) -> Option<Fence> {
    let rest = after_indent(line)?;
    let mark = *rest.first()?;
    if mark != '`' && mark != '~' {
        return None;
    }
    let length = rest.iter().take_while(|&&c| c == mark).count();
    // A backtick fence's info string holds no backtick (``` a ``` is code
    // inside a paragraph, not a fence).
    let info_ok = mark == '~' || !rest[length..].contains(&'`');
    (length >= 3 && info_ok).then_some(Fence { mark, length })
}

fn closes(line: &[char], fence: Fence) -> bool {
    let Some(rest) = after_indent(line) else {
        return false;
    };
    let length = rest.iter().take_while(|&&c| c == fence.mark).count();
    length >= fence.length && rest[length..].iter().all(|c| c.is_whitespace())
}

fn is_heading(line: &[char]) -> bool {
    let Some(rest) = after_indent(line) else {
        return false;
    };
    let level = rest.iter().take_while(|&&c| c == '#').count();
    (1..=6).contains(&level) && rest.get(level).is_none_or(|c| c.is_whitespace())
}

fn is_list_item(line: &[char]) -> bool {
    let rest = &line[line.iter().take_while(|&&c| c == ' ' || c == '\t').count()..];
    let followed_by_space = |at: usize| rest.get(at).is_some_and(|&c| c == ' ' || c == '\t');
    match rest.first() {
        Some('-' | '*' | '+') => followed_by_space(1),
        Some(c) if c.is_ascii_digit() => {
            let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            digits <= 9
                && matches!(rest.get(digits), Some('.' | ')'))
                && followed_by_space(digits + 1)
        }
        _ => false,
    }
}

impl Structure {
    /// Reads `chars` once, line by line.
    pub fn of(chars: &[char]) -> Structure {
        let mut line_at = vec![None; chars.len() + 1];
        let mut inside = vec![0u32; chars.len() + 1];
        let mut blocks = Vec::new();
        let mut open: Option<(Fence, usize)> = None;
        let mut after_break = false;
        let mut start = 0;
        while start < chars.len() {
            let end = chars[start..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |i| start + i);
            let line = &chars[start..end];
            let next = (end + 1).min(chars.len());
            if let Some((fence, opened_at)) = open {
                line_at[start] = Some(LineStart {
                    line: Line::Other,
                    after_break: false,
                });
                if closes(line, fence) {
                    blocks.push(opened_at..next);
                    open = None;
                    after_break = true;
                }
            } else {
                let blank = line.iter().all(|c| c.is_whitespace());
                let kind = if is_heading(line) {
                    Line::Heading
                } else if let Some(fence) = fence_opening(line) {
                    open = Some((fence, start));
                    Line::FenceOpening
                } else if is_list_item(line) {
                    Line::ListItem
                } else {
                    Line::Other
                };
                line_at[start] = Some(LineStart {
                    line: kind,
                    after_break,
                });
                after_break = blank;
            }
            start = end + 1;
        }
        if let Some((_, opened_at)) = open {
            blocks.push(opened_at..chars.len());
        }
        for (index, block) in blocks.iter().enumerate() {
            inside[block.start + 1..block.end].fill(index as u32 + 1);
        }
        Structure {
            line_at,
            blocks,
            inside,
        }
    }

    /// What the line starting at `at` is (None: `at` starts no line).
    pub fn line_at(&self, at: usize) -> Option<LineStart> {
        self.line_at.get(at).copied().flatten()
    }

    /// The index of the code block `at` lies strictly inside.
    pub fn block_around(&self, at: usize) -> Option<usize> {
        match self.inside.get(at) {
            Some(&index) if index > 0 => Some(index as usize - 1),
            _ => None,
        }
    }

    pub fn blocks(&self) -> &[Range<usize>] {
        &self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &Structure, at: usize) -> Option<(Line, bool)> {
        s.line_at(at).map(|l| (l.line, l.after_break))
    }

    fn structure(text: &str) -> (Vec<char>, Structure) {
        let chars: Vec<char> = text.chars().collect();
        let structure = Structure::of(&chars);
        (chars, structure)
    }

    fn position(chars: &[char], needle: &str) -> usize {
        let needle: Vec<char> = needle.chars().collect();
        chars
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
            .expect("needle present")
    }

    #[test]
    fn headings_list_items_and_paragraph_starts() {
        let text = "# Title\nintro\n\nnext para\n- item\n12) item\n####### seven\n#tag\n";
        let (chars, s) = structure(text);
        assert_eq!(line(&s, 0), Some((Line::Heading, false)));
        assert_eq!(
            line(&s, position(&chars, "intro")),
            Some((Line::Other, false))
        );
        assert_eq!(
            line(&s, position(&chars, "next")),
            Some((Line::Other, true))
        );
        assert_eq!(
            line(&s, position(&chars, "- item")),
            Some((Line::ListItem, false))
        );
        assert_eq!(
            line(&s, position(&chars, "12)")),
            Some((Line::ListItem, false))
        );
        assert_eq!(
            line(&s, position(&chars, "#######")),
            Some((Line::Other, false))
        );
        assert_eq!(
            line(&s, position(&chars, "#tag")),
            Some((Line::Other, false))
        );
        assert_eq!(s.line_at(1), None);
    }

    #[test]
    fn fenced_blocks_hide_what_looks_like_structure() {
        let text = "before\n```rust\n# not a heading\n\n- nor an item\n```\nafter\n~~~~\n``` still inside\n~~~~\n";
        let (chars, s) = structure(text);
        assert_eq!(s.blocks().len(), 2);
        let opening = position(&chars, "```rust");
        assert_eq!(line(&s, opening), Some((Line::FenceOpening, false)));
        assert_eq!(s.blocks()[0].start, opening);
        assert_eq!(s.blocks()[0].end, position(&chars, "after"));
        assert_eq!(
            line(&s, position(&chars, "# not")),
            Some((Line::Other, false))
        );
        assert_eq!(s.block_around(position(&chars, "# not")), Some(0));
        assert_eq!(s.block_around(opening), None, "before the fence is outside");
        assert_eq!(s.block_around(position(&chars, "after")), None);
        assert_eq!(
            line(&s, position(&chars, "after")),
            Some((Line::Other, true))
        );
        assert_eq!(s.block_around(position(&chars, "``` still")), Some(1));
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end_and_inline_backticks_open_none() {
        let (chars, s) = structure("text ```code``` here\n```a`b\nplain\n```\nopen to the end");
        assert_eq!(s.blocks().len(), 1);
        assert_eq!(s.blocks()[0].start, position(&chars, "```\nopen"));
        assert_eq!(s.blocks()[0].end, chars.len());
    }
}
