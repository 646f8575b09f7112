//! CEL (cel-rust) programs over events: compile once at load, evaluate per event in a cheap child
//! scope of one root context. Converts CloudEvents and documents into CEL values and CEL results
//! back into JSON.
//!
//! * One process-wide [`Env`] (the standard library plus the `strings`, `lists`, `math` and
//!   `encoders` extensions) and one root [`Context`] over it are built on first use. Each
//!   evaluation opens a child scope of that root ([`Scope`]) and binds its variables there, so no
//!   per-event work rebuilds the function tables (see research/anchors.md §3.4).
//! * cel-rust has no type checker, so [`Program::compile`] does the checks it can statically:
//!   the syntax, every free identifier is one of the variables the caller allows (or a type name
//!   such as `int`), and every called function is declared in the environment.
//! * Values handed to CEL borrow the event (strings and bytes are not copied); results are
//!   converted straight from CEL values to [`serde_json::Value`] (bytes → base64 text).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use ::cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};
use ::cel::common::types::{
    CelBool, CelBytes, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelOptional,
    CelString, CelUInt, Kind,
};
use ::cel::common::value::Val;
use ::cel::{Context, Env, Value as CelValue};
use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::model::{CloudEvent, Data, ExtValue, SpecVersion};

/// The shared CEL environment: the standard library and the extension libraries.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Each extension only fails on a name it declares twice, which these four never do (a unit
    // test checks that their functions are callable).
    let _ = env.add_extension(::cel::extensions::strings);
    let _ = env.add_extension(::cel::extensions::lists);
    let _ = env.add_extension(::cel::extensions::math);
    let _ = env.add_extension(::cel::extensions::encoders);
    Arc::new(env)
});

/// The root context every evaluation scope is a child of; built once, shared by all threads.
static ROOT: LazyLock<Context<'static, 'static>> =
    LazyLock::new(|| Context::with_env(Arc::clone(&ENV)));

/// A CEL value as cel-rust evaluates it (re-exported so callers need not name the crate).
pub type CelVal<'v> = dyn Val + 'v;

/// A compiled and statically checked CEL program.
#[derive(Debug)]
pub struct Program {
    program: ::cel::Program,
    source: String,
}

