//! Validation of one `routes[i]` entry: name, gateway (one of the validated ones), filters
//! (`exact`, `prefix`, `suffix`, `all`, `any`, `not`, `cel`, `cesql`, compiled now), the mapping
//! (`endpoint`, `target_executor`, `parameters`, `docs`), `reply` (with `to:` read from the
//! environment), `dedup` and `schema` (read and compiled now). Also the loop warning: a reply
//! the route's own filters would match again. Knows nothing of gateways but their names.

use serde_norway::Value;

use super::check::{Context, NAME_RULE, duration, http_url, is_valid_name, show};
use super::path::{Path, Report};
use super::raw::{RawFilter, RawReply, RawRoute};
use crate::rules::filter::{Filter, is_valid_attribute_name};
use crate::rules::mapping::{Expr, MappingSpec};
use crate::rules::schema::DataSchema;
use crate::rules::{DEFAULT_REPLY_TIMEOUT, ReplySpec, Route};

/// Validates one route against the names of the gateways; `None` when errors were reported.
pub(super) fn route(
    raw: &RawRoute,
    path: &Path,
    gateways: &[&str],
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Route> {
    let errors_before = report.errors.len();

    let name = match raw.name.as_deref() {
        None => {
            report.error(
                path.key("name"),
                "required: every route needs a unique name",
            );
            None
        }
        Some(n) if !is_valid_name(n) => {
            report.error(
                path.key("name"),
                format!("invalid route name {n:?}: {NAME_RULE}"),
            );
            None
        }
        Some(n) => Some(n.to_string()),
    };

    let mut filters = Vec::new();
    for (j, f) in raw.filters.iter().flatten().enumerate() {
        if let Some(filter) = filter(f, &path.key("filters").index(j), ctx, report) {
            filters.push(filter);
        }
    }

    let gateway = match raw.gateway.as_deref() {
        Some(g) if gateways.contains(&g) => Some(g.to_string()),
        Some(g) => {
            let known = if gateways.is_empty() {
                "no gateways are defined".to_string()
            } else {
                format!("known: {}", gateways.join(", "))
            };
            report.error(
                path.key("gateway"),
                format!("unknown gateway {g:?} ({known})"),
            );
            None
        }
        None => match gateways {
            [only] => Some((*only).to_string()),
            // Already reported at `gateways`.
            [] => None,
            several => {
                report.error(
                    path.key("gateway"),
                    format!(
                        "required when several gateways are defined (known: {})",
                        several.join(", ")
                    ),
                );
                None
            }
        },
    };

    let spec = MappingSpec {
        endpoint: expr(raw.endpoint.as_ref(), &path.key("endpoint"), report),
        target_executor: expr(
            raw.target_executor.as_ref(),
            &path.key("target_executor"),
            report,
        ),
        parameters: raw.parameters.clone(),
        docs: raw.docs.clone(),
    };
    let mapping = match (ctx.compilers.mapping)(&spec) {
        Ok(m) => Some(m),
        Err(field_errors) => {
            for fe in field_errors {
                let mut p = path.clone();
                for part in fe.field.split('.') {
                    p = p.key(part);
                }
                report.error(p, fe.message);
            }
            None
        }
    };

    let reply = match &raw.reply {
        None => None,
        Some(r) => reply(r, name.as_deref(), &path.key("reply"), ctx, report),
    };
    if let (Some(reply_ty), Some(rs)) = (raw.reply.as_ref().and_then(|r| r.ty.as_deref()), &reply)
        && reply_may_loop(&filters, reply_ty, &rs.source)
    {
        report.warn(
            path.key("reply").key("type"),
            format!(
                "this route's filters also match its own reply ({reply_ty:?}): a Broker would \
                 deliver the reply back to this route in a loop; give the reply a type the \
                 filters exclude"
            ),
        );
    }

    let dedup = match &raw.dedup {
        None | Some(Value::Null) => Some(None),
        Some(v) => duration(v, &path.key("dedup"), report).map(Some),
    };

    let schema = match &raw.schema {
        None | Some(Value::Null) => Some(None),
        Some(v) => data_schema(v, &path.key("schema"), report).map(Some),
    };

    if report.errors.len() > errors_before {
        return None;
    }
    Some(Route {
        name: name?,
        gateway: gateway?,
        filters,
        schema: schema?,
        mapping: mapping?,
        reply,
        dedup: dedup?,
    })
}

/// `schema:` — a file (JSON, or YAML, which JSON is a subset of) or an inline mapping, compiled.
fn data_schema(value: &Value, path: &Path, report: &mut Report) -> Option<DataSchema> {
    let (schema, file): (serde_json::Value, Option<&str>) = match value {
        Value::String(file) => {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => {
                    report.error(path.clone(), format!("cannot read schema file {file}: {e}"));
                    return None;
                }
            };
            match serde_norway::from_str::<serde_json::Value>(&text) {
                Ok(schema) => (schema, Some(file.as_str())),
                Err(e) => {
                    report.error(
                        path.clone(),
                        format!("schema file {file} is not JSON or YAML: {e}"),
                    );
                    return None;
                }
            }
        }
        Value::Mapping(_) | Value::Bool(_) => match serde_json::to_value(value) {
            Ok(schema) => (schema, None),
            Err(e) => {
                report.error(path.clone(), format!("cannot read the inline schema: {e}"));
                return None;
            }
        },
        other => {
            report.error(
                path.clone(),
                format!(
                    "expected a schema file path or an inline JSON Schema mapping, got {}",
                    show(other)
                ),
            );
            return None;
        }
    };
    match (DataSchema::compile(&schema), file) {
        (Ok(compiled), Some(file)) => Some(compiled.from_file(file)),
        (Ok(compiled), None) => Some(compiled),
        (Err(e), file) => {
            let origin = file.map(|f| format!("{f}: ")).unwrap_or_default();
            report.error(path.clone(), format!("{origin}{e}"));
            None
        }
    }
}

