//! CESQL evaluation against one event, following the spec's semantics:
//!
//! * Operands are cast implicitly to the operator's parameter types: `+ - * / %`, unary `-`,
//!   `< <= > >=` take Integers; `NOT`, `AND`, `OR`, `XOR` Booleans; `LIKE` a String; `=`, `!=`,
//!   `<>` cast the left operand to the right one's type, and `IN` casts each element to the left
//!   operand's type. String → Integer/Boolean casts can fail (CastError, value 0/false);
//!   Integer → Boolean is only explicit (`BOOL(x)`): implicitly it is a CastError (the TCK's
//!   `NOT 10`).
//! * A failed cast yields its zero value and the operator goes on with it. When an operand
//!   itself reported an error (a missing attribute, a math error, …), the operator does not
//!   compute: it returns the zero value of its own result type (`missing = 2` is `false`,
//!   `1 / missing` is `0`, not a division by zero). A bare attribute's type is unknown, so a
//!   missing one is `false`.
//! * `AND` and `OR` short-circuit, left to right.
//!
//! Strings borrow from the expression and the event; nothing is allocated unless a function is
//! called (its argument list, any new string), an Integer is turned into a String, or an error
//! is reported.
//!
//! Pure, like the rest of `cesql`: no I/O. Tests: `eval/tests.rs`.

use std::borrow::Cow;

use super::ast::{ArithOp, Attr, CmpOp, Kind, Literal, Node};
use super::functions::parse_bool;
use super::functions::parse_int;
use super::{Error, ErrorKind, Pos, Type, Value};
use crate::model::{CloudEvent, ExtValue};

/// The attribute's value, `None` when the event does not carry it.
#[inline]
fn attribute<'a>(event: &'a CloudEvent, attr: &Attr) -> Option<Value<'a>> {
    let borrowed = |s: &'a str| Some(Value::Str(Cow::Borrowed(s)));
    match attr {
        Attr::SpecVersion => borrowed(event.specversion.as_str()),
        Attr::Id => borrowed(&event.id),
        Attr::Source => borrowed(&event.source),
        Attr::Type => borrowed(&event.ty),
        Attr::Subject => event.subject.as_deref().and_then(borrowed),
        Attr::Time => event.time.as_deref().and_then(borrowed),
        Attr::DataContentType => event.datacontenttype.as_deref().and_then(borrowed),
        Attr::DataSchema => event.dataschema.as_deref().and_then(borrowed),
        Attr::Extension(name) => event.extensions.get(&**name).map(|v| match v {
            ExtValue::String(s) => Value::Str(Cow::Borrowed(s.as_str())),
            ExtValue::Bool(b) => Value::Bool(*b),
            // Integers beyond 32 bits are not CESQL Integers: they read as their String form.
            ExtValue::Integer(i) => {
                i32::try_from(*i).map_or_else(|_| Value::Str(Cow::Owned(i.to_string())), Value::Int)
            }
        }),
    }
}

#[cold]
#[inline(never)]
fn cast_error(errors: &mut Vec<Error>, pos: Pos, message: String) {
    errors.push(Error::new(ErrorKind::Cast, pos, message));
}

/// Implicit cast to Integer.
#[inline]
fn to_int(v: Value<'_>, pos: Pos, errors: &mut Vec<Error>) -> i32 {
    match v {
        Value::Int(i) => i,
        Value::Bool(b) => i32::from(b),
        Value::Str(s) => parse_int(&s).unwrap_or_else(|| {
            cast_error(errors, pos, format!("cannot cast {s:?} to an integer"));
            0
        }),
    }
}

/// Implicit cast to Boolean.
#[inline]
fn to_bool(v: Value<'_>, pos: Pos, errors: &mut Vec<Error>) -> bool {
    match v {
        Value::Bool(b) => b,
        Value::Str(s) => parse_bool(&s).unwrap_or_else(|| {
            cast_error(
                errors,
                pos,
                format!("cannot cast {s:?} to a boolean (true or false)"),
            );
            false
        }),
        Value::Int(i) => {
            cast_error(
                errors,
                pos,
                format!("the integer {i} is not a boolean (use BOOL({i}) to convert it)"),
            );
            false
        }
    }
}

#[inline]
fn cast<'a>(v: Value<'a>, ty: Type, pos: Pos, errors: &mut Vec<Error>) -> Value<'a> {
    match ty {
        Type::Integer => Value::Int(to_int(v, pos, errors)),
        Type::Boolean => Value::Bool(to_bool(v, pos, errors)),
        Type::String => Value::Str(v.into_str()),
    }
}

/// `l = r` with `l` cast to the type of `r`.
#[inline]
fn equal(l: Value<'_>, r: &Value<'_>, pos: Pos, errors: &mut Vec<Error>) -> bool {
    match r {
        Value::Int(b) => to_int(l, pos, errors) == *b,
        Value::Bool(b) => to_bool(l, pos, errors) == *b,
        Value::Str(b) => l.into_str() == *b,
    }
}

/// The result type when known without an event.
pub(crate) fn static_type(node: &Node) -> Option<Type> {
    match &node.kind {
        Kind::Lit(Literal::Bool(_)) => Some(Type::Boolean),
        Kind::Lit(Literal::Int(_)) => Some(Type::Integer),
        Kind::Lit(Literal::Str(_)) => Some(Type::String),
        Kind::Attr(_) => None,
        Kind::Neg(_) | Kind::Arith(..) => Some(Type::Integer),
        Kind::Call { func, .. } => Some(func.map_or(Type::Boolean, |f| f.return_type())),
        Kind::Exists(_)
        | Kind::Not(_)
        | Kind::Cmp(..)
        | Kind::And(_)
        | Kind::Or(_)
        | Kind::Xor(..)
        | Kind::Like { .. }
        | Kind::In { .. } => Some(Type::Boolean),
    }
}