impl Program {
    /// Parses `source` and checks that its free variables are among `variables` and that every
    /// function it calls exists. The error names the problem and its position
    /// (`line 1, column 5: ...`).
    pub fn compile(source: &str, variables: &[&str]) -> Result<Program, String> {
        let program = ENV.compile(source).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| {
                    let msg = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
                    format!(
                        "syntax error at line {}, column {}: {msg}",
                        e.pos.0, e.pos.1
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let mut checker = Checker {
            allowed: variables,
            info: program.source_info(),
            source,
            bound: Vec::new(),
            known_functions: HashSet::new(),
            errors: Vec::new(),
        };
        checker.walk(program.expression());
        if !checker.errors.is_empty() {
            return Err(checker.errors.join("; "));
        }
        Ok(Program {
            program,
            source: source.to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates in `scope` and hands the result to `f` (the result may borrow the bound values,
    /// so it only lives during the call). The error is cel-rust's runtime error as text.
    pub fn eval<'v, R>(
        &self,
        scope: &Scope<'v>,
        f: impl FnOnce(&CelVal<'v>) -> R,
    ) -> Result<R, String> {
        match CelValue::resolve_val(self.program.expression(), &scope.ctx) {
            Ok(value) => Ok(f(value.as_ref())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The source, shortened for error messages.
    pub fn short_source(&self) -> String {
        shorten(&self.source)
    }
}

/// Shortens an expression for use in an error message (bodies of error replies stay small).
pub fn shorten(source: &str) -> String {
    const MAX: usize = 80;
    let one_line: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// The variables of one evaluation: a child scope of the shared root context.
pub struct Scope<'v> {
    ctx: Context<'v, 'v>,
}

impl<'v> Scope<'v> {
    pub fn new() -> Scope<'v> {
        let root: &'v Context<'v, 'v> = &ROOT;
        Scope {
            ctx: root.new_inner_scope(),
        }
    }

    pub fn bind(&mut self, name: &str, value: Box<CelVal<'v>>) {
        self.ctx.add_variable_as_val(name, value);
    }
}

impl Default for Scope<'_> {
    fn default() -> Self {
        Scope::new()
    }
}

/// Walks a parsed program for names CEL would only reject at run time.
struct Checker<'a> {
    allowed: &'a [&'a str],
    info: &'a SourceInfo,
    source: &'a str,
    /// Comprehension variables in scope.
    bound: Vec<&'a str>,
    known_functions: HashSet<String>,
    errors: Vec<String>,
}

impl<'a> Checker<'a> {
    fn walk(&mut self, expr: &'a IdedExpr) {
        match &expr.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => self.ident(expr.id, name),
            Expr::Select(select) => {
                // `google.protobuf.Timestamp` and the like: a qualified type name.
                if let Some(name) = qualified_name(expr)
                    && ENV.types().find_type(&name).is_some()
                {
                    return;
                }
                self.walk(&select.operand);
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    // `base64.encode(x)`: a namespaced function, not a call on a variable.
                    if let Some(ns) = qualified_name(target) {
                        let full = format!("{ns}.{}", call.func_name);
                        if !self.is_bound_root(target) && self.function_exists(&full) {
                            for arg in &call.args {
                                self.walk(arg);
                            }
                            return;
                        }
                    }
                }
                if !is_operator(&call.func_name) && !self.function_exists(&call.func_name) {
                    let msg = format!("unknown function '{}'", call.func_name);
                    // The parser places a call at its `(`: point at the name instead.
                    self.error_at(expr.id, call.func_name.chars().count(), msg);
                }
                if let Some(target) = &call.target {
                    self.walk(target);
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            Expr::Comprehension(comp) => {
                self.walk(&comp.iter_range);
                self.walk(&comp.accu_init);
                let depth = self.bound.len();
                self.bound.push(&comp.iter_var);
                if let Some(v2) = &comp.iter_var2 {
                    self.bound.push(v2);
                }
                self.bound.push(&comp.accu_var);
                self.walk(&comp.loop_cond);
                self.walk(&comp.loop_step);
                self.walk(&comp.result);
                self.bound.truncate(depth);
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.walk(element);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.entry(&entry.expr);
                }
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    self.entry(&entry.expr);
                }
            }
        }
    }

    fn entry(&mut self, entry: &'a EntryExpr) {
        match entry {
            EntryExpr::StructField(field) => self.walk(&field.value),
            EntryExpr::MapEntry(map_entry) => {
                self.walk(&map_entry.key);
                self.walk(&map_entry.value);
            }
        }
    }

    fn ident(&mut self, id: u64, name: &str) {
        let known = name.starts_with('@')
            || self.bound.contains(&name)
            || self.allowed.contains(&name)
            || ENV.types().find_type(name).is_some();
        if !known {
            let available = if self.allowed.is_empty() {
                "none".to_string()
            } else {
                self.allowed.join(", ")
            };
            self.error(
                id,
                format!("unknown variable '{name}' (available: {available})"),
            );
        }
    }

    /// Whether the root identifier of a qualified name is a variable (then `a.f()` is a method).
    fn is_bound_root(&self, expr: &IdedExpr) -> bool {
        let mut cur = expr;
        loop {
            match &cur.expr {
                Expr::Select(select) => cur = &select.operand,
                Expr::Ident(name) => {
                    return self.bound.contains(&name.as_str())
                        || self.allowed.contains(&name.as_str());
                }
                _ => return false,
            }
        }
    }

    /// Declared in the environment? cel-rust has no public lookup by name, but adding a function
    /// to a throwaway context is refused exactly when the environment declares an overload of
    /// that name (global or member).
    fn function_exists(&mut self, name: &str) -> bool {
        if self.known_functions.contains(name) {
            return true;
        }
        let mut probe = Context::with_env(Arc::clone(&ENV));
        let exists = probe.add_function(name, |a: i64| a).is_err();
        if exists {
            self.known_functions.insert(name.to_string());
        }
        exists
    }

    fn error(&mut self, id: u64, message: String) {
        self.error_at(id, 0, message);
    }

    /// Records an error at the node `id`, moved `back` characters before a `(` it points at.
    fn error_at(&mut self, id: u64, back: usize, message: String) {
        let located = match self.info.offset_for(id) {
            Some((start, _)) => {
                let mut start = start as usize;
                if back > 0 && start >= back && self.source.chars().nth(start) == Some('(') {
                    start -= back;
                }
                let (line, column) = line_column(self.source, start);
                format!("line {line}, column {column}: {message}")
            }
            None => message,
        };
        self.errors.push(located);
    }
}

/// 1-based line and column of a character offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// `a.b.c` for an identifier or a chain of field selections on one.
fn qualified_name(expr: &IdedExpr) -> Option<String> {
    match &expr.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(select) if !select.test => {
            qualified_name(&select.operand).map(|prefix| format!("{prefix}.{}", select.field))
        }
        _ => None,
    }
}

/// Operators (`_+_`, `!_`, `@in`, ...) are built into the interpreter.
fn is_operator(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('@') || name == "!_" || name == "-_"
}

// ---------------------------------------------------------------------------------------------
// JSON and events → CEL

/// A JSON value as a CEL value, borrowing its strings. Integers that fit `i64` become `int`,
/// other numbers `double`.
pub fn json_to_val(value: &Value) -> Box<CelVal<'_>> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            let list: Vec<Box<CelVal<'_>>> = items.iter().map(json_to_val).collect();
            Box::new(CelList::from(list))
        }
        Value::Object(map) => {
            let mut out = HashMap::with_capacity(map.len());
            for (k, v) in map {
                out.insert(CelMapKey::from(k.as_str()), json_to_val(v));
            }
            Box::new(CelMap::from(out))
        }
    }
}

