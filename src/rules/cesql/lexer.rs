//! CESQL lexer: expression text → tokens, each with its line and column (1-based, in
//! characters) so that parse errors can point at the spot.
//!
//! Words (letters, digits, `_`) are classified by the parser (keyword, identifier or function
//! name), because which one a word is depends on its neighbours. String literals are unescaped
//! here: inside `'…'` the sequence `\'` stands for `'`, inside `"…"` `\"` stands for `"`; every
//! other backslash is kept as it is (the spec's grammar).

use super::{Error, ErrorKind, Pos};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    Comma,
    Eq,
    NotEq,
    /// `<>`
    LtGt,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    /// Unsigned digits; the parser range-checks (so that `-2147483648` works).
    Int(u64),
    Str(String),
    Word(String),
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Eq => "'='".into(),
            Tok::NotEq => "'!='".into(),
            Tok::LtGt => "'<>'".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Percent => "'%'".into(),
            Tok::Int(n) => format!("integer {n}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Word(w) => format!("{w:?}"),
            Tok::End => "the end of the expression".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Integers longer than this many digits are out of range whatever their value.
const MAX_DIGITS: usize = 19;

pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, Error> {
    let mut out = Vec::new();
    let mut chars = source.char_indices().peekable();
    let mut line = 1u32;
    let mut column = 1u32;
    // Advance the position over `c`.
    let step = |c: char, line: &mut u32, column: &mut u32| {
        if c == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
    };
    while let Some(&(_, c)) = chars.peek() {
        let pos = Pos { line, column };
        if c.is_whitespace() {
            chars.next();
            step(c, &mut line, &mut column);
            continue;
        }
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Eq),
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            '*' => Some(Tok::Star),
            '/' => Some(Tok::Slash),
            '%' => Some(Tok::Percent),
            _ => None,
        };
        if let Some(tok) = single {
            chars.next();
            column += 1;
            out.push(Token { tok, pos });
            continue;
        }
        match c {
            '!' | '<' | '>' => {
                chars.next();
                column += 1;
                let next = chars.peek().map(|&(_, n)| n);
                let (tok, two) = match (c, next) {
                    ('!', Some('=')) => (Tok::NotEq, true),
                    ('<', Some('>')) => (Tok::LtGt, true),
                    ('<', Some('=')) => (Tok::Le, true),
                    ('>', Some('=')) => (Tok::Ge, true),
                    ('<', _) => (Tok::Lt, false),
                    ('>', _) => (Tok::Gt, false),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Parse,
                            pos,
                            "unexpected '!': the not-equal operator is '!=' (or '<>'), logical \
                             negation is NOT",
                        ));
                    }
                };
                if two {
                    chars.next();
                    column += 1;
                }
                out.push(Token { tok, pos });
            }
            '\'' | '"' => {
                let quote = c;
                chars.next();
                column += 1;
                let mut text = String::new();
                let mut closed = false;
                while let Some((_, ch)) = chars.next() {
                    step(ch, &mut line, &mut column);
                    if ch == quote {
                        closed = true;
                        break;
                    }
                    if ch == '\\' && chars.peek().is_some_and(|&(_, n)| n == quote) {
                        chars.next();
                        column += 1;
                        text.push(quote);
                        continue;
                    }
                    text.push(ch);
                }
                if !closed {
                    return Err(Error::new(
                        ErrorKind::Parse,
                        pos,
                        format!("unterminated string literal: no closing {quote}"),
                    ));
                }
                out.push(Token {
                    tok: Tok::Str(text),
                    pos,
                });
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if ch.is_ascii_alphanumeric() || ch == '_' {
                        word.push(ch);
                        chars.next();
                        column += 1;
                    } else {
                        break;
                    }
                }
                let tok = if word.bytes().all(|b| b.is_ascii_digit()) {
                    let digits = word.trim_start_matches('0');
                    if digits.len() > MAX_DIGITS {
                        return Err(Error::new(
                            ErrorKind::Parse,
                            pos,
                            format!("integer literal {word} is not a 32-bit integer"),
                        ));
                    }
                    match digits.parse::<u64>() {
                        Ok(n) => Tok::Int(n),
                        Err(_) if digits.is_empty() => Tok::Int(0),
                        Err(_) => {
                            return Err(Error::new(
                                ErrorKind::Parse,
                                pos,
                                format!("integer literal {word} is not a 32-bit integer"),
                            ));
                        }
                    }
                } else {
                    Tok::Word(word)
                };
                out.push(Token { tok, pos });
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Parse,
                    pos,
                    format!("unexpected character {other:?}"),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::End,
        pos: Pos { line, column },
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s)
            .expect("lexes")
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn operators_and_words() {
        assert_eq!(
            toks("a<>b != c <= 1 >= 2 < > = ( ) , + - * / %"),
            vec![
                Tok::Word("a".into()),
                Tok::LtGt,
                Tok::Word("b".into()),
                Tok::NotEq,
                Tok::Word("c".into()),
                Tok::Le,
                Tok::Int(1),
                Tok::Ge,
                Tok::Int(2),
                Tok::Lt,
                Tok::Gt,
                Tok::Eq,
                Tok::LParen,
                Tok::RParen,
                Tok::Comma,
                Tok::Plus,
                Tok::Minus,
                Tok::Star,
                Tok::Slash,
                Tok::Percent,
                Tok::End,
            ]
        );
    }

    #[test]
    fn string_escapes_follow_the_delimiter() {
        assert_eq!(toks(r#"'a"b\'c'"#)[0], Tok::Str(r#"a"b'c"#.into()));
        assert_eq!(toks(r#""a'b\"c""#)[0], Tok::Str(r#"a'b"c"#.into()));
        // Other backslashes stay.
        assert_eq!(toks(r"'ab\c'")[0], Tok::Str(r"ab\c".into()));
        assert_eq!(toks(r"'a\%'")[0], Tok::Str(r"a\%".into()));
    }

    #[test]
    fn positions_are_line_and_column() {
        let t = tokenize("a AND\n  'x'").expect("lexes");
        assert_eq!(t[0].pos, Pos { line: 1, column: 1 });
        assert_eq!(t[1].pos, Pos { line: 1, column: 3 });
        assert_eq!(t[2].pos, Pos { line: 2, column: 3 });
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = tokenize("a = 'open").expect_err("unterminated");
        assert_eq!(e.kind, ErrorKind::Parse);
        assert_eq!(e.pos, Pos { line: 1, column: 5 });
        let e = tokenize("a # b").expect_err("bad char");
        assert_eq!(e.pos, Pos { line: 1, column: 3 });
        assert!(tokenize("99999999999999999999999").is_err());
        assert_eq!(toks("007")[0], Tok::Int(7));
    }
}
