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
    /// The format for a scrape whose `Accept` header is `accept` (`None`: no header), as RFC
    /// 9110 §12.5.1 has it: each format takes the quality of the most specific media range
    /// that matches it (a `version` it does not write matches nothing), the higher quality
    /// wins, and at equal quality the more specific match; at a full tie, or when nothing
    /// matches, the Prometheus text format. Each range is read by `mime` (axum's media-type
    /// parser) after spaces around `;` are dropped; a range it cannot read, or whose `q` is
    /// not a number from 0 to 1, counts for nothing.
    pub fn negotiate(accept: Option<&str>) -> Format {
        // (specificity, quality) of the most specific range matching each format so far.
        let mut best = [None::<(u8, f32)>; 2];
        for range in accept.unwrap_or_default().split(',') {
            let range: Vec<&str> = range.split(';').map(str::trim).collect();
            let Ok(media) = range.join(";").parse::<mime::Mime>() else {
                continue;
            };
            let q = match media.get_param("q") {
                None => 1.0,
                Some(q) => match q.as_str().parse::<f32>() {
                    Ok(q) if (0.0..=1.0).contains(&q) => q,
                    _ => continue,
                },
            };
            for (slot, format) in best
                .iter_mut()
                .zip([Format::OpenMetrics, Format::Prometheus])
            {
                if let Some(specificity) = format.matched_by(&media)
                    && slot.is_none_or(|(s, old)| specificity > s || (specificity == s && q > old))
                {
                    *slot = Some((specificity, q));
                }
            }
        }
        let [openmetrics, text] = best.map(|b| b.unwrap_or((0, 0.0)));
        let wins = openmetrics.1 > text.1 || (openmetrics.1 == text.1 && openmetrics.0 > text.0);
        if openmetrics.1 > 0.0 && wins {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// How specifically `media` names this format (3: its type and version, 2: its type, 1: a
    /// `type/*`, 0: `*/*`), or `None` when it does not.
    fn matched_by(self, media: &mime::Mime) -> Option<u8> {
        let (essence, versions): (&str, &[&str]) = match self {
            Format::OpenMetrics => (OPENMETRICS, &["1.0.0", "0.0.1"]),
            Format::Prometheus => ("text/plain", &["0.0.4"]),
        };
        let (top, _) = essence.split_once('/')?;
        let version = media.get_param("version");
        if media.essence_str() == essence {
            return match version {
                None => Some(2),
                Some(v) if versions.contains(&v.as_str()) => Some(3),
                Some(_) => None,
            };
        }
        match (media.type_().as_str(), media.subtype().as_str()) {
            ("*", "*") => Some(0),
            (t, "*") if t == top => Some(1),
            _ => None,
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
    fn the_most_specific_range_decides() {
        // text/plain refused, anything else welcome.
        assert_eq!(Format::negotiate(Some("text/plain;q=0, */*")), OpenMetrics);
        // The version we write refused, though the type is welcome.
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0, application/openmetrics-text"
            )),
            Prometheus
        );
        assert_eq!(Format::negotiate(Some("application/*")), OpenMetrics);
        // Spaces before `;`.
        assert_eq!(
            Format::negotiate(Some(
                "text/plain ;q=0.2, application/openmetrics-text ; q=0.9"
            )),
            OpenMetrics
        );
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
