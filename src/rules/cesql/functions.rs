//! CESQL built-in functions: the name/arity table the parser binds calls against (names are
//! case-insensitive) and their implementations. Every function is total: on bad input it returns
//! the value the spec names plus an error.

use std::borrow::Cow;

use super::{Error, ErrorKind, Pos, Type, Value};

/// A built-in, bound to one overload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Length,
    Concat,
    ConcatWs,
    Lower,
    Upper,
    Trim,
    Left,
    Right,
    Substring,
    Abs,
    Int,
    Bool,
    String,
    IsInt,
    IsBool,
}

/// Number of arguments a built-in takes.
#[derive(Debug, Clone, Copy)]
enum Arity {
    Exactly(usize),
    Either(usize, usize),
    AtLeast(usize),
}

const TABLE: &[(&str, Func, Arity)] = &[
    ("ABS", Func::Abs, Arity::Exactly(1)),
    ("BOOL", Func::Bool, Arity::Exactly(1)),
    ("CONCAT", Func::Concat, Arity::AtLeast(0)),
    ("CONCAT_WS", Func::ConcatWs, Arity::AtLeast(1)),
    ("INT", Func::Int, Arity::Exactly(1)),
    ("IS_BOOL", Func::IsBool, Arity::Exactly(1)),
    ("IS_INT", Func::IsInt, Arity::Exactly(1)),
    ("LEFT", Func::Left, Arity::Exactly(2)),
    ("LENGTH", Func::Length, Arity::Exactly(1)),
    ("LOWER", Func::Lower, Arity::Exactly(1)),
    ("RIGHT", Func::Right, Arity::Exactly(2)),
    ("STRING", Func::String, Arity::Exactly(1)),
    ("SUBSTRING", Func::Substring, Arity::Either(2, 3)),
    ("TRIM", Func::Trim, Arity::Exactly(1)),
    ("UPPER", Func::Upper, Arity::Exactly(1)),
];

/// Bind `name(args…)` to a built-in, or say why there is none (a MissingFunctionError).
pub(crate) fn resolve(name: &str, arity: usize) -> Result<Func, String> {
    let upper = name.to_ascii_uppercase();
    let Some((canonical, func, expected)) = TABLE.iter().find(|(n, _, _)| *n == upper) else {
        let names: Vec<&str> = TABLE.iter().map(|(n, _, _)| *n).collect();
        return Err(format!(
            "unknown function {name} (the CESQL built-ins are {})",
            names.join(", ")
        ));
    };
    let (ok, wanted) = match *expected {
        Arity::Exactly(n) => (arity == n, format!("{n}")),
        Arity::Either(a, b) => (arity == a || arity == b, format!("{a} or {b}")),
        Arity::AtLeast(n) => (arity >= n, format!("at least {n}")),
    };
    let plural = |s: &str| {
        if s.ends_with(" 1") || s == "1" {
            "argument"
        } else {
            "arguments"
        }
    };
    if ok {
        Ok(*func)
    } else {
        Err(format!(
            "{canonical} takes {wanted} {}, found {arity}",
            plural(&wanted)
        ))
    }
}

impl Func {
    pub(crate) fn return_type(self) -> Type {
        match self {
            Func::Length | Func::Abs | Func::Int => Type::Integer,
            Func::Bool | Func::IsInt | Func::IsBool => Type::Boolean,
            Func::Concat
            | Func::ConcatWs
            | Func::Lower
            | Func::Upper
            | Func::Trim
            | Func::Left
            | Func::Right
            | Func::Substring
            | Func::String => Type::String,
        }
    }

    /// Type the `i`-th argument is implicitly cast to; `None` takes any type as it is.
    pub(crate) fn param_type(self, i: usize) -> Option<Type> {
        match self {
            Func::Int | Func::Bool | Func::String => None,
            Func::Abs => Some(Type::Integer),
            Func::Left | Func::Right | Func::Substring if i > 0 => Some(Type::Integer),
            _ => Some(Type::String),
        }
    }

