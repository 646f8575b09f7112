//! One Flow request and its answer, independent of the transport: what a request carries
//! ([`RequestHead`], the checked documents [`PreparedDocs`]), what the caller wants back
//! ([`Answer`]), how an attempt fails ([`SendError`]), and the DataRequest of the gRPC and
//! WebSocket gateways as raw protobuf (`RawRequest`: the shared fields, the documents as bytes
//! in the gateway's docarray format) both ways. No network and no retry logic here.

use super::docarray::{ids, v1, v2};
use super::error::FlowError;
use super::format::DocFormat;
use super::proto::jina::HeaderProto;
use super::proto::jina::status_proto::StatusCode;
use crate::model::{Document, FlowResponse};

/// The `DataRequestProto` fields every docarray build shares, with `data` (field 4, a message in
/// both builds) as its encoded bytes: the same bytes on the wire as either typed build.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RawRequest {
    #[prost(message, optional, tag = "1")]
    pub header: Option<HeaderProto>,
    #[prost(message, optional, tag = "2")]
    pub parameters: Option<prost_types::Struct>,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// A response read as [`RawRequest`] (routes, field 3, are skipped).
pub(crate) type RawResponse = RawRequest;

/// What the caller needs of the Flow's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The documents, decoded (a reply is built from them).
    Documents,
    /// Only the documents' ids (to match them to events): the documents come back with nothing
    /// but their id set, and decoding costs a fraction (gRPC and WebSocket gateways; an HTTP
    /// gateway's JSON is read whole either way).
    Ids,
}

/// How one attempt ended without a usable response.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Failed before the gateway accepted the request (connect error, or a retryable code before
    /// any response header): safe to try again. The text describes the cause.
    NotAccepted(String),
    /// Final: the gateway had the request, or the failure is not retryable.
    Failed(FlowError),
}

/// One event's documents, checked once (every document must be expressible in docarray v1, the
/// strictest format, so an event behaves the same on every gateway), with their encoded size as
/// docarray v1 protobuf. Made by [`FlowClient::prepare`](super::FlowClient::prepare).
#[derive(Debug, Clone)]
pub struct PreparedDocs {
    pub(super) docs: Vec<Document>,
    /// The same documents encoded once here as entries of a docarray v1 `DocumentArrayProto`
    /// (`docarray::wire_v1`), sent as they are to a v1 gRPC gateway (the common case); other
    /// formats convert `docs` when sending.
    pub(super) v1: Vec<u8>,
}

impl PreparedDocs {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Encoded size of the documents in bytes (protobuf length, framing included).
    pub fn encoded_len(&self) -> usize {
        self.v1.len()
    }

    /// The document ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.docs.iter().map(|d| d.id.as_str())
    }

    /// The documents.
    pub fn docs(&self) -> &[Document] {
        &self.docs
    }
}

/// What a Flow request carries besides its documents; requests with equal heads can share one
/// DataRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHead {
    pub endpoint: String,
    pub target_executor: Option<String>,
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// The DataRequest of one Flow request, its documents encoded in `format` (v1 from the bytes
/// `prepare` already wrote).
pub(crate) fn data_request(
    format: DocFormat,
    head: &RequestHead,
    v1: &[&[u8]],
    docs: &[&Document],
    request_id: &str,
) -> Result<RawRequest, SendError> {
    let data = match format {
        DocFormat::V1 => Ok(v1::encode_array(v1.iter().copied())),
        DocFormat::V2 => v2::encode_data(docs.iter().copied()),
    }
    .map_err(|e| SendError::Failed(FlowError::invalid_request(e.to_string())))?;
    Ok(RawRequest {
        header: Some(HeaderProto {
            request_id: request_id.to_owned(),
            status: None,
            exec_endpoint: Some(head.endpoint.clone()),
            target_executor: head.target_executor.clone(),
            timeout: None,
        }),
        parameters: Some(v1::json_to_struct(&head.parameters)),
        data,
    })
}

/// The Flow's answer to a DataRequest of gateway `gateway` (gRPC or WebSocket): an executor
/// error, or the documents decoded from `format`.
pub(crate) fn finish(
    gateway: &str,
    format: DocFormat,
    answer: RawResponse,
    want: Answer,
) -> Result<FlowResponse, SendError> {
    if let Some(error) = executor_error(answer.header.as_ref()) {
        return Err(SendError::Failed(error));
    }
    let docs = match (want, format) {
        (Answer::Ids, _) => ids::decode_ids(format, &answer.data).map(|ids| {
            ids.into_iter()
                .map(|id| Document {
                    id,
                    ..Document::default()
                })
                .collect()
        }),
        (Answer::Documents, DocFormat::V1) => v1::decode_data(&answer.data),
        (Answer::Documents, DocFormat::V2) => v2::decode_data(&answer.data),
    }
    .map_err(|e| {
        SendError::Failed(FlowError::gateway(
            gateway,
            format!("unusable response: {e}"),
        ))
    })?;
    Ok(FlowResponse {
        request_id: answer.header.map(|h| h.request_id).unwrap_or_default(),
        docs,
        parameters: answer
            .parameters
            .as_ref()
            .map(v1::struct_to_json)
            .unwrap_or_default(),
    })
}

/// The executor error carried by a gRPC-OK response whose header status is ERROR.
fn executor_error(header: Option<&HeaderProto>) -> Option<FlowError> {
    let status = header?.status.as_ref()?;
    if status.code != StatusCode::Error as i32 {
        return None;
    }
    let exception = status.exception.clone().unwrap_or_default();
    let message = exception
        .args
        .first()
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| status.description.clone());
    let or_unknown = |s: String| {
        if s.is_empty() {
            "unknown".to_owned()
        } else {
            s
        }
    };
    Some(FlowError::Executor {
        executor: or_unknown(exception.executor),
        exception: or_unknown(exception.name),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::proto::jina::StatusProto;
    use crate::flow::proto::jina::status_proto::ExceptionProto;

    fn with_status(status: StatusProto) -> Option<HeaderProto> {
        Some(HeaderProto {
            request_id: "r".into(),
            status: Some(status),
            ..HeaderProto::default()
        })
    }

    #[test]
    fn executor_error_uses_first_arg_else_description() {
        let header = with_status(StatusProto {
            code: StatusCode::Error as i32,
            description: "ValueError('boom', 42)".into(),
            exception: Some(ExceptionProto {
                name: "ValueError".into(),
                args: vec!["boom".into(), "42".into()],
                stacks: vec![],
                executor: "Echo".into(),
            }),
        });
        let err = executor_error(header.as_ref());
        assert_eq!(
            err,
            Some(FlowError::Executor {
                executor: "Echo".into(),
                exception: "ValueError".into(),
                message: "boom".into(),
            })
        );
        let header2 = with_status(StatusProto {
            code: StatusCode::Error as i32,
            description: "RuntimeError()".into(),
            exception: None,
        });
        let err = executor_error(header2.as_ref());
        assert_eq!(
            err,
            Some(FlowError::Executor {
                executor: "unknown".into(),
                exception: "unknown".into(),
                message: "RuntimeError()".into(),
            })
        );
        assert_eq!(
            executor_error(with_status(StatusProto::default()).as_ref()),
            None
        );
        assert_eq!(executor_error(None), None);
    }
}
