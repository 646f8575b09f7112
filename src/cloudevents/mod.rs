//! The CloudEvents codec: the HTTP protocol binding (1.0 and 0.3; binary, structured and batched
//! mode) and the JSON event format, in both directions. Ingress decodes requests with it,
//! replies and `flowbridge send` encode events with it, `flowbridge load` builds its requests
//! with it and the fuzz targets check its invariants.
//!
//! Pure: only `http` (`HeaderMap`, `HeaderValue`), `bytes` and `serde_json` types; no I/O, no
//! axum, no tokio, nothing of routes, config or metrics. It sits right above [`crate::model`],
//! whose `CloudEvent` it builds; [`BindingError`] says 415 or 400 and `ingress/error.rs` turns it
//! into the response.
//!
//! Hand-written rather than cloudevents-sdk 0.9 (the Rust SDK's `cloudevents` crate), whose HTTP
//! binding the sink would otherwise use:
//! * unbounded body: its axum extractor reads the whole body (`usize::MAX` limit); here the
//!   ingress reads the body under its own limit (413) and hands over the bytes;
//! * no percent-decoding of header values: it takes `ce-*` values as they arrive, so
//!   `Euro%20%E2%82%AC` stays encoded (and it does not encode on the way out), where the binding
//!   says to decode one round;
//! * no batched mode (`application/cloudevents-batch+json`);
//! * lossy extension types: an extension value is a string, a boolean or any `i64`, where a
//!   CloudEvents Integer is signed 32-bit; events it accepts are refused by other SDKs.
//!
//! `tests/cloudevents_sdk.rs` runs the conformance fixtures and real senders' messages through
//! the SDK's binding beside this one and asserts these differences (docs/design.md).
//!
//! Decisions where the specs leave room (or where Knative's senders break them):
//! * Mode comes from `Content-Type` only (case-insensitive, parameters ignored, batch checked
//!   first). A CloudEvents media type with a format other than JSON is answered with
//!   [`BindingError::NotCloudEvent`] (415) instead of being forwarded as binary.
//! * Binary header values are decoded per the binding (unquote an RFC 7230 quoted-string, then one
//!   round of percent-decoding, the result must be UTF-8), but the raw UTF-8 bytes, literal spaces
//!   and stray `%` that sdk-go / sdk-java senders emit are accepted as they are. A value that a Go
//!   sender meant literally but that happens to contain `%XY` is decoded; that ambiguity is
//!   inherent in the wire format.
//! * `ce-datacontenttype` next to `Content-Type` is tolerated: `Content-Type` wins and a warning
//!   is returned. `ce-datacontenttype` alone is used as the content type (with a warning).
//! * `ce-datacontentencoding` (0.3) in binary mode is ignored with a warning: the body is the raw
//!   data. Flattened 0.3 map headers (`ce-x-y`) are ignored with a warning (no Map type here).
//! * `"data": null` in the JSON format means "no data", like `null` for every attribute.
//! * A `data` member that is not a string while `datacontenttype` is not JSON is rejected (the
//!   JSON format allows either; rejecting keeps `Data` unambiguous).
//! * `source` is only checked for being non-empty (URI-reference syntax is not enforced, matching
//!   sdk-go); control characters inside string values are not rejected.
//!
//! Children, each importing only those above it:
//! * `error`: [`BindingError`], the internal `Fault` and the message helpers (short, capped).
//! * `media`: media types: the `Content-Type` header, essence, JSON-ness, RFC 2046 shape.
//! * `attributes`: the attribute grammar and value rules, and `Partial`, the event builder.
//! * `json`: the JSON event format: one event, a structured body, a batch.
//! * `http`: the HTTP binding: mode detection, [`decode`], binary mode both ways, plain bodies.

mod attributes;
mod error;
mod http;
mod json;
mod media;

pub use self::error::BindingError;
pub use self::http::{
    Declared, Decoded, Inferred, Mode, ReadAs, decode, detect_mode, encode_binary, plain_body,
};
pub use self::json::{from_json, to_json};
pub use self::media::is_json_media_type;

#[cfg(test)]
mod tests;