    /// Apply to arguments already cast to [`Func::param_type`] (the parser checked the arity).
    pub(crate) fn call<'a>(
        self,
        args: Vec<Value<'a>>,
        pos: Pos,
        errors: &mut Vec<Error>,
    ) -> Value<'a> {
        let mut fail = |kind: ErrorKind, msg: String| errors.push(Error::new(kind, pos, msg));
        let mut args = args.into_iter();
        let mut next = || args.next().unwrap_or(Value::Bool(false));
        match self {
            Func::Length => {
                let n = next().into_str().chars().count();
                Value::Int(i32::try_from(n).unwrap_or(i32::MAX))
            }
            Func::Concat => {
                let mut out = String::new();
                for a in args {
                    out.push_str(&a.into_str());
                }
                Value::Str(Cow::Owned(out))
            }
            Func::ConcatWs => {
                let delimiter = next().into_str();
                let mut out = String::new();
                for (i, a) in args.enumerate() {
                    if i > 0 {
                        out.push_str(&delimiter);
                    }
                    out.push_str(&a.into_str());
                }
                Value::Str(Cow::Owned(out))
            }
            Func::Lower => Value::Str(Cow::Owned(next().into_str().to_lowercase())),
            Func::Upper => Value::Str(Cow::Owned(next().into_str().to_uppercase())),
            Func::Trim => match next().into_str() {
                Cow::Borrowed(s) => Value::Str(Cow::Borrowed(s.trim())),
                Cow::Owned(s) => Value::Str(Cow::Owned(s.trim().to_string())),
            },
            Func::Left | Func::Right => {
                let s = next().into_str();
                let n = next().as_int();
                let Ok(n) = usize::try_from(n) else {
                    let name = if self == Func::Left { "LEFT" } else { "RIGHT" };
                    fail(
                        ErrorKind::FunctionEvaluation,
                        format!("{name}: the length must not be negative, found {n}"),
                    );
                    return Value::Str(s);
                };
                let len = s.chars().count();
                if len <= n {
                    return Value::Str(s);
                }
                let out: String = if self == Func::Left {
                    s.chars().take(n).collect()
                } else {
                    s.chars().skip(len - n).collect()
                };
                Value::Str(Cow::Owned(out))
            }
            Func::Substring => {
                let s = next().into_str();
                let pos_arg = next().as_int();
                let len_arg = args.next().map(|v| v.as_int());
                match substring(&s, pos_arg, len_arg) {
                    Ok(out) => Value::Str(Cow::Owned(out)),
                    Err(msg) => {
                        fail(ErrorKind::FunctionEvaluation, format!("SUBSTRING: {msg}"));
                        Value::Str(Cow::Borrowed(""))
                    }
                }
            }
            Func::Abs => {
                let x = next().as_int();
                match x.checked_abs() {
                    Some(a) => Value::Int(a),
                    None => {
                        fail(
                            ErrorKind::Math,
                            format!("ABS({x}) does not fit a 32-bit integer"),
                        );
                        Value::Int(i32::MAX)
                    }
                }
            }
            Func::Int => match next() {
                Value::Int(i) => Value::Int(i),
                Value::Bool(b) => Value::Int(i32::from(b)),
                Value::Str(s) => Value::Int(parse_int(&s).unwrap_or_else(|| {
                    fail(ErrorKind::Cast, format!("cannot cast {s:?} to an integer"));
                    0
                })),
            },
            Func::Bool => match next() {
                Value::Bool(b) => Value::Bool(b),
                Value::Int(i) => Value::Bool(i != 0),
                Value::Str(s) => Value::Bool(parse_bool(&s).unwrap_or_else(|| {
                    fail(
                        ErrorKind::Cast,
                        format!("cannot cast {s:?} to a boolean (true or false)"),
                    );
                    false
                })),
            },
            Func::String => Value::Str(next().into_str()),
            Func::IsInt => Value::Bool(parse_int(&next().into_str()).is_some()),
            Func::IsBool => Value::Bool(parse_bool(&next().into_str()).is_some()),
        }
    }
}

/// SUBSTRING with 1-based `pos` (negative: from the end; 0: empty) and optional `len`.
fn substring(s: &str, pos: i32, len: Option<i32>) -> Result<String, String> {
    let count = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    let p = i64::from(pos);
    if p > count || p < -count {
        return Err(format!(
            "position {pos} is outside the string (length {count})"
        ));
    }
    if let Some(l) = len.filter(|l| *l < 0) {
        return Err(format!("the length must not be negative, found {l}"));
    }
    if p == 0 {
        return Ok(String::new());
    }
    let start = if p > 0 { p - 1 } else { count + p };
    let start = usize::try_from(start).unwrap_or(0);
    let chars = s.chars().skip(start);
    Ok(match len {
        Some(l) => chars.take(usize::try_from(l).unwrap_or(0)).collect(),
        None => chars.collect(),
    })
}

/// String → Integer cast: optional sign, base-10 digits, 32-bit.
pub(crate) fn parse_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok()
}

/// String → Boolean cast: `true` or `false` in any case.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_is_case_insensitive_and_checks_arity() {
        assert_eq!(resolve("concat_ws", 1), Ok(Func::ConcatWs));
        assert_eq!(resolve("Substring", 3), Ok(Func::Substring));
        assert_eq!(
            resolve("CONCAT_WS", 0),
            Err("CONCAT_WS takes at least 1 argument, found 0".to_string())
        );
        assert_eq!(
            resolve("substring", 1),
            Err("SUBSTRING takes 2 or 3 arguments, found 1".to_string())
        );
        assert!(
            resolve("NOPE", 1)
                .expect_err("unknown")
                .starts_with("unknown function NOPE")
        );
    }

    #[test]
    fn substring_edges() {
        assert_eq!(substring("Sakila", -3, None).as_deref(), Ok("ila"));
        assert_eq!(substring("Sakila", -5, Some(3)).as_deref(), Ok("aki"));
        assert_eq!(substring("abcdef", 6, None).as_deref(), Ok("f"));
        assert_eq!(substring("abcdef", 2, Some(100)).as_deref(), Ok("bcdef"));
        assert!(substring("abcdef", 7, None).is_err());
        assert!(substring("abcdef", 1, Some(-1)).is_err());
        assert!(substring("", 0, None).is_ok());
    }

    #[test]
    fn casts_from_strings() {
        assert_eq!(parse_int("+42"), Some(42));
        assert_eq!(parse_int("-2147483648"), Some(i32::MIN));
        assert_eq!(parse_int("2147483648"), None);
        assert_eq!(parse_int(" 1"), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_bool("TrUe"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