/// `endpoint` / `target_executor`: a string, or `{cel: expression}`.
fn expr(value: Option<&Value>, path: &Path, report: &mut Report) -> Option<Expr> {
    let bad = "expected a string or {cel: expression}";
    match value? {
        Value::String(s) if s.is_empty() => {
            report.error(path.clone(), "must not be empty");
            None
        }
        Value::String(s) => Some(Expr::Literal(s.clone())),
        Value::Mapping(m) => {
            let keys: Vec<String> = m.keys().map(key_text).collect();
            if keys != ["cel"] {
                report.error(
                    path.clone(),
                    format!("{bad}; found keys {}", keys.join(", ")),
                );
                return None;
            }
            match m.get("cel") {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(Expr::Cel(s.clone())),
                _ => {
                    report.error(path.key("cel"), "expected a CEL expression (a string)");
                    None
                }
            }
        }
        _ => {
            report.error(path.clone(), bad);
            None
        }
    }
}

fn reply(
    raw: &RawReply,
    route_name: Option<&str>,
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<ReplySpec> {
    let ty = match raw.ty.as_deref().map(str::trim) {
        None | Some("") => {
            report.error(
                path.key("type"),
                "required: the type of the reply event, e.g. com.example.order.indexed",
            );
            None
        }
        Some(t) => Some(t.to_string()),
    };
    let source = match raw.source.as_deref().map(str::trim) {
        Some("") => {
            report.error(path.key("source"), "must not be empty");
            None
        }
        Some(s) => Some(s.to_string()),
        None => route_name.map(|n| format!("/flowbridge/{n}")),
    };
    let data = match (ctx.compilers.reply_data)(raw.data.as_deref()) {
        Ok(d) => Some(d),
        Err(msg) => {
            report.error(path.key("data"), msg);
            None
        }
    };
    let to = match raw.to.as_deref() {
        None => Some(None),
        Some(t) => match sink(t, ctx.env) {
            Ok(url) => Some(Some(url)),
            Err(msg) => {
                report.error(path.key("to"), msg);
                None
            }
        },
    };
    let timeout = match &raw.timeout {
        None => Some(DEFAULT_REPLY_TIMEOUT),
        Some(v) => duration(v, &path.key("timeout"), report),
    };
    Some(ReplySpec {
        ty: ty?,
        source: source?,
        data: data?,
        to: to?,
        timeout: timeout?,
    })
}

/// `reply.to`: an http(s) URL, or `$NAME` / `${NAME}` read from the environment now.
fn sink(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let Some(var) = text.trim().strip_prefix('$') else {
        return http_url(text);
    };
    let name = var
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(var);
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{text:?} is not a valid environment variable reference"
        ));
    }
    match env(name) {
        None => Err(format!(
            "environment variable {name} is not set (a Knative SinkBinding sets K_SINK)"
        )),
        Some(v) if v.trim().is_empty() => Err(format!("environment variable {name} is empty")),
        Some(v) => http_url(&v).map_err(|e| format!("${name}: {e}")),
    }
}

