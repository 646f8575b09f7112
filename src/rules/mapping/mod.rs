//! Event → Jina request mapping: the default mapping (one document per event), CEL mappings for
//! `docs`, `parameters`, `endpoint`, `target_executor`, the document shape check, and the reply
//! `data` program.
//!
//! Rules a mapping follows (the README's config reference describes the same):
//! * `docs` yields one document map or a list of them. Keys a document may set: see
//!   [`DOCUMENT_FIELDS`]; anything else is a [`MappingError`] naming the path
//!   (`docs[1].embeding`) and listing the allowed keys. A `null` value counts as absent.
//! * Without `docs`, the default mapping makes one document per event from its data.
//! * Top-level documents without an id get `<event id>` (one document) or `<event id>/<index>`
//!   (several); nested `chunks`/`matches` without one get `<parent id>/chunks/<i>` or
//!   `<parent id>/matches/<i>`. Top-level ids must be unique within the request (results are
//!   matched back to their event by id).
//! * Every top-level document gets the event's context in `tags.cloudevent`, unless the mapping
//!   (or, for the default mapping, the event's JSON object) already set a `cloudevent` tag: what
//!   the user wrote wins.
//!
//! Pure and synchronous: no axum, tonic or tokio. Its parts:
//! * this file: the spec, [`Mapping::compile`] and [`Mapping::apply`] (endpoint, target
//!   executor, parameters, documents);
//! * `documents`: CEL values → [`Document`](crate::model::Document)s, the default document,
//!   ids and event context;
//! * `reply_data`: the `reply.data` program ([`ReplyData`]) and documents as JSON;
//! * `error`: [`FieldError`] (compile) and [`MappingError`] (apply).

mod documents;
mod error;
mod reply_data;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::model::{CloudEvent, FlowRequest};
use crate::rules::cel::{Program, Scope, View, event_to_val, type_name, val_to_json, view};
use documents::{default_document, docs_from_val, finish_documents};
use error::runtime_error;

pub use documents::{DOCUMENT_FIELDS, cloudevent_tag};
pub use error::{FieldError, MappingError};
pub use reply_data::{ReplyData, document_to_json, document_view};

/// A string setting that is either literal or computed by CEL (`{cel: "..."}` in YAML).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(String),
    Cel(String),
}

/// What the route's YAML says about the request (raw strings, not yet compiled).
#[derive(Debug, Clone, Default)]
pub struct MappingSpec {
    /// `None` means the default "/".
    pub endpoint: Option<Expr>,
    pub target_executor: Option<Expr>,
    /// CEL → map.
    pub parameters: Option<String>,
    /// CEL → document or list of documents.
    pub docs: Option<String>,
}

/// A compiled string setting.
#[derive(Debug)]
enum StrExpr {
    Literal(String),
    Cel(Program),
}

/// A compiled mapping; `Send + Sync`, shared by all requests.
#[derive(Debug)]
pub struct Mapping {
    pub spec: MappingSpec,
    endpoint: Option<StrExpr>,
    target_executor: Option<StrExpr>,
    parameters: Option<Program>,
    docs: Option<Program>,
}

impl Mapping {
    /// Compiles every CEL field; all problems are returned at once, each naming its field.
    pub fn compile(spec: &MappingSpec) -> Result<Mapping, Vec<FieldError>> {
        let mut errors = Vec::new();
        let endpoint = compile_str("endpoint", spec.endpoint.as_ref(), &mut errors);
        let target_executor = compile_str(
            "target_executor",
            spec.target_executor.as_ref(),
            &mut errors,
        );
        let parameters = compile_cel("parameters", spec.parameters.as_deref(), &mut errors);
        let docs = compile_cel("docs", spec.docs.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Mapping {
            spec: spec.clone(),
            endpoint,
            target_executor,
            parameters,
            docs,
        })
    }

    /// Builds the Flow request for one event.
    pub fn apply(&self, event: &CloudEvent) -> Result<FlowRequest, MappingError> {
        let uses_cel = self.docs.is_some()
            || self.parameters.is_some()
            || matches!(self.endpoint, Some(StrExpr::Cel(_)))
            || matches!(self.target_executor, Some(StrExpr::Cel(_)));
        let mut scope = Scope::new();
        if uses_cel {
            scope.bind("event", event_to_val(event));
        }

        let endpoint = eval_str("endpoint", self.endpoint.as_ref(), &scope)?
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let target_executor = eval_str("target_executor", self.target_executor.as_ref(), &scope)?
            .filter(|t| !t.is_empty());

        let parameters = match &self.parameters {
            None => Map::new(),
            Some(program) => program
                .eval(&scope, |v| match view(v) {
                    View::Null => Ok(Map::new()),
                    View::Map(_) => match val_to_json(v) {
                        Ok(Value::Object(map)) => Ok(map),
                        Ok(_) => Err(MappingError::new("parameters", "expected a map")),
                        Err(e) => Err(MappingError::new("parameters", e)),
                    },
                    _ => Err(MappingError::new(
                        "parameters",
                        format!("expected a map, got {}", type_name(v)),
                    )),
                })
                .map_err(|e| runtime_error("parameters", program, e))??,
        };

        let mut docs = match &self.docs {
            None => vec![default_document(event)],
            Some(program) => program
                .eval(&scope, docs_from_val)
                .map_err(|e| runtime_error("docs", program, e))??,
        };
        finish_documents(event, &mut docs)?;

        Ok(FlowRequest {
            endpoint,
            target_executor,
            parameters,
            docs,
        })
    }
}

fn compile_str(
    field: &'static str,
    expr: Option<&Expr>,
    errors: &mut Vec<FieldError>,
) -> Option<StrExpr> {
    match expr? {
        Expr::Literal(s) => Some(StrExpr::Literal(s.clone())),
        Expr::Cel(source) => compile_cel(field, Some(source), errors).map(StrExpr::Cel),
    }
}

fn compile_cel(
    field: &'static str,
    source: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<Program> {
    match Program::compile(source?, &["event"]) {
        Ok(program) => Some(program),
        Err(message) => {
            errors.push(FieldError { field, message });
            None
        }
    }
}

/// A literal, or a CEL result that must be a string (`null` = not set).
fn eval_str(
    field: &'static str,
    expr: Option<&StrExpr>,
    scope: &Scope<'_>,
) -> Result<Option<String>, MappingError> {
    match expr {
        None => Ok(None),
        Some(StrExpr::Literal(s)) => Ok(Some(s.clone())),
        Some(StrExpr::Cel(program)) => program
            .eval(scope, |v| match view(v) {
                View::String(s) => Ok(Some(s.to_string())),
                View::Null => Ok(None),
                _ => Err(MappingError::new(
                    field,
                    format!("expected a string, got {}", type_name(v)),
                )),
            })
            .map_err(|e| runtime_error(field, program, e))?,
    }
}
