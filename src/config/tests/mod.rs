//! Tests of config loading, by topic; this file holds the helpers they share (parse YAML with a
//! given environment, collect the errors as `path: message` lines).
//!
//! * `load`: valid configs and defaults, the embedded default, YAML-level errors, every error
//!   at once in document order, compiler errors (the [`Compilers`] seam), the shipped examples.
//! * `top_level`: `listen`, `admin_listen`, `limits`, `unmatched` and the listener's `tls`.
//! * `gateway`: gateway URLs and names, delivery settings, `docarray`, `concurrency`.
//! * `route`: route names, filters, `reply`, `schema`.
//! * `auth`: `auth:` blocks and `webhooks:`.
//! * `state`: the `state:` block (shared state for replicas).

mod auth;
mod gateway;
mod load;
mod route;
mod state;
mod top_level;

use std::collections::BTreeMap;

use super::check::{Compilers, Context};
use super::*;
use crate::model::CloudEvent;

const GW: &str = "gateways:\n  default: {url: \"grpc://127.0.0.1:54321\"}\n";

fn parse_env(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |name: &str| vars.get(name).cloned();
    let ctx = Context {
        compilers: &Compilers::REAL,
        env: &env,
    };
    from_yaml_with(yaml, "test.yaml", &Overrides::default(), &ctx)
}

fn parse(yaml: &str) -> Result<Config, ConfigErrors> {
    parse_env(yaml, &[])
}

fn ok(yaml: &str) -> Config {
    match parse(yaml) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The errors as `path: message` lines (the line number left out; `lines_of` has them).
fn errors(yaml: &str) -> Vec<String> {
    errors_of(parse(yaml))
}

fn errors_of(result: Result<Config, ConfigErrors>) -> Vec<String> {
    match result {
        Ok(_) => panic!("expected errors, the config was accepted"),
        Err(ConfigErrors(errs)) => errs
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    }
}

/// Asserts there is exactly one error and it starts with `prefix`; returns it.
fn one_error(yaml: &str, prefix: &str) -> String {
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert!(
        errs[0].starts_with(prefix),
        "expected an error starting with {prefix:?}, got {:?}",
        errs[0]
    );
    errs[0].clone()
}

fn with_routes(routes: &str) -> String {
    format!("{GW}routes:\n{routes}")
}

fn event(ty: &str, source: &str) -> CloudEvent {
    CloudEvent::new("1", source, ty)
}
