//! CESQL parser: tokens → [`Node`] tree, by precedence climbing over the spec's grammar
//! (`cesql/CESQLParser.g4` at `cesql@v1.0.0`). From loosest to tightest:
//!
//! 1. `AND`, `OR`, `XOR`: one level, right-associative (`a AND b OR c` is `a AND (b OR c)`)
//! 2. `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`
//! 3. `+`, `-`
//! 4. `*`, `/`, `%`
//! 5. `x [NOT] IN (…)`
//! 6. `x [NOT] LIKE 'pattern'` (the pattern must be a string literal)
//! 7. prefix `NOT`, `-` (so `NOT a = b` is `(NOT a) = b`, as in the grammar)
//! 8. literals, identifiers, `EXISTS identifier`, function calls, `( … )`
//!
//! Keywords, `TRUE`/`FALSE` and function names are case-insensitive; identifiers are lowered
//! (attribute names are lower case). Never panics: nesting is bounded and every malformed input
//! is a ParseError with a position.
//!
//! Pure, like the rest of `cesql`: no I/O. Tests: `parser/tests.rs`.

use super::ast::{ArithOp, Attr, CmpOp, Kind, Literal, LogicOp, Node};
use super::functions;
use super::lexer::{Tok, Token, tokenize};
use super::like::Like;
use super::{Error, ErrorKind, Pos};

/// Deepest recursion of the parser (parentheses, prefix operators, calls, nested sets).
const MAX_NESTING: u32 = 64;

const P_LOGIC: u8 = 1;
const P_CMP: u8 = 2;
const P_ADD: u8 = 3;
const P_MUL: u8 = 4;
const P_IN: u8 = 5;
const P_LIKE: u8 = 6;
const P_PREFIX: u8 = 7;

const KEYWORDS: &[&str] = &[
    "AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE",
];

pub(crate) fn parse(source: &str) -> Result<Node, Error> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        nesting: 0,
    };
    if parser.peek().tok == Tok::End {
        return Err(Error::new(
            ErrorKind::Parse,
            parser.peek().pos,
            "empty expression",
        ));
    }
    let root = parser.expr(0)?;
    let next = parser.peek();
    if next.tok != Tok::End {
        return Err(Error::new(
            ErrorKind::Parse,
            next.pos,
            format!(
                "unexpected {} after a complete expression (missing operator?)",
                next.tok.describe()
            ),
        ));
    }
    Ok(root)
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