/// Whether the route's own filters would also accept its reply event. Only the filters that
/// always apply (top level and inside `all`, possibly under one `not`) on `type` and `source`
/// are judged; `any`, `cel`, `cesql` and other attributes are not decidable here and are ignored. A route
/// without filters matches everything, its reply included; otherwise at least one judged filter
/// must be on `type`.
fn reply_may_loop(filters: &[Filter], reply_type: &str, reply_source: &str) -> bool {
    /// `(attribute, accepts reply)` for each judged filter.
    fn walk(filters: &[Filter], ty: &str, source: &str, out: &mut Vec<(bool, bool)>) {
        for f in filters {
            match f {
                Filter::All(inner) => walk(inner, ty, source, out),
                Filter::Not(inner) => {
                    if let Some((on_type, accepts)) = judge(inner, ty, source) {
                        out.push((on_type, !accepts));
                    }
                }
                other => out.extend(judge(other, ty, source)),
            }
        }
    }
    /// `(is on type, accepts the reply)` for an attribute filter on `type` or `source`.
    fn judge(f: &Filter, ty: &str, source: &str) -> Option<(bool, bool)> {
        let (attribute, value, test): (&str, &str, fn(&str, &str) -> bool) = match f {
            Filter::Exact { attribute, value } => (attribute, value, |a, v| a == v),
            Filter::Prefix { attribute, value } => (attribute, value, |a, v| a.starts_with(v)),
            Filter::Suffix { attribute, value } => (attribute, value, |a, v| a.ends_with(v)),
            _ => return None,
        };
        match attribute {
            "type" => Some((true, test(ty, value))),
            "source" => Some((false, test(source, value))),
            _ => None,
        }
    }
    if filters.is_empty() {
        return true;
    }
    let mut judged = Vec::new();
    walk(filters, reply_type, reply_source, &mut judged);
    judged.iter().any(|(on_type, _)| *on_type) && judged.iter().all(|(_, accepts)| *accepts)
}

const DIALECTS: &str = "exact, prefix, suffix, all, any, not, cel, cesql";

