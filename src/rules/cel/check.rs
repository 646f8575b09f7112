//! The static checks of a CEL program, which cel-rust (no type checker) would only fail at run
//! time: every free identifier is one of the variables the caller allows (or a type name such as
//! `int`), and every called function is declared in the environment. Errors carry the line and
//! column of the name they are about.
//!
//! Pure: no axum, tonic or tokio; it reads the parsed program and the environment it is given.

use std::collections::HashSet;
use std::sync::Arc;

use ::cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};
use ::cel::{Context, Env};

/// Every problem the checks find in `program` (parsed from `source`), located, in the order of
/// the walk; empty when it passes.
pub(super) fn check<'a>(
    env: &'a Arc<Env>,
    program: &'a ::cel::Program,
    source: &'a str,
    variables: &'a [&'a str],
) -> Vec<String> {
    let mut checker = Checker {
        env,
        allowed: variables,
        info: program.source_info(),
        source,
        bound: Vec::new(),
        known_functions: HashSet::new(),
        errors: Vec::new(),
    };
    checker.walk(program.expression());
    checker.errors
}

/// Walks a parsed program for names CEL would only reject at run time.
struct Checker<'a> {
    env: &'a Arc<Env>,
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
                    && self.env.types().find_type(&name).is_some()
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
            || self.env.types().find_type(name).is_some();
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
        let mut probe = Context::with_env(Arc::clone(self.env));
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
