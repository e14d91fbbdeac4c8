//! The keyword query of a search, without Postgres: which words of the
//! question count ('any' mode), and the text of a tsquery over lexemes, quoted
//! so that PostgreSQL's tsquery parser reads each lexeme back exactly as it is,
//! whatever characters it holds. This is the only place that builds tsquery
//! text; `text_search.rs` hands it to PostgreSQL's own input function.

use crate::search::input::{check_choice, InputError};

/// How the words of a question must match (`keyword_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordMatch {
    /// Rows sharing any of the question's distinctive words.
    Any,
    /// Every word, in PostgreSQL's websearch syntax (quotes, `-word`, `or`).
    All,
}

impl KeywordMatch {
    pub const NAMES: &'static [&'static str] = &["any", "all"];

    pub fn parse(name: Option<&str>) -> Result<Self, InputError> {
        match check_choice("keyword_match", name, Self::NAMES)? {
            "any" => Ok(Self::Any),
            _ => Ok(Self::All),
        }
    }
}

/// How the lexemes of a tsquery combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// `a | b`: a row holding any of them.
    AnyOf,
    /// `a & b`: a row holding all of them.
    AllOf,
}

/// The tsquery text matching `lexemes` as they are (no stemming, no
/// operators), combined with `combine`; None when there is no lexeme. Empty
/// strings are skipped: no tsvector holds one.
pub fn lexeme_query(lexemes: &[impl AsRef<str>], combine: Combine) -> Option<String> {
    let operator = match combine {
        Combine::AnyOf => " | ",
        Combine::AllOf => " & ",
    };
    let quoted: Vec<String> = lexemes
        .iter()
        .map(AsRef::as_ref)
        .filter(|lexeme| !lexeme.is_empty())
        .map(quote)
        .collect();
    (!quoted.is_empty()).then(|| quoted.join(operator))
}

/// One lexeme as a quoted tsquery operand. Inside quotes the parser takes a
/// backslash as "the next character literally" and a doubled quote as one
/// quote; everything else (spaces, `&|!():*<->`) is part of the lexeme.
fn quote(lexeme: &str) -> String {
    let mut quoted = String::with_capacity(lexeme.len() + 2);
    quoted.push('\'');
    for c in lexeme.chars() {
        match c {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            _ => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// The 'any' mode's words: the question's lexemes that are not common, or
/// all of them when every one is (a question made only of common words still
/// finds something). Order and duplicates are kept as given.
pub fn distinctive(lexemes: Vec<String>, common: &[String]) -> Vec<String> {
    let kept: Vec<String> = lexemes
        .iter()
        .filter(|lexeme| !common.contains(lexeme))
        .cloned()
        .collect();
    if kept.is_empty() {
        lexemes
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lexemes_are_quoted_and_combined() {
        assert_eq!(
            lexeme_query(&["refund", "invoic"], Combine::AnyOf).as_deref(),
            Some("'refund' | 'invoic'")
        );
        assert_eq!(
            lexeme_query(&["refund", "invoic"], Combine::AllOf).as_deref(),
            Some("'refund' & 'invoic'")
        );
        assert_eq!(
            lexeme_query(&["zq17"], Combine::AllOf).as_deref(),
            Some("'zq17'")
        );
    }

    #[test]
    fn no_lexeme_is_no_query() {
        assert_eq!(lexeme_query(&[] as &[&str], Combine::AnyOf), None);
        assert_eq!(lexeme_query(&["", ""], Combine::AllOf), None);
        assert_eq!(
            lexeme_query(&["", "a"], Combine::AllOf).as_deref(),
            Some("'a'")
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_operators_are_not() {
        assert_eq!(quote("o'brien"), "'o''brien'");
        assert_eq!(quote(r"c:\temp"), r"'c:\\temp'");
        assert_eq!(quote(r"\'"), r"'\\'''");
        // Inside quotes these are ordinary characters of the lexeme.
        assert_eq!(quote("a & !b:* | (c) <-> d"), "'a & !b:* | (c) <-> d'");
        assert_eq!(quote("日本語"), "'日本語'");
    }

    #[test]
    fn common_words_are_dropped_unless_all_are_common() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            distinctive(
                words(&["custom", "error", "e4012"]),
                &words(&["custom", "error"])
            ),
            words(&["e4012"])
        );
        assert_eq!(
            distinctive(words(&["custom", "error"]), &words(&["custom", "error"])),
            words(&["custom", "error"])
        );
        assert_eq!(distinctive(words(&["a", "b"]), &[]), words(&["a", "b"]));
    }

    #[test]
    fn keyword_modes() {
        assert_eq!(KeywordMatch::parse(Some("any")), Ok(KeywordMatch::Any));
        assert_eq!(KeywordMatch::parse(Some("all")), Ok(KeywordMatch::All));
        for bad in [Some("ANY"), Some("")] {
            assert!(matches!(
                KeywordMatch::parse(bad),
                Err(InputError::UnknownChoice { .. })
            ));
        }
        assert!(matches!(
            KeywordMatch::parse(None),
            Err(InputError::Missing { .. })
        ));
    }
}
