//! Which text format a scrape gets: [`Format::negotiate`] reads the scraper's `Accept` header.
//! OpenMetrics 1.0 when the scraper names it (Prometheus does, first, unless its
//! `scrape_protocols` say otherwise) and prefers it at least as much as the Prometheus text
//! format; the Prometheus text format 0.0.4 otherwise (no header, `text/plain`, `*/*`, curl).
//!
//! The two carry the same series with one visible difference: OpenMetrics writes histogram
//! bounds as floats (`le="1.0"` where 0.0.4 writes `le="1"`), and a Prometheus 2 stores the
//! label as written. `histogram_quantile` reads both the same; a selector on one exact `le`
//! value would not.

use prometheus_client::encoding::prometheus_text;

/// A text format of `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text (ends with `# EOF`).
    OpenMetrics,
}

/// The media type of OpenMetrics' text format.
const OPENMETRICS: &str = "application/openmetrics-text";

impl Format {
    /// The format for a scrape whose `Accept` header is `accept` (`None`: no header). Each
    /// media range is read by `mime` (axum's media-type parser); a range it cannot read, or
    /// whose `q` is not a number from 0 to 1, counts for nothing.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut openmetrics = 0.0_f32;
        let mut text = 0.0_f32;
        for range in accept.unwrap_or_default().split(',') {
            let Ok(media) = range.trim().parse::<mime::Mime>() else {
                continue;
            };
            let q = match media.get_param("q") {
                None => 1.0,
                Some(q) => match q.as_str().parse::<f32>() {
                    Ok(q) if (0.0..=1.0).contains(&q) => q,
                    _ => continue,
                },
            };
            let version = media.get_param("version").map(|v| v.as_str().to_owned());
            match (media.essence_str(), version.as_deref()) {
                (OPENMETRICS, None | Some("1.0.0" | "0.0.1")) => openmetrics = openmetrics.max(q),
                ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The `Content-Type` of a scrape in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Format::{self, OpenMetrics, Prometheus};

    #[test]
    fn prometheus_default_header_gets_openmetrics() {
        // Prometheus 2.x's default scrape Accept header.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), OpenMetrics);
        // Prometheus 3's (content_negotiation docs); our names need no UTF-8 escaping.
        let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus3)), OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("Application/OpenMetrics-Text; Version=\"1.0.0\"")),
            OpenMetrics
        );
    }

    #[test]
    fn everything_else_gets_the_text_format() {
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain;version=0.0.4"),
            Some("application/json"),
            // Preferred less than the text format, refused, or a version we do not write.
            Some("text/plain;version=0.0.4,application/openmetrics-text;q=0.5"),
            Some("application/openmetrics-text;q=0"),
            Some("application/openmetrics-text;version=2.0.0"),
            Some("application/openmetrics-text;q=high"),
            // Prometheus with `scrape_protocols: [PrometheusText0.0.4]`.
            Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
        ] {
            assert_eq!(Format::negotiate(accept), Prometheus, "{accept:?}");
        }
    }

    #[test]
    fn equal_preference_goes_to_the_format_named() {
        assert_eq!(
            Format::negotiate(Some("*/*, application/openmetrics-text")),
            OpenMetrics
        );
    }

    #[test]
    fn content_types() {
        assert!(
            Prometheus
                .content_type()
                .starts_with("text/plain; version=0.0.4")
        );
        assert!(
            OpenMetrics
                .content_type()
                .starts_with("application/openmetrics-text; version=1.0.0")
        );
    }
}