fn keyword_of(tok: &Tok) -> Option<&'static str> {
    match tok {
        Tok::Word(w) => KEYWORDS.iter().copied().find(|k| is_keyword(w, k)),
        _ => None,
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    nesting: u32,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        // The token list always ends with `End`, which is never consumed past.
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[(self.at + ahead).min(last)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::End {
            self.at += 1;
        }
        t
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Parse, pos, message)
    }

    fn node(&self, kind: Kind, pos: Pos) -> Result<Node, Error> {
        Node::new(kind, pos).ok_or_else(|| {
            self.error(
                pos,
                format!(
                    "expression nested too deeply (more than {} levels)",
                    super::ast::MAX_TREE_DEPTH
                ),
            )
        })
    }

    fn expect(&mut self, want: Tok, context: &str) -> Result<Token, Error> {
        let t = self.peek().clone();
        if t.tok == want {
            Ok(self.bump())
        } else {
            Err(self.error(
                t.pos,
                format!(
                    "expected {} {context}, found {}",
                    want.describe(),
                    t.tok.describe()
                ),
            ))
        }
    }

    /// An expression whose operators all bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> Result<Node, Error> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error(
                self.peek().pos,
                format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        let result = self.expr_inner(min);
        self.nesting -= 1;
        result
    }

    fn expr_inner(&mut self, min: u8) -> Result<Node, Error> {
        let mut lhs = self.prefix()?;
        loop {
            let t = self.peek().clone();
            let keyword = keyword_of(&t.tok);
            match (&t.tok, keyword) {
                (_, Some("AND" | "OR" | "XOR")) if min <= P_LOGIC => {
                    lhs = self.logic_chain(lhs)?;
                }
                (Tok::Eq | Tok::NotEq | Tok::LtGt | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge, _)
                    if min <= P_CMP =>
                {
                    self.bump();
                    let op = match t.tok {
                        Tok::Eq => CmpOp::Eq,
                        Tok::NotEq | Tok::LtGt => CmpOp::NotEq,
                        Tok::Lt => CmpOp::Lt,
                        Tok::Le => CmpOp::Le,
                        Tok::Gt => CmpOp::Gt,
                        _ => CmpOp::Ge,
                    };
                    let rhs = self.operand(P_CMP + 1, &t)?;
                    lhs = self.node(Kind::Cmp(op, Box::new(lhs), Box::new(rhs)), t.pos)?;
                }
                (Tok::Plus | Tok::Minus, _) if min <= P_ADD => {
                    self.bump();
                    let op = if t.tok == Tok::Plus {
                        ArithOp::Add
                    } else {
                        ArithOp::Sub
                    };
                    let rhs = self.operand(P_ADD + 1, &t)?;
                    lhs = self.node(Kind::Arith(op, Box::new(lhs), Box::new(rhs)), t.pos)?;
                }
                (Tok::Star | Tok::Slash | Tok::Percent, _) if min <= P_MUL => {
                    self.bump();
                    let op = match t.tok {
                        Tok::Star => ArithOp::Mul,
                        Tok::Slash => ArithOp::Div,
                        _ => ArithOp::Mod,
                    };
                    let rhs = self.operand(P_MUL + 1, &t)?;
                    lhs = self.node(Kind::Arith(op, Box::new(lhs), Box::new(rhs)), t.pos)?;
                }
                (_, Some("NOT")) => {
                    let after = keyword_of(&self.peek_at(1).tok);
                    match after {
                        Some("LIKE") if min <= P_LIKE => {
                            self.bump();
                            lhs = self.like(lhs, true)?;
                        }
                        Some("IN") if min <= P_IN => {
                            self.bump();
                            lhs = self.in_set(lhs, true)?;
                        }
                        Some("LIKE" | "IN") => break,
                        _ => {
                            return Err(self.error(
                                t.pos,
                                format!(
                                    "NOT after an expression must be followed by LIKE or IN, \
                                     found {}",
                                    self.peek_at(1).tok.describe()
                                ),
                            ));
                        }
                    }
                }
                (_, Some("LIKE")) if min <= P_LIKE => lhs = self.like(lhs, false)?,
                (_, Some("IN")) if min <= P_IN => lhs = self.in_set(lhs, false)?,
                _ => break,
            }
        }
        Ok(lhs)
    }

    /// The right operand of a binary operator `op`.
    fn operand(&mut self, min: u8, op: &Token) -> Result<Node, Error> {
        if self.peek().tok == Tok::End {
            return Err(self.error(
                self.peek().pos,
                format!(
                    "expected an expression after {}, found the end of the expression",
                    op.tok.describe()
                ),
            ));
        }
        self.expr(min)
    }

    /// `first (AND|OR|XOR) e2 (AND|OR|XOR) e3 …`, folded to the right; runs of the same
    /// operator become one flat `And`/`Or` node.
    fn logic_chain(&mut self, first: Node) -> Result<Node, Error> {
        let mut operands = vec![first];
        let mut ops: Vec<(LogicOp, Token)> = Vec::new();
        while let Some(k @ ("AND" | "OR" | "XOR")) = keyword_of(&self.peek().tok) {
            let t = self.bump();
            let op = match k {
                "AND" => LogicOp::And,
                "OR" => LogicOp::Or,
                _ => LogicOp::Xor,
            };
            operands.push(self.operand(P_LOGIC + 1, &t)?);
            ops.push((op, t));
        }
        let mut acc = operands.pop().ok_or_else(|| {
            self.error(self.peek().pos, "expected an expression before AND/OR/XOR")
        })?;
        while let (Some(lhs), Some((op, t))) = (operands.pop(), ops.pop()) {
            let kind = match (op, acc.kind) {
                (LogicOp::And, Kind::And(mut rest)) => {
                    rest.insert(0, lhs);
                    Kind::And(rest)
                }
                (LogicOp::Or, Kind::Or(mut rest)) => {
                    rest.insert(0, lhs);
                    Kind::Or(rest)
                }
                (op, kind) => {
                    let rhs = Node {
                        kind,
                        pos: acc.pos,
                        depth: acc.depth,
                    };
                    match op {
                        LogicOp::And => Kind::And(vec![lhs, rhs]),
                        LogicOp::Or => Kind::Or(vec![lhs, rhs]),
                        LogicOp::Xor => Kind::Xor(Box::new(lhs), Box::new(rhs)),
                    }
                }
            };
            acc = self.node(kind, t.pos)?;
        }
        Ok(acc)
    }

    /// After `value [NOT]`, at `LIKE`.
    fn like(&mut self, value: Node, negated: bool) -> Result<Node, Error> {
        let like = self.bump();
        let t = self.bump();
        let Tok::Str(pattern) = &t.tok else {
            return Err(self.error(
                t.pos,
                format!(
                    "LIKE needs a string literal pattern such as '/shop/%', found {}",
                    t.tok.describe()
                ),
            ));
        };
        let kind = Kind::Like {
            value: Box::new(value),
            pattern: Like::compile(pattern),
            negated,
        };
        self.node(kind, like.pos)
    }

    /// After `value [NOT]`, at `IN`.
    fn in_set(&mut self, value: Node, negated: bool) -> Result<Node, Error> {
        let in_tok = self.bump();
        let open = self.expect(Tok::LParen, "after IN (a set such as ('a', 'b'))")?;
        if self.peek().tok == Tok::RParen {
            return Err(self.error(self.peek().pos, "the set after IN must not be empty"));
        }
        let set = self.list(&open)?;
        let kind = Kind::In {
            value: Box::new(value),
            set,
            negated,
        };
        self.node(kind, in_tok.pos)
    }

    /// `e1, e2, … )` after `open`.
    fn list(&mut self, open: &Token) -> Result<Vec<Node>, Error> {
        let mut items = Vec::new();
        loop {
            items.push(self.expr(0)?);
            let t = self.bump();
            match t.tok {
                Tok::Comma => continue,
                Tok::RParen => return Ok(items),
                other => {
                    return Err(self.error(
                        t.pos,
                        format!(
                            "expected ',' or ')' to close the '(' at {}, found {}",
                            open.pos,
                            other.describe()
                        ),
                    ));
                }
            }
        }
    }

    fn prefix(&mut self) -> Result<Node, Error> {
        let t = self.bump();
        match &t.tok {
            Tok::Int(n) => {
                let value = i32::try_from(*n)
                    .map_err(|_| self.error(t.pos, format!("integer {n} does not fit 32 bits")))?;
                self.node(Kind::Lit(Literal::Int(value)), t.pos)
            }
            Tok::Str(s) => self.node(Kind::Lit(Literal::Str(s.as_str().into())), t.pos),
            Tok::Minus => {
                if let Tok::Int(n) = self.peek().tok {
                    // A negative literal: this is how -2147483648 is written.
                    self.bump();
                    let value = i64::try_from(n)
                        .ok()
                        .and_then(|n| i32::try_from(-n).ok())
                        .ok_or_else(|| {
                            self.error(t.pos, format!("integer -{n} does not fit 32 bits"))
                        })?;
                    return self.node(Kind::Lit(Literal::Int(value)), t.pos);
                }
                let operand = self.operand(P_PREFIX, &t)?;
                self.node(Kind::Neg(Box::new(operand)), t.pos)
            }
            Tok::Plus => {
                let Tok::Int(n) = self.peek().tok else {
                    return Err(self.error(
                        t.pos,
                        "'+' can only sign an integer literal (there is no unary plus)",
                    ));
                };
                self.bump();
                let value = i32::try_from(n)
                    .map_err(|_| self.error(t.pos, format!("integer +{n} does not fit 32 bits")))?;
                self.node(Kind::Lit(Literal::Int(value)), t.pos)
            }
            Tok::LParen => {
                if self.peek().tok == Tok::RParen {
                    return Err(self.error(self.peek().pos, "empty parentheses"));
                }
                let inner = self.expr(0)?;
                let close = self.peek().clone();
                if close.tok != Tok::RParen {
                    return Err(self.error(
                        close.pos,
                        format!(
                            "expected ')' to close the '(' at {}, found {}",
                            t.pos,
                            close.tok.describe()
                        ),
                    ));
                }
                self.bump();
                Ok(inner)
            }
            Tok::Word(word) => self.word(word, t.pos),
            other => Err(self.error(
                t.pos,
                format!("expected an expression, found {}", other.describe()),
            )),
        }
    }

    fn word(&mut self, word: &str, pos: Pos) -> Result<Node, Error> {
        match keyword_of(&Tok::Word(word.to_string())) {
            Some("TRUE") => return self.node(Kind::Lit(Literal::Bool(true)), pos),
            Some("FALSE") => return self.node(Kind::Lit(Literal::Bool(false)), pos),
            Some("NOT") => {
                let operand = self.operand(
                    P_PREFIX,
                    &Token {
                        tok: Tok::Word("NOT".into()),
                        pos,
                    },
                )?;
                return self.node(Kind::Not(Box::new(operand)), pos);
            }
            Some("EXISTS") => {
                let t = self.bump();
                let name = match &t.tok {
                    Tok::Word(w) if keyword_of(&t.tok).is_none() => w.clone(),
                    other => {
                        return Err(self.error(
                            t.pos,
                            format!("EXISTS needs an attribute name, found {}", other.describe()),
                        ));
                    }
                };
                let attr = self.identifier(&name, t.pos)?;
                return self.node(Kind::Exists(attr), pos);
            }
            Some(other) => {
                return Err(self.error(
                    pos,
                    format!("expected an expression, found the keyword {other}"),
                ));
            }
            None => {}
        }
        if self.peek().tok == Tok::LParen {
            return self.call(word, pos);
        }
        let attr = self.identifier(word, pos)?;
        self.node(Kind::Attr(attr), pos)
    }

    fn identifier(&self, word: &str, pos: Pos) -> Result<Attr, Error> {
        if !word.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(self.error(
                pos,
                format!(
                    "{word:?} is not an attribute name: CloudEvents attribute names are letters \
                     and digits only"
                ),
            ));
        }
        Ok(Attr::from_name(&word.to_ascii_lowercase()))
    }

    fn call(&mut self, name: &str, pos: Pos) -> Result<Node, Error> {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
        if !valid {
            return Err(self.error(
                pos,
                format!("{name:?} is not a function name: letters and '_' only"),
            ));
        }
        let open = self.bump();
        let args = if self.peek().tok == Tok::RParen {
            self.bump();
            Vec::new()
        } else {
            self.list(&open)?
        };
        let func = functions::resolve(name, args.len()).ok();
        let kind = Kind::Call {
            name: name.into(),
            func,
            args,
        };
        self.node(kind, pos)
    }
}

#[cfg(test)]
mod tests;
