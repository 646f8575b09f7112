//! LIKE patterns, compiled once: `%` is any run of characters (possibly none), `_` exactly one
//! character, `\%` and `\_` the literal characters, anything else (a lone `\` included) itself,
//! case-sensitively. The common shapes (`abc`, `abc%`, `%abc`, `%abc%`) become plain string
//! comparisons; the rest run a linear-memory wildcard matcher. No allocation when matching.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Char(char),
    /// `_`
    One,
    /// `%`
    Many,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Like {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    General(Box<[Piece]>),
}

impl Like {
    pub(crate) fn compile(pattern: &str) -> Like {
        let mut pieces = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if matches!(chars.peek(), Some('%' | '_')) => {
                    if let Some(escaped) = chars.next() {
                        pieces.push(Piece::Char(escaped));
                    }
                }
                '%' => {
                    if pieces.last() != Some(&Piece::Many) {
                        pieces.push(Piece::Many);
                    }
                }
                '_' => pieces.push(Piece::One),
                other => pieces.push(Piece::Char(other)),
            }
        }
        if pieces.contains(&Piece::One) {
            return Like::General(pieces.into());
        }
        let leading = pieces.first() == Some(&Piece::Many);
        let trailing = pieces.len() > usize::from(leading) && pieces.last() == Some(&Piece::Many);
        let inner = &pieces[usize::from(leading)..pieces.len() - usize::from(trailing)];
        if inner.contains(&Piece::Many) {
            return Like::General(pieces.into());
        }
        let text: String = inner
            .iter()
            .filter_map(|p| match p {
                Piece::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        match (leading, trailing) {
            (false, false) => Like::Exact(text.into()),
            (false, true) => Like::Prefix(text.into()),
            (true, false) => Like::Suffix(text.into()),
            (true, true) => Like::Contains(text.into()),
        }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Like::Exact(s) => text == &**s,
            Like::Prefix(s) => text.starts_with(&**s),
            Like::Suffix(s) => text.ends_with(&**s),
            Like::Contains(s) => text.contains(&**s),
            Like::General(pieces) => wildcard(pieces, text),
        }
    }
}

/// Greedy matching that, on a mismatch, retries from the last `%` one character further on:
/// O(pattern × text) time, constant memory.
fn wildcard(pieces: &[Piece], text: &str) -> bool {
    let next_char = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
    let (mut p, mut t) = (0usize, 0usize);
    // (piece after the last `%`, text position that `%` currently stops at)
    let mut retry: Option<(usize, usize)> = None;
    loop {
        match pieces.get(p) {
            Some(Piece::Many) => {
                retry = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(Piece::One) => {
                if let Some(c) = next_char(t) {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            }
            Some(Piece::Char(want)) => {
                if let Some(c) = next_char(t).filter(|c| c == want) {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            }
            None if t == text.len() => return true,
            None => {}
        }
        let Some((after, stop)) = retry else {
            return false;
        };
        let Some(c) = next_char(stop) else {
            return false;
        };
        retry = Some((after, stop + c.len_utf8()));
        p = after;
        t = stop + c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(text: &str, pattern: &str) -> bool {
        Like::compile(pattern).matches(text)
    }

    #[test]
    fn shapes_compile_to_plain_comparisons() {
        assert_eq!(Like::compile("/shop/%"), Like::Prefix("/shop/".into()));
        assert_eq!(Like::compile("%.error"), Like::Suffix(".error".into()));
        assert_eq!(Like::compile("%x%%"), Like::Contains("x".into()));
        assert_eq!(Like::compile("abc"), Like::Exact("abc".into()));
        assert_eq!(Like::compile(r"a\%"), Like::Exact("a%".into()));
        assert_eq!(Like::compile("%"), Like::Suffix("".into()));
        assert!(matches!(Like::compile("a%b%c"), Like::General(_)));
        assert!(matches!(Like::compile("a_"), Like::General(_)));
    }

    #[test]
    fn wildcards() {
        assert!(like("abc", "a%b%c"));
        assert!(like("azzzbzzzc", "a%b%c"));
        assert!(!like("ac", "abc"));
        assert!(like(".ab.cde.", ".%.%."));
        assert!(!like("ab.cde", ".%.%."));
        assert!(like("azbzc", "a_b_c"));
        assert!(!like("abzc", "a_b_c"));
        assert!(like("", "%"));
        assert!(like("anything", "%"));
        assert!(!like("", "_"));
        assert!(like("é", "_"), "one character, not one byte");
        assert!(like("aXbXbXc", "a%b%c"));
        assert!(like("mississippi", "%iss%ipp%"));
        assert!(!like("mississippi", "%iss%ipp%x"));
    }

    #[test]
    fn escapes() {
        assert!(like("a_b_c", r"a\_b\_c"));
        assert!(!like("azbzc", r"a\_b\_c"));
        assert!(like("a%b%c", r"a\%b\%c"));
        assert!(!like("abc", r"a\%b\%c"));
        assert!(
            like(r"ab\c", r"ab\c"),
            "a backslash before another character is literal"
        );
        assert!(like("abc123123%456_dzf", r"abc%123\%456\_d_f"));
    }
}
