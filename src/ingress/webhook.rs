//! Plain webhooks → CloudEvents: a `webhooks:` entry turns a request that is not a CloudEvent
//! (a GitHub push, …) into one, which then runs the normal routes.
//!
//! * `type`: the configured type, with `{header}` replaced by the value of `type_header`
//!   (`com.github.{header}` + `X-GitHub-Event: push` → `com.github.push`);
//! * `source`: from the config; `id`: the `id_header` value (`X-GitHub-Delivery`), else a fresh
//!   UUID; `subject`: the `subject_header` value when set and present;
//! * `datacontenttype`: the request's `Content-Type`; data: the body, parsed as JSON when the
//!   content type is JSON, text for `text/*`, bytes otherwise, and without a content type JSON
//!   if it parses, else UTF-8 text, else bytes; `time`: when it was received.
//!
//! Pure (no I/O); errors are messages the ingress answers with 400.

use bytes::Bytes;
use http::HeaderMap;

use crate::auth::spec::WebhookSpec;
use crate::cloudevents;
use crate::model::{CloudEvent, SpecVersion};

/// Longest header value echoed in a message.
const MAX_ECHO: usize = 60;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| format!("header {name} is not visible ASCII")),
    }
}

/// The CloudEvent of one webhook request.
pub fn to_event(
    spec: &WebhookSpec,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<CloudEvent, String> {
    let ty = match &spec.type_header {
        Some(name) => {
            let Some(value) = header(headers, name)? else {
                return Err(format!(
                    "header {name} is missing (it gives the event type)"
                ));
            };
            if value.chars().any(char::is_control) || value.len() > 256 {
                let shown: String = value.chars().take(MAX_ECHO).collect();
                return Err(format!("header {name} {shown:?} cannot be an event type"));
            }
            spec.ty.replace("{header}", value)
        }
        None => spec.ty.clone(),
    };
    let id = match &spec.id_header {
        Some(name) => header(headers, name)?.map(str::to_string),
        None => None,
    }
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let subject = match &spec.subject_header {
        Some(name) => header(headers, name)?.map(str::to_string),
        None => None,
    };
    let (datacontenttype, data) =
        cloudevents::plain_body(headers, body).map_err(|e| e.to_string())?;
    Ok(CloudEvent {
        specversion: SpecVersion::V10,
        id,
        source: spec.source.clone(),
        ty,
        datacontenttype,
        dataschema: None,
        subject,
        time: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        extensions: Default::default(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Data;

    fn github() -> WebhookSpec {
        WebhookSpec {
            name: "github".into(),
            source: "https://github.com/acme/shop".into(),
            ty: "com.github.{header}".into(),
            type_header: Some("x-github-event".into()),
            id_header: Some("x-github-delivery".into()),
            subject_header: None,
            auth: None,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn github_push_becomes_an_event() {
        let h = headers(&[
            ("x-github-event", "push"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("content-type", "application/json"),
        ]);
        let e = to_event(
            &github(),
            &h,
            &Bytes::from_static(br#"{"ref":"refs/heads/main"}"#),
        )
        .unwrap();
        assert_eq!(e.ty, "com.github.push");
        assert_eq!(e.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(e.source, "https://github.com/acme/shop");
        assert_eq!(e.datacontenttype.as_deref(), Some("application/json"));
        assert_eq!(
            e.data,
            Some(Data::Json(serde_json::json!({"ref": "refs/heads/main"})))
        );
        assert!(e.time.is_some());
    }

    #[test]
    fn fixed_type_uuid_id_subject_and_errors() {
        let mut spec = github();
        spec.type_header = None;
        spec.ty = "com.example.hook".into();
        spec.subject_header = Some("x-subject".into());
        let h = headers(&[("content-type", "text/plain"), ("x-subject", "orders/1")]);
        let e = to_event(&spec, &h, &Bytes::from_static(b"hi")).unwrap();
        assert_eq!(e.ty, "com.example.hook");
        assert_eq!(e.id.len(), 36, "a UUID: {}", e.id);
        assert_eq!(e.subject.as_deref(), Some("orders/1"));
        assert_eq!(e.data, Some(Data::Text("hi".into())));

        let missing = to_event(&github(), &headers(&[]), &Bytes::new()).unwrap_err();
        assert_eq!(
            missing,
            "header x-github-event is missing (it gives the event type)"
        );
        let bad_json = to_event(
            &github(),
            &headers(&[
                ("x-github-event", "push"),
                ("content-type", "application/json"),
            ]),
            &Bytes::from_static(b"{not json"),
        )
        .unwrap_err();
        assert!(bad_json.contains("not valid JSON"), "{bad_json}");
    }
}
