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
//!
//! Pure and synchronous: no axum, tonic or tokio. Its parts:
//! * this file: the environment, [`Program`], [`Scope`] and the route filter [`Predicate`];
//! * `check`: the static checks [`Program::compile`] runs on a parsed program;
//! * `value`: JSON and events → CEL values, CEL results → [`View`] and JSON.

mod check;
#[cfg(test)]
mod tests;
mod value;

use std::sync::{Arc, LazyLock};

use ::cel::{Context, Env, Value as CelValue};

use crate::model::CloudEvent;

pub use value::{
    CelVal, View, dataschema_key, event_to_val, json_to_val, key_str, key_to_string, type_name,
    val_to_json, view,
};

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
        let errors = check::check(&ENV, &program, source, variables);
        if !errors.is_empty() {
            return Err(errors.join("; "));
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
