//! `flowbridge check`: validates a config and prints one line per gateway, route, TLS listener,
//! shared state, auth and webhook (exit 0, or 64 listing every error); with `--probe`, asks each gateway what it
//! speaks and serves and checks the routes' literal endpoints against it (exit 2 when a gateway
//! cannot be reached or speaks another docarray than configured).
//!
//! Only prints: the config comes from `load` in `cli/mod.rs`, the probing from
//! [`crate::flow::probe`].

use std::process::ExitCode;

use super::args::{ConfigArgs, EXIT_PROBE, load};
use crate::rules::mapping::{Expr, MappingSpec};

/// `check`: the config as the server would load it, one line per part.
pub(super) fn check(args: &ConfigArgs) -> ExitCode {
    let config = match load(args, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in &config.warnings {
        println!("warning: {w}");
    }
    for (name, g) in &config.gateways {
        let rate = g.rate.map_or("unlimited".to_string(), |r| format!("{r}/s"));
        let mut extra = String::new();
        if let Some(ca) = &g.tls.ca_file {
            extra.push_str(&format!(", ca_file {}", ca.display()));
        }
        if let Some(name) = &g.tls.server_name {
            extra.push_str(&format!(", tls_server_name {name}"));
        }
        if let Some(a) = &g.autoscale {
            let max = if a.max_scale == 0 {
                "unlimited".to_string()
            } else {
                a.max_scale.to_string()
            };
            extra.push_str(&format!(", autoscale target {} max_scale {max}", a.target));
        }
        println!(
            "gateway {name}: {}, timeout {}, connect_timeout {}, concurrency {}, rate {rate}, \
             max_pending {}, batch max_docs {} max_bytes {} linger {}, retry {} backoff {}..{}{extra}",
            g.url,
            humantime::format_duration(g.timeout),
            humantime::format_duration(g.connect_timeout),
            g.concurrency,
            g.max_pending,
            g.batch.max_docs,
            g.batch.max_bytes,
            humantime::format_duration(g.batch.linger),
            g.retry.codes.join("|"),
            humantime::format_duration(g.retry.initial_backoff),
            humantime::format_duration(g.retry.max_backoff),
        );
    }
    for route in &config.rules.routes {
        let url = config
            .gateways
            .get(&route.gateway)
            .map_or("?", |g| g.url.as_str());
        let reply = route.reply.as_ref().map_or("no reply".to_string(), |r| {
            format!(
                "reply {}{}",
                r.ty,
                r.to.as_ref().map_or(String::new(), |to| format!(" → {to}"))
            )
        });
        let filters = if route.filters.is_empty() {
            "every event".to_string()
        } else {
            route
                .filters
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let dedup = route.dedup.map_or(String::new(), |d| {
            format!(", dedup {}", humantime::format_duration(d))
        });
        println!(
            "route {}: when {filters}; gateway {} ({url}), {}, {reply}{dedup}",
            route.name,
            route.gateway,
            describe_mapping(&route.mapping.spec),
        );
    }
    if let Some(tls) = &config.tls {
        println!(
            "tls: cert_file {}, key_file {}, {}",
            tls.cert_file.display(),
            tls.key_file.display(),
            tls.client_ca_file
                .as_ref()
                .map_or("no client certificates".to_string(), |ca| format!(
                    "client certificates required (client_ca_file {})",
                    ca.display()
                ))
        );
    }
    match &config.state {
        None => {
            let shared_would_matter = config.rules.routes.iter().any(|r| r.dedup.is_some())
                || config.gateways.values().any(|g| g.rate.is_some());
            if shared_would_matter {
                println!(
                    "state: per process (no state:): with several replicas, each has its own \
                     dedup windows and rate budgets (docs/delivery.md)"
                );
            }
        }
        Some(state) => println!(
            "state: redis {}{}, key_prefix {:?}, command_timeout {}, on_state_error dedup {} rate {}",
            state.url_for_logs(),
            state
                .ca_file
                .as_ref()
                .map_or(String::new(), |ca| format!(", ca_file {}", ca.display())),
            state.key_prefix,
            humantime::format_duration(state.command_timeout),
            state.on_state_error.dedup.as_str(),
            state.on_state_error.rate.as_str(),
        ),
    }
    println!(
        "auth POST /: {}",
        crate::auth::spec::describe(config.auth.as_ref())
    );
    for w in &config.webhooks {
        println!(
            "webhook {}: POST /webhooks/{} → type {}, source {}; auth {}",
            w.name,
            w.name,
            w.describe_type(),
            w.source,
            crate::auth::spec::describe(w.auth.as_ref().or(config.auth.as_ref())),
        );
    }
    println!(
        "ok: {} route(s), {} gateway(s), listen {}, unmatched {}",
        config.rules.routes.len(),
        config.gateways.len(),
        config.listen,
        match config.unmatched {
            crate::rules::Unmatched::Accept => "accept",
            crate::rules::Unmatched::Reject => "reject",
        }
    );
    ExitCode::SUCCESS
}

/// `check --probe`: ask every gateway, then check each route's literal endpoint against what its
/// gateway serves.
pub(super) async fn probe(args: ConfigArgs) -> ExitCode {
    let config = match load(&args, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut failed = false;
    for (name, spec) in &config.gateways {
        let report = crate::flow::probe::probe(spec).await;
        let gateway = match &report.gateway {
            Ok(g) => g,
            Err(e) => {
                println!("probe gateway {name} ({}): error: {e}", spec.url);
                failed = true;
                continue;
            }
        };
        println!(
            "probe gateway {name} ({}): {}, docarray {} ({}), jina {}, configured docarray: {}",
            spec.url,
            gateway.protocol,
            gateway.docarray.as_deref().unwrap_or("not reported"),
            gateway.format.as_str(),
            gateway.jina.as_deref().unwrap_or("not reported"),
            spec.docarray.as_str(),
        );
        let round_trip = report
            .round_trip
            .map(|t| format!("{:.1} ms", t.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "not measured".into());
        let limit = match spec.concurrency {
            crate::model::Concurrency::Fixed(n) => format!("fixed at {n} requests in flight"),
            crate::model::Concurrency::Auto { min, max } => format!(
                "auto, {min} to {max} requests in flight, starting at {}; the live limit, the \
                 reason of its last change, the no-load latency by batch size and the batch \
                 size are on /metrics (flowbridge_gateway_concurrency_limit…)",
                crate::dispatch::limit::Limiter::new(spec.concurrency).limit()
            ),
        };
        println!(
            "probe gateway {name}: status round trip {round_trip} (a floor for the no-load \
             latency); concurrency {limit}; batches up to {} docs / {} bytes",
            spec.batch.max_docs, spec.batch.max_bytes
        );
        if let Some(mismatch) = &report.mismatch {
            println!("probe gateway {name}: error: {mismatch}");
            failed = true;
        }
        match &report.endpoints {
            Ok(served) => println!(
                "probe gateway {name}: serves endpoints {}",
                served.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Err(why) => println!("probe gateway {name}: endpoints: {why}"),
        }
        let Ok(served) = &report.endpoints else {
            continue;
        };
        for route in config.rules.routes.iter().filter(|r| &r.gateway == name) {
            let endpoint = match &route.mapping.spec.endpoint {
                None => "/".to_owned(),
                Some(Expr::Literal(e)) => e.clone(),
                Some(Expr::Cel(_)) => {
                    println!(
                        "note: route {}: endpoint is computed per event (cel); not checked",
                        route.name
                    );
                    continue;
                }
            };
            match crate::flow::probe::check_endpoint(served, &endpoint) {
                Ok(None) => {}
                Ok(Some(note)) => println!("note: route {}: {note}", route.name),
                Err(warning) => println!("warning: route {}: {warning}", route.name),
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_PROBE)
    } else {
        ExitCode::SUCCESS
    }
}

/// One-line summary of a route's mapping for `check`.
fn describe_mapping(spec: &MappingSpec) -> String {
    let show = |e: &Expr| match e {
        Expr::Literal(s) => s.clone(),
        Expr::Cel(c) => format!("cel({c})"),
    };
    let mut parts = vec![format!(
        "endpoint {}",
        spec.endpoint.as_ref().map_or("/".to_string(), show)
    )];
    if let Some(t) = &spec.target_executor {
        parts.push(format!("target {}", show(t)));
    }
    parts.push(
        if spec.docs.is_some() {
            "docs: cel"
        } else {
            "docs: default mapping"
        }
        .to_string(),
    );
    if spec.parameters.is_some() {
        parts.push("parameters: cel".to_string());
    }
    parts.join(", ")
}
