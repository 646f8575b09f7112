//! `flowbridge explain`: for each event read from a file or stdin (structured-mode JSON, an
//! array read as a batch), which route it matches, why the routes before it did not, and the
//! exact Jina request the route's mapping makes of it. No gateway is called.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::{ExplainArgs, load};
use crate::cloudevents;
use crate::config::Config;
use crate::model::CloudEvent;
use crate::rules::mapping::document_to_json;

/// The text of `name`, or of stdin for `-`.
fn read_input(name: &str) -> Result<String, String> {
    if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(Path::new(name)).map_err(|e| format!("{name}: {e}"))
    }
}

/// The explain result for one event: route name and request, exactly as it would be sent, and
/// `trace`: each route tried, in order, with the filter that rejected it (index, rendering and
/// any `cel`/`cesql` evaluation error) or, for the route chosen, the filters that all matched.
pub fn explain_event(config: &Config, event: &CloudEvent) -> Result<Value, Value> {
    let trace: Vec<Value> = config
        .rules
        .trace(event)
        .iter()
        .map(|t| {
            let route = t.route;
            match &t.failure {
                None => json!({
                    "route": route.name,
                    "matched": true,
                    "filters": route.filters.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                }),
                Some(failure) => {
                    let mut entry = json!({
                        "route": route.name,
                        "matched": false,
                        "filter": failure.index,
                        "failed": route
                            .filters
                            .get(failure.index)
                            .map(|f| f.to_string()),
                    });
                    if let Some(error) = &failure.error {
                        entry["error"] = json!(error);
                    }
                    entry
                }
            }
        })
        .collect();
    let Some(route) = config.rules.route(event) else {
        return Ok(json!({"route": null, "request": null, "trace": trace}));
    };
    if let Some(Err(e)) = route.schema.as_ref().map(|s| s.check(event)) {
        return Err(json!({"route": route.name, "error": e.to_string(), "trace": trace}));
    }
    match route.mapping.apply(event) {
        Ok(request) => Ok(json!({
            "route": route.name,
            "request": {
                "endpoint": request.endpoint,
                "target_executor": request.target_executor,
                "parameters": request.parameters,
                "docs": request.docs.iter().map(document_to_json).collect::<Vec<_>>(),
            },
            "trace": trace,
        })),
        Err(e) => Err(json!({"route": route.name, "error": e.to_string(), "trace": trace})),
    }
}

pub(super) fn explain(args: &ExplainArgs) -> ExitCode {
    let config = match load(&args.config, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut failed = false;
    for name in &args.events {
        let events = read_input(name).and_then(|text| {
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
            match &value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        cloudevents::from_json(v).map_err(|e| format!("{name}[{i}]: {e}"))
                    })
                    .collect(),
                _ => cloudevents::from_json(&value)
                    .map(|e| vec![e])
                    .map_err(|e| format!("{name}: {e}")),
            }
        });
        match events {
            Ok(events) => {
                for event in &events {
                    let out = explain_event(&config, event).unwrap_or_else(|e| {
                        failed = true;
                        e
                    });
                    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
