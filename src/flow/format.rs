//! Which docarray format a gateway speaks, and how that is read from its status: a jina gateway
//! decodes documents with whatever docarray is installed next to it, docarray < 0.30 being the
//! v1 format (`DocumentArrayProto`) and ≥ 0.30 the v2 format (`DocListProto`).

use std::collections::{BTreeSet, HashMap};

use crate::model::DocarrayMode;

/// A docarray wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    V1,
    V2,
}

impl DocFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocFormat::V1 => "v1",
            DocFormat::V2 => "v2",
        }
    }

    /// The format of a docarray version string (`0.21.1` → v1, `0.40.0` → v2); `None` when it
    /// is not a version.
    pub fn of_version(version: &str) -> Option<DocFormat> {
        let mut parts = version.trim().trim_start_matches('v').split('.');
        let major: u64 = parts.next()?.trim().parse().ok()?;
        let minor: u64 = parts
            .next()
            .map(|m| {
                m.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        Some(if major == 0 && minor < 30 {
            DocFormat::V1
        } else {
            DocFormat::V2
        })
    }
}

/// What a gateway told about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    /// The format requests are encoded in.
    pub format: DocFormat,
    /// `grpc`, `http` or `websocket`.
    pub protocol: &'static str,
    /// The reported docarray version (`None`: the gateway has no status service).
    pub docarray: Option<String>,
    /// The reported jina version.
    pub jina: Option<String>,
    /// HTTP gateways: the paths of `GET /openapi.json` (v2 serves one per endpoint), when read.
    pub paths: Option<BTreeSet<String>>,
}

impl Gateway {
    /// From a status `jina` map (`/jina.JinaInfoRPC/_status`, `GET /status`). A missing or
    /// unreadable docarray version falls back like [`Gateway::unreported`].
    pub fn from_status(jina: &HashMap<String, String>, mode: DocarrayMode) -> Gateway {
        let docarray = jina.get("docarray").cloned();
        match docarray.as_deref().and_then(DocFormat::of_version) {
            Some(format) => Gateway {
                format,
                protocol: "grpc",
                docarray,
                jina: jina.get("jina").cloned(),
                paths: None,
            },
            None => Gateway {
                jina: jina.get("jina").cloned(),
                ..Gateway::unreported(mode, "grpc")
            },
        }
    }

    /// A gateway that does not say: the configured format, or v1 under `auto` (gateways without
    /// a status service predate docarray v2 support in jina).
    pub fn unreported(mode: DocarrayMode, protocol: &'static str) -> Gateway {
        Gateway {
            format: match mode {
                DocarrayMode::V2 => DocFormat::V2,
                DocarrayMode::V1 | DocarrayMode::Auto => DocFormat::V1,
            },
            protocol,
            docarray: None,
            jina: None,
            paths: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_below_0_30_are_v1() {
        assert_eq!(DocFormat::of_version("0.21.1"), Some(DocFormat::V1));
        assert_eq!(DocFormat::of_version("0.29.9"), Some(DocFormat::V1));
        assert_eq!(DocFormat::of_version("0.30.0"), Some(DocFormat::V2));
        assert_eq!(DocFormat::of_version("0.40.0"), Some(DocFormat::V2));
        assert_eq!(DocFormat::of_version("0.39.1rc2"), Some(DocFormat::V2));
        assert_eq!(DocFormat::of_version("1.0"), Some(DocFormat::V2));
        assert_eq!(DocFormat::of_version("(unset)"), None);
        assert_eq!(DocFormat::of_version(""), None);
    }

    #[test]
    fn status_without_docarray_falls_back_to_the_configured_format() {
        let mut jina = HashMap::new();
        jina.insert("jina".to_owned(), "3.34.0".to_owned());
        let g = Gateway::from_status(&jina, DocarrayMode::V2);
        assert_eq!(g.format, DocFormat::V2);
        assert_eq!(g.docarray, None);
        assert_eq!(g.jina.as_deref(), Some("3.34.0"));
        assert_eq!(
            Gateway::from_status(&jina, DocarrayMode::Auto).format,
            DocFormat::V1
        );
        jina.insert("docarray".to_owned(), "0.40.0".to_owned());
        let g = Gateway::from_status(&jina, DocarrayMode::V1);
        assert_eq!(g.format, DocFormat::V2, "what the gateway says wins");
    }
}