/// Zero value of the node's result type (Boolean when unknown).
fn zero(node: &Node) -> Value<'static> {
    static_type(node).unwrap_or(Type::Boolean).zero()
}

/// Evaluate `node`; errors are appended to `errors`.
pub(crate) fn eval<'a>(
    node: &'a Node,
    event: &'a CloudEvent,
    errors: &mut Vec<Error>,
) -> Value<'a> {
    // Evaluate an operand; if it reported an error, this node yields its zero value.
    macro_rules! operand {
        ($n:expr) => {{
            let before = errors.len();
            let v = eval($n, event, errors);
            if errors.len() > before {
                return zero(node);
            }
            v
        }};
    }
    let pos = node.pos;
    match &node.kind {
        Kind::Lit(Literal::Bool(b)) => Value::Bool(*b),
        Kind::Lit(Literal::Int(i)) => Value::Int(*i),
        Kind::Lit(Literal::Str(s)) => Value::Str(Cow::Borrowed(s)),
        Kind::Attr(attr) => attribute(event, attr).unwrap_or_else(|| {
            errors.push(Error::new(
                ErrorKind::MissingAttribute,
                pos,
                format!("the event has no attribute {:?}", attr.name()),
            ));
            Value::Bool(false)
        }),
        Kind::Exists(attr) => Value::Bool(attribute(event, attr).is_some()),
        Kind::Not(x) => {
            let v = operand!(x);
            Value::Bool(!to_bool(v, pos, errors))
        }
        Kind::Neg(x) => {
            let v = operand!(x);
            let i = to_int(v, pos, errors);
            Value::Int(i.checked_neg().unwrap_or_else(|| {
                errors.push(Error::new(
                    ErrorKind::Math,
                    pos,
                    format!("-({i}) does not fit a 32-bit integer"),
                ));
                0
            }))
        }
        Kind::Arith(op, l, r) => {
            let l = operand!(l);
            let r = operand!(r);
            let (a, b) = (to_int(l, pos, errors), to_int(r, pos, errors));
            let result = match op {
                ArithOp::Add => a.checked_add(b),
                ArithOp::Sub => a.checked_sub(b),
                ArithOp::Mul => a.checked_mul(b),
                ArithOp::Div | ArithOp::Mod if b == 0 => {
                    errors.push(Error::new(ErrorKind::Math, pos, "division by zero"));
                    return Value::Int(0);
                }
                ArithOp::Div => a.checked_div(b),
                ArithOp::Mod => a.checked_rem(b),
            };
            Value::Int(result.unwrap_or_else(|| {
                errors.push(Error::new(
                    ErrorKind::Math,
                    pos,
                    format!("{a} {op:?} {b} overflows a 32-bit integer"),
                ));
                0
            }))
        }
        Kind::Cmp(op, l, r) => {
            let l = operand!(l);
            let r = operand!(r);
            Value::Bool(match op {
                CmpOp::Eq => equal(l, &r, pos, errors),
                CmpOp::NotEq => !equal(l, &r, pos, errors),
                _ => {
                    let (a, b) = (to_int(l, pos, errors), to_int(r, pos, errors));
                    match op {
                        CmpOp::Lt => a < b,
                        CmpOp::Le => a <= b,
                        CmpOp::Gt => a > b,
                        _ => a >= b,
                    }
                }
            })
        }
        Kind::And(items) => {
            for item in items {
                let v = operand!(item);
                if !to_bool(v, item.pos, errors) {
                    return Value::Bool(false);
                }
            }
            Value::Bool(true)
        }
        Kind::Or(items) => {
            for item in items {
                let v = operand!(item);
                if to_bool(v, item.pos, errors) {
                    return Value::Bool(true);
                }
            }
            Value::Bool(false)
        }
        Kind::Xor(l, r) => {
            let l = operand!(l);
            let r = operand!(r);
            Value::Bool(to_bool(l, pos, errors) != to_bool(r, pos, errors))
        }
        Kind::Like {
            value,
            pattern,
            negated,
        } => {
            let v = operand!(value);
            Value::Bool(pattern.matches(&v.into_str()) != *negated)
        }
        Kind::In {
            value,
            set,
            negated,
        } => {
            let v = operand!(value);
            let target = v.ty();
            let mut found = false;
            for item in set {
                let candidate = operand!(item);
                let candidate = cast(candidate, target, item.pos, errors);
                if equal(v.clone(), &candidate, pos, errors) {
                    found = true;
                    break;
                }
            }
            Value::Bool(found != *negated)
        }
        Kind::Call { name, func, args } => {
            let Some(func) = func else {
                let message = super::functions::resolve(name, args.len())
                    .err()
                    .unwrap_or_else(|| format!("cannot call {name}"));
                errors.push(Error::new(ErrorKind::MissingFunction, pos, message));
                return Value::Bool(false);
            };
            let mut values = Vec::with_capacity(args.len());
            for (i, arg) in args.iter().enumerate() {
                let v = operand!(arg);
                values.push(match func.param_type(i) {
                    Some(ty) => cast(v, ty, arg.pos, errors),
                    None => v,
                });
            }
            func.call(values, pos, errors)
        }
    }
}

#[cfg(test)]
mod tests;
