//! `flowbridge send`: builds one CloudEvent from the flags, POSTs it (binary mode, or structured
//! with `--structured`), and prints the status with the reply event or the error body as JSON.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::{EXIT_CONFIG, SendArgs};
use crate::cloudevents;
use crate::model::{CloudEvent, Data, ExtValue, now_timestamp};

/// Whether a content type is JSON (`*/json` or `*/*+json`, parameters ignored).
fn is_json_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.ends_with("/json") || essence.ends_with("+json")
}

/// Build the event `send` posts.
pub fn event_from_args(args: &SendArgs) -> Result<CloudEvent, String> {
    let mut extensions = std::collections::BTreeMap::new();
    for kv in &args.ext {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--ext {kv:?}: expected NAME=VALUE"))?;
        extensions.insert(k.to_string(), ExtValue::String(v.to_string()));
    }
    let raw: Option<Vec<u8>> = match (&args.data, &args.data_file) {
        (Some(d), _) => Some(d.clone().into_bytes()),
        (None, Some(f)) => {
            Some(std::fs::read(f).map_err(|e| format!("--data-file {}: {e}", f.display()))?)
        }
        (None, None) => None,
    };
    let content_type = match (&args.content_type, &raw) {
        (Some(ct), _) => Some(ct.clone()),
        (None, None) => None,
        (None, Some(bytes)) => {
            if serde_json::from_slice::<Value>(bytes).is_ok() {
                Some("application/json".to_string())
            } else if args.data.is_some() {
                return Err("--data is not valid JSON; pass --content-type for other data".into());
            } else {
                Some("application/octet-stream".to_string())
            }
        }
    };
    let data = match (raw, &content_type) {
        (None, _) => None,
        (Some(bytes), Some(ct)) if is_json_type(ct) => Some(Data::Json(
            serde_json::from_slice(&bytes).map_err(|e| format!("data is not valid JSON: {e}"))?,
        )),
        (Some(bytes), Some(ct)) if ct.to_ascii_lowercase().starts_with("text/") => {
            Some(Data::Text(
                String::from_utf8(bytes).map_err(|_| "text data is not valid UTF-8".to_string())?,
            ))
        }
        (Some(bytes), _) => Some(Data::Binary(bytes.into())),
    };
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    Ok(CloudEvent {
        datacontenttype: content_type,
        subject: args.subject.clone(),
        time: Some(now_timestamp()),
        extensions,
        data,
        ..CloudEvent::new(id, &args.source, &args.ty)
    })
}

pub(super) async fn send(args: SendArgs) -> ExitCode {
    let event = match event_from_args(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // https:// targets: the system's roots (SSL_CERT_FILE / SSL_CERT_DIR honoured).
    let client = match crate::tls::https_client(None, None).and_then(|b| {
        b.build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut request = client.post(&args.url);
    if args.structured {
        request = request
            .header("content-type", "application/cloudevents+json")
            .body(cloudevents::to_json(&event).to_string());
    } else {
        let (headers, body) = cloudevents::encode_binary(&event);
        request = request.headers(headers).body(body);
    }
    if !args.no_reply {
        request = request.header("prefer", "reply");
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: POST {}: {}",
                args.url,
                crate::tls::describe_error(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    let mut out = json!({"status": status.as_u16(), "id": event.id, "reply": null});
    if status.is_success() {
        if !body.is_empty() || headers.contains_key("ce-specversion") {
            match cloudevents::decode(&headers, &body) {
                Ok(decoded) => {
                    out["reply"] = decoded
                        .events
                        .first()
                        .map_or(Value::Null, cloudevents::to_json);
                }
                Err(e) => out["reply_error"] = json!(e.to_string()),
            }
        }
    } else {
        out["error"] =
            serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
