//! Two scrapes → what `flowbridge top` shows, and the plain table of it. Pure.
//!
//! Rates are the counters' increase between the scrapes over the time between them; the latency
//! percentiles interpolate inside the buckets of the histogram's increase, as Prometheus'
//! `histogram_quantile` does; gauges are the newer scrape's.

use std::collections::BTreeMap;

use super::scrape::Sample;

/// One route's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub route: String,
    /// Events per second, all status codes.
    pub per_second: f64,
    /// Events per second by status class (`2xx`, `4xx`, `5xx`).
    pub classes: BTreeMap<String, f64>,
}

/// One gateway's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub gateway: String,
    /// Flow requests answered per second.
    pub requests_per_second: f64,
    pub in_flight: f64,
    pub limit: Option<f64>,
    /// Why the limit last changed.
    pub reason: Option<String>,
    /// Documents per Flow request between the scrapes.
    pub docs_per_request: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub queued: f64,
    /// p99 of the time events waited in the queue between the scrapes.
    pub wait_p99: Option<f64>,
    pub cold: bool,
}

/// Everything on screen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    pub routes: Vec<Route>,
    pub gateways: Vec<Gateway>,
}

type Key = (String, Vec<(String, String)>);

fn index(samples: &[Sample]) -> BTreeMap<Key, f64> {
    samples
        .iter()
        .map(|s| ((s.name.clone(), s.labels.clone()), s.value))
        .collect()
}

/// Increase of every series of `name` between the scrapes (a reset counts from 0), by series.
fn increases<'a>(
    name: &str,
    before: &BTreeMap<Key, f64>,
    now: &'a [Sample],
) -> Vec<(&'a Sample, f64)> {
    now.iter()
        .filter(|s| s.name == name)
        .map(|s| {
            let old = before
                .get(&(s.name.clone(), s.labels.clone()))
                .copied()
                .unwrap_or(0.0);
            (
                s,
                if s.value >= old {
                    s.value - old
                } else {
                    s.value
                },
            )
        })
        .collect()
}

