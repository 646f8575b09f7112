//! CloudEvents SQL (CESQL) v1.0.0: the expression language of Knative Trigger `cesql` filters.
//! Pure: text in, a compiled [`Expression`] out, evaluated against a [`CloudEvent`]; no I/O.
//! Hand-written because there is no CESQL crate for Rust (the Go implementation calls itself
//! work in progress); `tests/cesql_tck.rs` holds it to the CESQL TCK.
//!
//! * [`lexer`] → [`parser`] (precedence as in the spec's grammar, AND/OR/XOR right-associative
//!   on one level) → [`ast`] with attributes resolved, LIKE patterns precompiled ([`like`]) and
//!   calls bound to built-ins ([`functions`]).
//! * [`Expression::compile`] adds the static checks (unknown function or wrong arity) that
//!   `flowbridge check` reports with their line and column; [`Expression::parse`] leaves those to
//!   evaluation time (a MissingFunctionError), as the TCK expects.
//! * [`eval`] follows the spec's type system (Boolean, 32-bit Integer, String), implicit casts
//!   and error rules: every operator and function is total; an error makes the subexpression
//!   that saw it return its type's zero value, and the errors are reported next to the value.
//!   [`Expression::matches`] is the filter view: only `true` without any error matches.

mod ast;
mod eval;
mod functions;
mod lexer;
mod like;
mod parser;

use std::borrow::Cow;
use std::fmt;

use crate::model::CloudEvent;

/// A place in the expression text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// The error types the spec names (and the TCK's `error:` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Parse,
    Math,
    Cast,
    MissingAttribute,
    MissingFunction,
    FunctionEvaluation,
    Generic,
}

impl ErrorKind {
    /// The TCK's name for the kind (`parse`, `missingAttribute`, …).
    pub fn tck_name(self) -> &'static str {
        match self {
            ErrorKind::Parse => "parse",
            ErrorKind::Math => "math",
            ErrorKind::Cast => "cast",
            ErrorKind::MissingAttribute => "missingAttribute",
            ErrorKind::MissingFunction => "missingFunction",
            ErrorKind::FunctionEvaluation => "functionEvaluation",
            ErrorKind::Generic => "generic",
        }
    }
}

/// A compile-time or evaluation error, with where in the expression it arose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub pos: Pos,
    pub message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Error {
        Error {
            kind,
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Parse => "syntax error",
            ErrorKind::Math => "math error",
            ErrorKind::Cast => "cast error",
            ErrorKind::MissingAttribute => "missing attribute",
            ErrorKind::MissingFunction => "missing function",
            ErrorKind::FunctionEvaluation => "function error",
            ErrorKind::Generic => "error",
        };
        write!(f, "{what} at {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for Error {}

/// The CESQL primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Boolean,
    Integer,
    String,
}

impl Type {
    fn zero(self) -> Value<'static> {
        match self {
            Type::Boolean => Value::Bool(false),
            Type::Integer => Value::Int(0),
            Type::String => Value::Str(Cow::Borrowed("")),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Boolean => "Boolean",
            Type::Integer => "Integer",
            Type::String => "String",
        })
    }
}

/// A CESQL value; strings borrow from the expression or the event where they can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Bool(bool),
    Int(i32),
    Str(Cow<'a, str>),
}

impl Value<'_> {
    pub fn ty(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Boolean,
            Value::Int(_) => Type::Integer,
            Value::Str(_) => Type::String,
        }
    }

    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        }
    }
}

impl<'a> Value<'a> {
    /// The String form (the spec's Integer/Boolean → String casts, which cannot fail).
    #[inline]
    pub(crate) fn into_str(self) -> Cow<'a, str> {
        match self {
            Value::Str(s) => s,
            Value::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Value::Int(i) => Cow::Owned(i.to_string()),
        }
    }

    /// The integer held, 0 for other types (callers cast first).
    pub(crate) fn as_int(&self) -> i32 {
        match self {
            Value::Int(i) => *i,
            _ => 0,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The outcome of evaluating an expression: always a value, plus the errors that occurred
/// (empty when none did).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub value: Value<'static>,
    pub errors: Vec<Error>,
}

/// A parsed CESQL expression, ready to evaluate any number of times.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    root: ast::Node,
}

impl Expression {
    /// Parse only: calls that match no built-in stay in the tree and evaluate to `false` with a
    /// MissingFunctionError (the spec's runtime behaviour). Use [`Expression::compile`] to load.
    pub fn parse(source: &str) -> Result<Expression, Error> {
        let root = parser::parse(source)?;
        Ok(Expression {
            source: source.to_string(),
            root,
        })
    }

    /// Parse and check statically: a call to an unknown function, or with the wrong number of
    /// arguments, is an error pointing at the call.
    pub fn compile(source: &str) -> Result<Expression, Error> {
        let expression = Expression::parse(source)?;
        let mut first: Option<Error> = None;
        expression.root.walk(&mut |node| {
            if let ast::Kind::Call {
                name,
                func: None,
                args,
            } = &node.kind
                && first.is_none()
            {
                let message = functions::resolve(name, args.len())
                    .err()
                    .unwrap_or_else(|| format!("cannot call {name}"));
                first = Some(Error::new(ErrorKind::MissingFunction, node.pos, message));
            }
        });
        match first {
            Some(e) => Err(e),
            None => Ok(expression),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The type of the result when it is known without an event (`None` for a bare attribute,
    /// whose type depends on the event).
    pub fn result_type(&self) -> Option<Type> {
        eval::static_type(&self.root)
    }

    /// Evaluate in full: the value and every error seen (the TCK's view).
    pub fn evaluate(&self, event: &CloudEvent) -> Evaluation {
        let mut errors = Vec::new();
        let value = eval::eval(&self.root, event, &mut errors).into_owned();
        Evaluation { value, errors }
    }

    /// Filter semantics: `Ok(true)` only for a Boolean `true` without errors; a non-Boolean
    /// result is `Ok(false)`; the first error otherwise. Allocates nothing unless an error occurs.
    pub fn matches(&self, event: &CloudEvent) -> Result<bool, Error> {
        let mut errors = Vec::new();
        let value = eval::eval(&self.root, event, &mut errors);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(value == Value::Bool(true)),
        }
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