fn filter(raw: &RawFilter, path: &Path, ctx: &Context<'_>, report: &mut Report) -> Option<Filter> {
    let present: Vec<&str> = [
        ("exact", raw.exact.is_some()),
        ("prefix", raw.prefix.is_some()),
        ("suffix", raw.suffix.is_some()),
        ("all", raw.all.is_some()),
        ("any", raw.any.is_some()),
        ("not", raw.not.is_some()),
        ("cel", raw.cel.is_some()),
        ("cesql", raw.cesql.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    match present.as_slice() {
        [] => {
            report.error(
                path.clone(),
                format!("empty filter: needs exactly one of {DIALECTS}"),
            );
            return None;
        }
        [_] => {}
        several => {
            report.error(
                path.clone(),
                format!(
                    "a filter holds exactly one dialect, found {}; put them in separate \
                     entries (all must match) or inside `all`/`any`",
                    several.join(" and ")
                ),
            );
            return None;
        }
    }

    if let Some(v) = &raw.exact {
        let (attribute, value) = attribute_value(v, &path.key("exact"), report)?;
        return Some(Filter::Exact { attribute, value });
    }
    if let Some(v) = &raw.prefix {
        let (attribute, value) = attribute_value(v, &path.key("prefix"), report)?;
        return Some(Filter::Prefix { attribute, value });
    }
    if let Some(v) = &raw.suffix {
        let (attribute, value) = attribute_value(v, &path.key("suffix"), report)?;
        return Some(Filter::Suffix { attribute, value });
    }
    if let Some(list) = &raw.all {
        return filter_list(list, &path.key("all"), ctx, report).map(Filter::All);
    }
    if let Some(list) = &raw.any {
        return filter_list(list, &path.key("any"), ctx, report).map(Filter::Any);
    }
    if let Some(inner) = &raw.not {
        return filter(inner, &path.key("not"), ctx, report).map(|f| Filter::Not(Box::new(f)));
    }
    if let Some(source) = &raw.cel {
        return match (ctx.compilers.predicate)(source) {
            Ok(p) => Some(Filter::Cel(p)),
            Err(msg) => {
                report.error(path.key("cel"), msg);
                None
            }
        };
    }
    let source = raw.cesql.as_deref().unwrap_or_default();
    match cesql_filter(source) {
        Ok(expression) => Some(Filter::Cesql(expression)),
        Err(msg) => {
            report.error(path.key("cesql"), msg);
            None
        }
    }
}

/// Compile a `cesql` filter: syntax, known functions and arities, and a result that can be
/// Boolean (a filter matches only on `true`). Messages carry the line and column.
fn cesql_filter(source: &str) -> Result<crate::rules::cesql::Expression, String> {
    use crate::rules::cesql::{Expression, Type};
    let expression = Expression::compile(source).map_err(|e| e.to_string())?;
    match expression.result_type() {
        Some(ty) if ty != Type::Boolean => Err(format!(
            "a filter expression must be Boolean, this one is {ty} (e.g. compare it: `... = 'x'`)"
        )),
        _ => Ok(expression),
    }
}

fn filter_list(
    list: &[RawFilter],
    path: &Path,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Vec<Filter>> {
    if list.is_empty() {
        report.error(path.clone(), "needs at least one filter");
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, raw) in list.iter().enumerate() {
        match filter(raw, &path.index(i), ctx, report) {
            Some(f) => out.push(f),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The single `attribute: value` pair of an `exact`/`prefix`/`suffix` filter (Knative allows
/// exactly one per filter, and neither name nor value may be empty).
fn attribute_value(value: &Value, path: &Path, report: &mut Report) -> Option<(String, String)> {
    let example = "e.g. {type: com.example.created}";
    let Value::Mapping(map) = value else {
        report.error(
            path.clone(),
            format!("expected one attribute and its value, {example}"),
        );
        return None;
    };
    let mut entries = map.iter();
    let (key, val) = match (entries.next(), map.len()) {
        (Some(entry), 1) => entry,
        (None, _) => {
            report.error(path.clone(), format!("needs one attribute, {example}"));
            return None;
        }
        (Some(_), n) => {
            let keys: Vec<String> = map.keys().map(key_text).collect();
            report.error(
                path.clone(),
                format!(
                    "has {n} attributes ({}); Knative allows exactly one per filter, so list \
                     them as separate filters (all must match)",
                    keys.join(", ")
                ),
            );
            return None;
        }
    };
    let name = key_text(key);
    if !is_valid_attribute_name(&name) {
        report.error(
            path.key(&name),
            "attribute names are lower-case letters and digits (CloudEvents attributes such as \
             type, source, subject, or extension names)",
        );
        return None;
    }
    let text = match val {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => {
            report.error(path.key(&name), "expected a string value");
            return None;
        }
    };
    if text.is_empty() {
        report.error(path.key(&name), "the value must not be empty");
        return None;
    }
    Some((name, text))
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        _ => "<complex key>".to_string(),
    }
}