/// The view between `before` and `now`, `seconds` apart.
pub fn build(before: &[Sample], now: &[Sample], seconds: f64) -> View {
    let seconds = seconds.max(1e-3);
    let old = index(before);
    let mut routes: BTreeMap<String, Route> = BTreeMap::new();
    for (s, inc) in increases("flowbridge_event_count_total", &old, now) {
        let (Some(route), Some(code)) = (s.label("route"), s.label("response_code")) else {
            continue;
        };
        let r = routes.entry(route.to_string()).or_insert_with(|| Route {
            route: route.to_string(),
            per_second: 0.0,
            classes: BTreeMap::new(),
        });
        let class = format!("{}xx", code.chars().next().unwrap_or('?'));
        r.per_second += inc / seconds;
        *r.classes.entry(class).or_insert(0.0) += inc / seconds;
    }
    let gauge = |name: &str, gateway: &str| {
        now.iter()
            .find(|s| s.name == name && s.label("gateway") == Some(gateway))
            .map(|s| s.value)
    };
    let mut gateways = Vec::new();
    let names: Vec<String> = now
        .iter()
        .filter(|s| s.name == "flowbridge_flow_in_flight_requests")
        .filter_map(|s| s.label("gateway").map(str::to_owned))
        .collect();
    for gateway in names {
        let of = |s: &&Sample| s.label("gateway") == Some(gateway.as_str());
        let requests: f64 = increases("flowbridge_flow_requests_total", &old, now)
            .iter()
            .filter(|(s, _)| of(s))
            .map(|(_, i)| i)
            .sum();
        let sum_inc = |name: &str| -> f64 {
            increases(name, &old, now)
                .iter()
                .filter(|(s, _)| of(s))
                .map(|(_, i)| i)
                .sum()
        };
        let docs = sum_inc("flowbridge_flow_request_docs_sum");
        let count = sum_inc("flowbridge_flow_request_docs_count");
        // A histogram's bucket increases as (le, count).
        let buckets = |name: &str| -> Vec<(f64, f64)> {
            increases(name, &old, now)
                .iter()
                .filter(|(s, _)| of(s))
                .filter_map(|(s, i)| {
                    let le = match s.label("le")? {
                        "+Inf" => f64::INFINITY,
                        v => v.parse().ok()?,
                    };
                    Some((le, *i))
                })
                .collect()
        };
        let latency = buckets("flowbridge_flow_request_duration_seconds_bucket");
        let reason = now
            .iter()
            .find(|s| {
                s.name == "flowbridge_gateway_concurrency_limit_reason"
                    && s.label("gateway") == Some(gateway.as_str())
                    && s.value == 1.0
            })
            .and_then(|s| s.label("reason").map(str::to_owned));
        gateways.push(Gateway {
            requests_per_second: requests / seconds,
            in_flight: gauge("flowbridge_flow_in_flight_requests", &gateway).unwrap_or(0.0),
            limit: gauge("flowbridge_gateway_concurrency_limit", &gateway),
            reason,
            docs_per_request: (count > 0.0).then(|| docs / count),
            p50: quantile(0.5, &latency),
            p99: quantile(0.99, &latency),
            queued: gauge("flowbridge_pending_events", &gateway).unwrap_or(0.0),
            wait_p99: quantile(0.99, &buckets("flowbridge_queue_wait_seconds_bucket")),
            cold: gauge("flowbridge_gateway_cold", &gateway) == Some(1.0),
            gateway,
        });
    }
    let mut routes: Vec<Route> = routes.into_values().collect();
    routes.sort_by(|a, b| {
        b.per_second
            .total_cmp(&a.per_second)
            .then(a.route.cmp(&b.route))
    });
    gateways.sort_by(|a, b| {
        b.requests_per_second
            .total_cmp(&a.requests_per_second)
            .then(a.gateway.cmp(&b.gateway))
    });
    View { routes, gateways }
}

/// The `q` quantile of cumulative buckets `(le, count)`, linear inside a bucket; `None` without
/// observations. A quantile in the `+Inf` bucket is the largest finite bound.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut b: Vec<(f64, f64)> = buckets.to_vec();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total = b.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &b {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let inside = count - lower.1;
            let frac = if inside > 0.0 {
                (rank - lower.1) / inside
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * frac);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{:.1}", s * 1000.0))
}