fn str_val(s: &str) -> Box<CelVal<'_>> {
    Box::new(CelString::from(s))
}

/// The name the JSON format gives `dataschema` in this spec version.
pub fn dataschema_key(version: SpecVersion) -> &'static str {
    match version {
        SpecVersion::V03 => "schemaurl",
        SpecVersion::V10 => "dataschema",
    }
}

/// The CloudEvent as CEL's `event`: the JSON format's shape. Optional attributes and extensions
/// appear only when present (so `has(event.subject)` works); `data` is JSON for JSON content, a
/// string for text, bytes otherwise, and absent without data.
pub fn event_to_val(event: &CloudEvent) -> Box<CelVal<'_>> {
    let mut map: HashMap<CelMapKey<'_>, Box<CelVal<'_>>> =
        HashMap::with_capacity(8 + event.extensions.len());
    // Extensions first: a (spec-violating) extension named like an attribute is overwritten.
    for (name, value) in &event.extensions {
        let value: Box<CelVal<'_>> = match value {
            ExtValue::String(s) => str_val(s),
            ExtValue::Bool(b) => Box::new(CelBool::from(*b)),
            ExtValue::Integer(i) => Box::new(CelInt::from(*i)),
        };
        map.insert(CelMapKey::from(name.as_str()), value);
    }
    map.insert(
        CelMapKey::from("specversion"),
        str_val(event.specversion.as_str()),
    );
    map.insert(CelMapKey::from("id"), str_val(&event.id));
    map.insert(CelMapKey::from("source"), str_val(&event.source));
    map.insert(CelMapKey::from("type"), str_val(&event.ty));
    let optional = [
        ("datacontenttype", &event.datacontenttype),
        (dataschema_key(event.specversion), &event.dataschema),
        ("subject", &event.subject),
        ("time", &event.time),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            map.insert(CelMapKey::from(key), str_val(value));
        }
    }
    if let Some(data) = &event.data {
        let value: Box<CelVal<'_>> = match data {
            Data::Json(v) => json_to_val(v),
            Data::Text(s) => str_val(s),
            Data::Binary(b) => Box::new(CelBytes::from(b.as_ref())),
        };
        map.insert(CelMapKey::from("data"), value);
    }
    Box::new(CelMap::from(map))
}

// ---------------------------------------------------------------------------------------------
// CEL → Rust

