//! Raw config → typed [`Config`]: the top-level values (`listen`, `admin_listen`, `limits`,
//! `unmatched`, `shutdown_grace`, the listener's `tls`) here; each gateway, route, `auth:` block,
//! webhook and the `state:` block by its own file ([`super::gateway`], [`super::route`], [`super::auth`]), all with
//! the shared checkers of [`super::check`]. Every problem is recorded with its path instead of
//! stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use super::Config;
use super::check::{Context, duration, parse_admin_listen};
use super::gateway::gateway;
use super::path::{Path, Report};
use super::raw::{RawConfig, RawTls};
use super::route::route;
use crate::rules::{RuleSet, Unmatched};

/// `listen` when the file does not say.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// `admin_listen` when the file does not say. Not 9090/9091: in a Knative pod those belong to
/// the queue-proxy sidecar (autoscaler and user metrics; Serving reserves them with 8012, 8013,
/// 8022 and 8008), which shares the pod's network namespace.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9095";
/// `shutdown_grace` default (Knative's default `terminationGracePeriodSeconds` is the revision
/// timeout, 300 s; 30 s keeps a rolling update quick).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Validates `raw`; returns the config (warnings left empty, see `report.warnings`) when no error
/// was found.
pub(super) fn validate(raw: RawConfig, ctx: &Context<'_>, report: &mut Report) -> Option<Config> {
    let root = Path::root();

    let listen = listen(raw.listen.as_deref(), &root.key("listen"), report);
    let admin_listen =
        match parse_admin_listen(raw.admin_listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN)) {
            Ok(addr) => Some(addr),
            Err(message) => {
                report.error(root.key("admin_listen"), message);
                None
            }
        };

    let limits = super::limits::limits(raw.limits.as_ref(), &root.key("limits"), report);

    let unmatched = match raw.unmatched.as_deref() {
        None | Some("accept") => Some(Unmatched::Accept),
        Some("reject") => Some(Unmatched::Reject),
        Some(other) => {
            report.error(
                root.key("unmatched"),
                format!("expected `accept` or `reject`, got {other:?}"),
            );
            None
        }
    };

    let shutdown_grace = match &raw.shutdown_grace {
        None => Some(DEFAULT_SHUTDOWN_GRACE),
        Some(v) => duration(v, &root.key("shutdown_grace"), report),
    };

    let tls = match &raw.tls {
        None => Some(None),
        Some(t) => listener_tls(t, &root.key("tls"), report).map(Some),
    };

    let raw_gateways = raw.gateways.unwrap_or_default();
    if raw_gateways.is_empty() {
        report.error(
            root.key("gateways"),
            "at least one gateway is required, e.g. `gateways: {default: {url: grpc://127.0.0.1:54321}}`",
        );
    }
    let mut gateways = BTreeMap::new();
    for (name, gw) in &raw_gateways {
        if let Some(spec) = gateway(name, gw, &root.key("gateways").key(name), report) {
            gateways.insert(name.clone(), spec);
        }
    }
    let gateway_names: Vec<&str> = raw_gateways.keys().map(String::as_str).collect();

    let raw_routes = raw.routes.unwrap_or_default();
    if raw_routes.is_empty() {
        report.warn(
            root.key("routes"),
            "no routes: no event will match (each gets the `unmatched` answer)",
        );
    }
    let mut first_use: HashMap<String, usize> = HashMap::new();
    let mut routes = Vec::with_capacity(raw_routes.len());
    for (i, r) in raw_routes.iter().enumerate() {
        let path = root.key("routes").index(i);
        if let Some(name) = &r.name {
            if let Some(first) = first_use.get(name) {
                report.error(
                    path.key("name"),
                    format!("duplicate route name {name:?} (first used by routes[{first}])"),
                );
            } else {
                first_use.insert(name.clone(), i);
            }
        }
        if let Some(route) = route(r, &path, &gateway_names, ctx, report) {
            routes.push(route);
        }
    }

    let auth = super::auth::auth(raw.auth.as_ref(), &root.key("auth"), false, ctx, report);
    let webhooks =
        super::auth::webhooks(raw.webhooks.as_deref(), &root.key("webhooks"), ctx, report);
    let state = super::state::state(raw.state.as_ref(), &root.key("state"), ctx, report);

    if report.has_errors() {
        return None;
    }
    Some(Config {
        listen: listen?,
        admin_listen: admin_listen?,
        limits: limits?,
        unmatched: unmatched?,
        gateways,
        rules: RuleSet { routes },
        shutdown_grace: shutdown_grace?,
        auth: auth?,
        webhooks: webhooks?,
        tls: tls?,
        state: state?,
        warnings: Vec::new(),
    })
}

/// `tls:`: both files required; they are read and checked now (key fits certificate).
fn listener_tls(raw: &RawTls, path: &Path, report: &mut Report) -> Option<crate::tls::ServerTls> {
    let required = |value: &Option<String>, key: &str, report: &mut Report| match value
        .as_deref()
        .map(str::trim)
    {
        Some(v) if !v.is_empty() => Some(std::path::PathBuf::from(v)),
        _ => {
            report.error(
                path.key(key),
                "required with `tls`: a PEM file path, e.g. /etc/flowbridge/tls/tls.crt",
            );
            None
        }
    };
    let cert = required(&raw.cert_file, "cert_file", report);
    let key = required(&raw.key_file, "key_file", report);
    let client_ca = raw
        .client_ca_file
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let (cert, key) = (cert?, key?);
    match crate::tls::server_config(&cert, &key, client_ca.as_deref()) {
        Ok(tls) => Some(tls),
        Err(problems) => {
            for (field, message) in problems {
                report.error(path.key(field.key()), message);
            }
            None
        }
    }
}

fn listen(text: Option<&str>, path: &Path, report: &mut Report) -> Option<SocketAddr> {
    let text = text.unwrap_or(DEFAULT_LISTEN);
    match text.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            report.error(
                path.clone(),
                format!("expected IP:port such as 0.0.0.0:8080 or [::]:8080, got {text:?}"),
            );
            None
        }
    }
}