/// The view as a plain table, lines cut at `width` characters.
pub fn render(view: &View, source: &str, width: usize) -> String {
    let mut lines = vec![format!("flowbridge top — {source}"), String::new()];
    lines.push(format!(
        "{:<24} {:>10} {:>10} {:>10} {:>10}",
        "ROUTE", "EVENTS/S", "2XX/S", "4XX/S", "5XX/S"
    ));
    for r in &view.routes {
        let class = |c: &str| r.classes.get(c).copied().unwrap_or(0.0);
        lines.push(format!(
            "{:<24} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            r.route,
            r.per_second,
            class("2xx"),
            class("4xx"),
            class("5xx")
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<16} {:>8} {:>12} {:>9} {:>9} {:>9} {:>7} {:>11} {:>5}  {}",
        "GATEWAY",
        "REQ/S",
        "FLIGHT/LIMIT",
        "DOCS/REQ",
        "P50 MS",
        "P99 MS",
        "QUEUE",
        "WAIT P99 MS",
        "COLD",
        "LIMIT REASON"
    ));
    for g in &view.gateways {
        let limit = g.limit.map_or("-".into(), |l| format!("{l:.0}"));
        lines.push(format!(
            "{:<16} {:>8.1} {:>12} {:>9} {:>9} {:>9} {:>7.0} {:>11} {:>5}  {}",
            g.gateway,
            g.requests_per_second,
            format!("{:.0}/{limit}", g.in_flight),
            g.docs_per_request.map_or("-".into(), |d| format!("{d:.1}")),
            ms(g.p50),
            ms(g.p99),
            g.queued,
            ms(g.wait_p99),
            if g.cold { "yes" } else { "no" },
            g.reason.as_deref().unwrap_or("-")
        ));
    }
    lines
        .into_iter()
        .map(|l| l.chars().take(width).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::super::scrape::parse;
    use super::*;

    #[test]
    fn rates_classes_and_quantiles_between_two_scrapes() {
        let before = parse(
            "flowbridge_event_count_total{route=\"a\",response_code=\"202\"} 10\n\
             flowbridge_flow_in_flight_requests{gateway=\"g\"} 0\n\
             flowbridge_flow_request_duration_seconds_bucket{gateway=\"g\",le=\"0.1\"} 0\n\
             flowbridge_flow_request_duration_seconds_bucket{gateway=\"g\",le=\"+Inf\"} 0\n",
        )
        .unwrap();
        let now = parse(
            "flowbridge_event_count_total{route=\"a\",response_code=\"202\"} 30\n\
             flowbridge_event_count_total{route=\"a\",response_code=\"502\"} 2\n\
             flowbridge_event_count_total{route=\"b\",response_code=\"202\"} 1\n\
             flowbridge_flow_in_flight_requests{gateway=\"g\"} 3\n\
             flowbridge_gateway_concurrency_limit{gateway=\"g\"} 4\n\
             flowbridge_gateway_concurrency_limit_reason{gateway=\"g\",reason=\"latency_rose\"} 1\n\
             flowbridge_flow_requests_total{gateway=\"g\",outcome=\"ok\"} 10\n\
             flowbridge_flow_request_docs_sum{gateway=\"g\"} 200\n\
             flowbridge_flow_request_docs_count{gateway=\"g\"} 10\n\
             flowbridge_flow_request_duration_seconds_bucket{gateway=\"g\",le=\"0.1\"} 10\n\
             flowbridge_flow_request_duration_seconds_bucket{gateway=\"g\",le=\"+Inf\"} 10\n\
             flowbridge_pending_events{gateway=\"g\"} 7\n\
             flowbridge_queue_wait_seconds_bucket{gateway=\"g\",le=\"0.01\"} 8\n\
             flowbridge_queue_wait_seconds_bucket{gateway=\"g\",le=\"1\"} 10\n\
             flowbridge_queue_wait_seconds_bucket{gateway=\"g\",le=\"+Inf\"} 10\n\
             flowbridge_gateway_cold{gateway=\"g\"} 0\n",
        )
        .unwrap();
        let v = build(&before, &now, 2.0);
        assert_eq!(v.routes[0].route, "a");
        assert_eq!(v.routes[0].per_second, 11.0);
        assert_eq!(v.routes[0].classes["5xx"], 1.0);
        let g = &v.gateways[0];
        assert_eq!((g.in_flight, g.limit, g.queued), (3.0, Some(4.0), 7.0));
        assert_eq!(g.docs_per_request, Some(20.0));
        assert_eq!(g.reason.as_deref(), Some("latency_rose"));
        assert!((g.p50.unwrap() - 0.05).abs() < 1e-9);
        // 8 of 10 waits under 10 ms, 2 between 10 ms and 1 s: p99 inside the second bucket.
        assert!((g.wait_p99.unwrap() - (0.01 + 0.99 * 0.95)).abs() < 1e-9);
        let text = render(&v, "http://x", 200);
        assert!(text.contains("3/4"), "{text}");
        assert!(
            render(&v, "http://x", 10)
                .lines()
                .all(|l| l.chars().count() <= 10)
        );
    }

    #[test]
    fn quantile_edges() {
        assert_eq!(quantile(0.5, &[]), None);
        assert_eq!(quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.99, &[(1.0, 0.0), (f64::INFINITY, 5.0)]),
            Some(1.0)
        );
    }
}