/// A CEL value seen as one of the shapes mappings care about.
pub enum View<'b, 'v> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(&'b str),
    Bytes(&'b [u8]),
    List(&'b [Box<CelVal<'v>>]),
    Map(&'b HashMap<CelMapKey<'v>, Box<CelVal<'v>>>),
    /// Anything else (timestamps, durations, types, ...).
    Other,
}

/// Looks at a CEL value. A present optional is seen through; an absent one is `Null`.
pub fn view<'b, 'v>(value: &'b CelVal<'v>) -> View<'b, 'v> {
    match value.get_type().kind() {
        Kind::NullType => View::Null,
        Kind::Boolean => value
            .downcast_ref::<CelBool>()
            .map_or(View::Other, |b| View::Bool(*b.inner())),
        Kind::Int => value
            .downcast_ref::<CelInt>()
            .map_or(View::Other, |i| View::Int(*i.inner())),
        Kind::UInt => value
            .downcast_ref::<CelUInt>()
            .map_or(View::Other, |u| View::UInt(*u.inner())),
        Kind::Double => value
            .downcast_ref::<CelDouble>()
            .map_or(View::Other, |d| View::Double(*d.inner())),
        Kind::String => value
            .downcast_ref::<CelString>()
            .map_or(View::Other, |s| View::String(s.inner())),
        Kind::Bytes => value
            .downcast_ref::<CelBytes>()
            .map_or(View::Other, |b| View::Bytes(b.inner())),
        Kind::List => value
            .downcast_ref::<CelList>()
            .map_or(View::Other, |l| View::List(l.inner())),
        Kind::Map => value
            .downcast_ref::<CelMap>()
            .map_or(View::Other, |m| View::Map(m.inner())),
        _ => match value.downcast_ref::<CelOptional>() {
            Some(opt) => match opt.option() {
                Some(inner) => view(inner),
                None => View::Null,
            },
            None => View::Other,
        },
    }
}

/// The CEL type name of a value, for error messages.
pub fn type_name(value: &CelVal<'_>) -> String {
    value.get_type().name().to_string()
}

/// A map key as a string: strings as they are, `int`/`uint`/`bool` keys in their decimal or
/// `true`/`false` form.
pub fn key_to_string(key: &CelMapKey<'_>) -> String {
    match key {
        CelMapKey::String(s) => s.inner().to_string(),
        CelMapKey::Int(i) => i.inner().to_string(),
        CelMapKey::UInt(u) => u.inner().to_string(),
        CelMapKey::Bool(b) => b.inner().to_string(),
    }
}

/// The key as `&str` when it is a string key.
pub fn key_str<'b>(key: &'b CelMapKey<'_>) -> Option<&'b str> {
    match key {
        CelMapKey::String(s) => Some(s.inner()),
        _ => None,
    }
}

/// Converts a CEL result to JSON: bytes become base64 text, map keys are stringified,
/// timestamps become RFC 3339 text and durations seconds (`"1.5s"`). Non-finite doubles and
/// values with no JSON form are errors.
pub fn val_to_json(value: &CelVal<'_>) -> Result<Value, String> {
    Ok(match view(value) {
        View::Null => Value::Null,
        View::Bool(b) => Value::Bool(b),
        View::Int(i) => Value::from(i),
        View::UInt(u) => Value::from(u),
        View::Double(d) => Value::Number(
            Number::from_f64(d).ok_or_else(|| format!("{d} has no JSON representation"))?,
        ),
        View::String(s) => Value::String(s.to_string()),
        View::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        View::List(items) => Value::Array(
            items
                .iter()
                .map(|item| val_to_json(item.as_ref()))
                .collect::<Result<_, _>>()?,
        ),
        View::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(key_to_string(k), val_to_json(v.as_ref())?);
            }
            Value::Object(out)
        }
        View::Other => other_to_json(value)?,
    })
}

/// The slow path: whatever cel-rust can turn into its owned `Value`.
fn other_to_json(value: &CelVal<'_>) -> Result<Value, String> {
    let owned = CelValue::try_from(value)
        .map_err(|_| format!("a {} has no JSON representation", type_name(value)))?;
    value_to_json(&owned)
}

fn value_to_json(value: &CelValue) -> Result<Value, String> {
    Ok(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(d) => Value::Number(
            Number::from_f64(*d).ok_or_else(|| format!("{d} has no JSON representation"))?,
        ),
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(&**b)),
        CelValue::List(items) => {
            Value::Array(items.iter().map(value_to_json).collect::<Result<_, _>>()?)
        }
        CelValue::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map.map.iter() {
                let key = match k {
                    ::cel::objects::Key::String(s) => s.to_string(),
                    ::cel::objects::Key::Int(i) => i.to_string(),
                    ::cel::objects::Key::Uint(u) => u.to_string(),
                    ::cel::objects::Key::Bool(b) => b.to_string(),
                };
                out.insert(key, value_to_json(v)?);
            }
            Value::Object(out)
        }
        CelValue::Timestamp(ts) => Value::String(ts.to_rfc3339()),
        CelValue::Duration(d) => {
            let secs = d.num_milliseconds() as f64 / 1000.0;
            Value::String(format!("{secs}s"))
        }
        other => return Err(format!("a {} has no JSON representation", other.type_of())),
    })
}

// ---------------------------------------------------------------------------------------------
// Route filter predicate

/// A CEL predicate over `event` (route filter `cel:`).
#[derive(Debug)]
pub struct Predicate {
    pub source: String,
    program: Program,
}

impl Predicate {
    /// Compile; the error names what is wrong (parse error with position, unknown function...).
    pub fn compile(source: &str) -> Result<Predicate, String> {
        let program = Program::compile(source, &["event"])?;
        Ok(Predicate {
            source: source.to_string(),
            program,
        })
    }

    /// Evaluate against an event. A non-bool result is an error.
    pub fn matches(&self, event: &CloudEvent) -> Result<bool, String> {
        let mut scope = Scope::new();
        scope.bind("event", event_to_val(event));
        let result = self
            .program
            .eval(&scope, |v| match view(v) {
                View::Bool(b) => Ok(b),
                _ => Err(type_name(v)),
            })
            .map_err(|e| format!("cel filter `{}`: {e}", self.program.short_source()))?;
        result.map_err(|ty| {
            format!(
                "cel filter `{}`: expected a bool result, got {ty}",
                self.program.short_source()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn event(data: Option<Data>) -> CloudEvent {
        CloudEvent {
            data,
            ..CloudEvent::new("e1", "/shop", "order.created")
        }
    }

    fn eval_json(source: &str, event: &CloudEvent) -> Result<Value, String> {
        let program = Program::compile(source, &["event"])?;
        let mut scope = Scope::new();
        scope.bind("event", event_to_val(event));
        program.eval(&scope, val_to_json)?
    }

    #[test]
    fn predicate_true_false() {
        let ev = event(Some(Data::Json(json!({"priority": 7}))));
        let p =
            Predicate::compile("event.data.priority > 5 && event.type == 'order.created'").unwrap();
        assert_eq!(p.matches(&ev), Ok(true));
        let p = Predicate::compile("event.data.priority > 10").unwrap();
        assert_eq!(p.matches(&ev), Ok(false));
    }

    #[test]
    fn predicate_runtime_error_and_non_bool_name_the_expression() {
        let ev = event(Some(Data::Json(json!({"priority": 7}))));
        let p = Predicate::compile("event.data.missing > 1").unwrap();
        let err = p.matches(&ev).unwrap_err();
        assert!(err.contains("event.data.missing > 1"), "{err}");
        assert!(err.contains("missing"), "{err}");
        let p = Predicate::compile("event.data.priority").unwrap();
        let err = p.matches(&ev).unwrap_err();
        assert!(err.contains("expected a bool result, got int"), "{err}");
        assert!(err.contains("`event.data.priority`"), "{err}");
    }

    #[test]
    fn has_subject_follows_presence() {
        let mut ev = event(None);
        let p = Predicate::compile("has(event.subject)").unwrap();
        assert_eq!(p.matches(&ev), Ok(false));
        ev.subject = Some("a.pdf".into());
        assert_eq!(p.matches(&ev), Ok(true));
        let p = Predicate::compile("has(event.data)").unwrap();
        assert_eq!(p.matches(&ev), Ok(false));
        // optional syntax works too
        let p = Predicate::compile("event.?time.orValue('none') == 'none'").unwrap();
        assert_eq!(p.matches(&ev), Ok(true));
    }

    #[test]
    fn event_shape_as_in_json_format() {
        let mut ev = event(Some(Data::Text("hello".into())));
        ev.time = Some("2024-01-01T00:00:00Z".into());
        ev.dataschema = Some("https://s".into());
        ev.extensions
            .insert("partition".into(), ExtValue::Integer(3));
        ev.extensions.insert("flag".into(), ExtValue::Bool(true));
        ev.extensions
            .insert("key".into(), ExtValue::String("k1".into()));
        let v = eval_json("event", &ev).unwrap();
        assert_eq!(
            v,
            json!({"specversion": "1.0", "id": "e1", "source": "/shop", "type": "order.created",
                   "time": "2024-01-01T00:00:00Z", "dataschema": "https://s",
                   "partition": 3, "flag": true, "key": "k1", "data": "hello"})
        );
        ev.specversion = SpecVersion::V03;
        let v = eval_json("event.schemaurl", &ev).unwrap();
        assert_eq!(v, json!("https://s"));
    }

    #[test]
    fn binary_data_is_bytes_and_json_numbers_are_typed() {
        let ev = event(Some(Data::Binary(Bytes::from_static(b"\x00\x01"))));
        assert_eq!(eval_json("type(event.data) == bytes", &ev), Ok(json!(true)));
        // bytes results become base64 text
        assert_eq!(eval_json("event.data", &ev), Ok(json!("AAE=")));
        let ev = event(Some(Data::Json(
            json!({"i": 5, "f": 1.5, "big": 18446744073709551615u64}),
        )));
        assert_eq!(
            eval_json(
                "[type(event.data.i) == int, type(event.data.f) == double, type(event.data.big) == double]",
                &ev
            ),
            Ok(json!([true, true, true]))
        );
    }

    #[test]
    fn json_roundtrip_and_key_stringification() {
        let ev = event(None);
        assert_eq!(
            eval_json("{1: 'a', true: 'b', 'k': [1u, 2.5, null, b'hi']}", &ev),
            Ok(json!({"1": "a", "true": "b", "k": [1, 2.5, null, "aGk="]}))
        );
        let err = eval_json("1.0 / 0.0", &ev).unwrap_err();
        assert!(err.contains("no JSON representation"), "{err}");
        assert_eq!(
            eval_json("timestamp('2024-01-01T00:00:00Z')", &ev),
            Ok(json!("2024-01-01T00:00:00+00:00"))
        );
    }

    #[test]
    fn extensions_are_available() {
        let ev = event(None);
        assert_eq!(
            eval_json("'a/b'.split('/').map(s, s.upperAscii())", &ev),
            Ok(json!(["A", "B"]))
        );
        assert_eq!(eval_json("base64.encode(b'hi')", &ev), Ok(json!("aGk=")));
        assert_eq!(eval_json("math.greatest(1, 3, 2)", &ev), Ok(json!(3)));
    }

    #[test]
    fn compile_checks_syntax_variables_and_functions() {
        let err = Program::compile("event.id == )", &["event"]).unwrap_err();
        assert!(
            err.starts_with("syntax error at line 1, column 13: mismatched input ')'"),
            "{err}"
        );
        let err = Program::compile("event.id +\n  )", &["event"]).unwrap_err();
        assert!(
            err.starts_with("syntax error at line 2, column 3:"),
            "{err}"
        );

        let err = Program::compile("evnt.id == 'x'", &["event"]).unwrap_err();
        assert_eq!(
            err,
            "line 1, column 1: unknown variable 'evnt' (available: event)"
        );

        let err = Program::compile("event.id.frobnicate()", &["event"]).unwrap_err();
        assert!(err.contains("unknown function 'frobnicate'"), "{err}");
        let err = Program::compile("size(event) > 0 && nope(1)", &["event"]).unwrap_err();
        assert!(err.contains("column 20: unknown function 'nope'"), "{err}");

        // comprehension variables, type names and namespaced functions are fine
        Program::compile(
            "event.data.items.map(i, {'t': i.title}).filter(x, type(x) == map) \
             .all(y, base64.encode(b'a') != '') && int(event.id) > 0",
            &["event"],
        )
        .unwrap();
        // a comprehension variable doesn't leak out of its comprehension
        let err = Program::compile("event.data.map(i, i) == i", &["event"]).unwrap_err();
        assert!(err.contains("unknown variable 'i'"), "{err}");
        // `docs` only where allowed
        assert!(Program::compile("docs", &["event"]).is_err());
        assert!(Program::compile("docs", &["event", "docs"]).is_ok());
    }

    #[test]
    fn compiled_programs_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Predicate>();
        assert_send_sync::<Program>();
        assert_send_sync::<Context<'static, 'static>>();
    }
}
