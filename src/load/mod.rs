//! `flowbridge load`: a CloudEvents load generator for flowbridge (or any CloudEvents sink).
//!
//! N workers each own one HTTP/1.1 keep-alive connection (hyper, no pool) and POST events with
//! unique ids (`<run prefix>-<worker>-<sequence>`), in binary mode unless `structured`.
//!
//! * Closed loop (no `rate`): every worker sends its next event as soon as the previous answer
//!   arrived, so at most N events are in flight.
//! * Open loop (`rate` R): send times are fixed in advance at `start + k / R`; a worker claims the
//!   next slot, sleeps until it and sends. At most N events are in flight: when every worker is
//!   busy, sends start late. The summary reports how late (`lag`) and whether the target rate
//!   was kept (`kept_up`); latency is measured from the actual send.
//!
//! A progress line goes to stderr every second; [`run`] returns a [`Summary`] (throughput,
//! latency percentiles from [`stats::Histogram`], counts per status code, transport errors),
//! which the CLI prints as text or JSON.
//!
//! A client only: it encodes events with the CloudEvents binding and knows nothing of the server,
//! its config or its routes (any CloudEvents sink will do).
//! * [`stats`]: the latency histogram (`hdrhistogram`) and its [`stats::Percentiles`] summary.

pub mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cloudevents;
use crate::model::{CloudEvent, Data};
use stats::{Histogram, Percentiles};

/// What to send, how hard and for how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `http://host[:port][/path]`.
    pub url: String,
    /// Workers (connections, and events in flight at most).
    pub concurrency: usize,
    pub duration: Duration,
    /// Events per second (open loop); `None` for a closed loop.
    pub rate: Option<f64>,
    pub ty: String,
    pub source: String,
    /// JSON text of the event data (`None`: no data).
    pub data: Option<String>,
    pub structured: bool,
    /// Per-request timeout: a request taking longer counts as a transport error.
    pub timeout: Duration,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

/// A sent request that got no HTTP answer (connect failure, reset, timeout) is a transport error;
/// its kind is the key of [`Summary::transport_errors`].
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub url: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    pub concurrency: usize,
    /// Target rate (open loop).
    pub rate: Option<f64>,
    /// Seconds from the first send to the last answer.
    pub elapsed_s: f64,
    /// Requests started.
    pub sent: u64,
    /// Requests answered with any HTTP status.
    pub answered: u64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with another status, plus transport errors.
    pub errors: u64,
    /// Answered requests per second.
    pub throughput: f64,
    /// 2xx answers per second.
    pub ok_per_s: f64,
    /// Count per HTTP status code.
    pub status: BTreeMap<u16, u64>,
    /// Count per transport error kind (`connect`, `timeout`, `io`).
    pub transport_errors: BTreeMap<String, u64>,
    /// One transport error message, for the humans.
    pub first_transport_error: Option<String>,
    /// Latency of answered requests (ms), any status; `None` when nothing was answered.
    pub latency_ms: Option<Percentiles>,
    /// Open loop only: how late sends started compared with their schedule (ms).
    pub lag_ms: Option<Percentiles>,
    /// Open loop only: whether at least 98 % of the scheduled events were sent.
    pub kept_up: Option<bool>,
}

/// Where requests go.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// `Host` header.
    host: HeaderValue,
    /// Request target (path and query).
    path: Uri,
}

fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("URL {url:?} is not valid: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "URL {url:?}: scheme {other:?} is not supported (only http://)"
            ));
        }
        None => return Err(format!("URL {url:?} has no scheme (expected http://…)")),
    }
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| format!("URL {url:?} has no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok(Target {
        addr: format!("{host}:{port}"),
        host: HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("URL {url:?}: host is not a valid header value: {e}"))?,
        path: path
            .parse()
            .map_err(|e| format!("URL {url:?}: path {path:?}: {e}"))?,
    })
}

/// The event every request carries, minus its id.
#[derive(Debug)]
enum Template {
    /// Headers (ce-id to be added) and body.
    Binary { headers: HeaderMap, body: Bytes },
    /// The JSON form with a placeholder id.
    Structured {
        event: serde_json::Map<String, Value>,
    },
}

impl Template {
    fn new(opts: &LoadOptions) -> Result<Template, String> {
        let data = match &opts.data {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Value>(text)
                    .map_err(|e| format!("--data is not valid JSON: {e}"))?,
            ),
        };
        let event = CloudEvent {
            datacontenttype: data.as_ref().map(|_| "application/json".to_string()),
            data: data.map(Data::Json),
            ..CloudEvent::new(String::new(), &opts.source, &opts.ty)
        };
        if opts.structured {
            match cloudevents::to_json(&event) {
                Value::Object(event) => Ok(Template::Structured { event }),
                other => Err(format!("structured event is not an object: {other}")),
            }
        } else {
            let (mut headers, body) = cloudevents::encode_binary(&event);
            headers.remove("ce-id");
            Ok(Template::Binary { headers, body })
        }
    }

    fn request(&self, target: &Target, id: &str) -> Result<Request<Full<Bytes>>, String> {
        let id_value =
            HeaderValue::from_str(id).map_err(|e| format!("event id {id:?} is not valid: {e}"))?;
        let (headers, body) = match self {
            Template::Binary { headers, body } => {
                let mut headers = headers.clone();
                headers.insert("ce-id", id_value);
                (headers, body.clone())
            }
            Template::Structured { event } => {
                let mut event = event.clone();
                event.insert("id".into(), Value::String(id.to_string()));
                let mut headers = HeaderMap::new();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/cloudevents+json"),
                );
                let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
                (headers, Bytes::from(body))
            }
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = target.path.clone();
        *request.headers_mut() = headers;
        request.headers_mut().insert(HOST, target.host.clone());
        Ok(request)
    }
}

/// State shared by the workers and the progress printer.
struct Shared {
    target: Target,
    template: Template,
    prefix: String,
    rate: Option<f64>,
    timeout: Duration,
    start: Instant,
    end: Instant,
    next_slot: AtomicU64,
    sent: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
}

/// What one worker saw.
struct WorkerStats {
    latency: Histogram,
    lag: Histogram,
    status: BTreeMap<u16, u64>,
    transport: BTreeMap<&'static str, u64>,
    first_transport_error: Option<String>,
    answered: u64,
    last_answer: Option<Instant>,
}

impl WorkerStats {
    fn new() -> WorkerStats {
        WorkerStats {
            latency: Histogram::new(),
            lag: Histogram::new(),
            status: BTreeMap::new(),
            transport: BTreeMap::new(),
            first_transport_error: None,
            answered: 0,
            last_answer: None,
        }
    }

    fn transport_error(&mut self, kind: &'static str, message: String) {
        *self.transport.entry(kind).or_default() += 1;
        if self.first_transport_error.is_none() {
            self.first_transport_error = Some(message);
        }
    }
}

/// Pause after a failed connect, so a closed port is not hammered in a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(&target.addr)
        .await
        .map_err(|e| format!("connect to {}: {e}", target.addr))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {}: {e}", target.addr))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; errors show up on the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request on `sender`: the status, after reading the whole body.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<u16, hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

async fn worker(index: usize, shared: Arc<Shared>) -> WorkerStats {
    let mut stats = WorkerStats::new();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mut sequence: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= shared.end {
            break;
        }
        if let Some(rate) = shared.rate {
            let slot = shared.next_slot.fetch_add(1, Ordering::Relaxed);
            let due = shared.start + Duration::from_secs_f64(slot as f64 / rate);
            if due >= shared.end {
                break;
            }
            if due > now {
                tokio::time::sleep_until(due).await;
            }
            stats
                .lag
                .record_duration(Instant::now().saturating_duration_since(due));
        }
        let mut sender = match connection.take() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(&shared.target).await {
                Ok(s) => s,
                Err(message) => {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    stats.transport_error("connect", message);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let id = format!("{}-{index}-{sequence}", shared.prefix);
        sequence += 1;
        let request = match shared.template.request(&shared.target, &id) {
            Ok(r) => r,
            Err(message) => {
                stats.transport_error("request", message);
                break;
            }
        };
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        match tokio::time::timeout(shared.timeout, exchange(&mut sender, request)).await {
            Ok(Ok(status)) => {
                let finished = Instant::now();
                stats.latency.record_duration(finished - started);
                stats.answered += 1;
                stats.last_answer = Some(finished);
                *stats.status.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    shared.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                connection = Some(sender);
            }
            Ok(Err(e)) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                stats.transport_error("io", format!("POST {}: {e}", shared.target.addr));
            }
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                stats.transport_error(
                    "timeout",
                    format!(
                        "POST {}: no answer within {:?}",
                        shared.target.addr, shared.timeout
                    ),
                );
            }
        }
    }
    stats
}

/// Prints `[  3s] sent … ok … errors … rate …/s` every second until `done`.
async fn progress(shared: Arc<Shared>, done: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval_at(
        shared.start + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last_answers = 0;
    let mut last_time = shared.start;
    loop {
        tick.tick().await;
        if done.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        let ok = shared.ok.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        let answers = ok + errors;
        let rate = (answers - last_answers) as f64 / (now - last_time).as_secs_f64();
        last_answers = answers;
        last_time = now;
        eprintln!(
            "[{:>4.0}s] sent {:>9}  ok {:>9}  errors {:>7}  rate {:>9.0}/s",
            (now - shared.start).as_secs_f64(),
            shared.sent.load(Ordering::Relaxed),
            ok,
            errors,
            rate
        );
    }
}

/// Runs the load and summarises it. Errors are usage errors (bad URL, bad data, bad numbers).
pub async fn run(opts: &LoadOptions) -> Result<Summary, String> {
    if opts.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if let Some(rate) = opts.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(format!("--rate {rate} must be a positive number"));
    }
    if opts.duration.is_zero() {
        return Err("--duration must be longer than 0s".into());
    }
    let target = parse_target(&opts.url)?;
    let template = Template::new(opts)?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target,
        template,
        prefix: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        rate: opts.rate,
        timeout: opts.timeout,
        start,
        end: start + opts.duration,
        next_slot: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let done = Arc::new(AtomicBool::new(false));
    let printer = opts
        .progress
        .then(|| tokio::spawn(progress(shared.clone(), done.clone())));
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..opts.concurrency {
        workers.spawn(worker(index, shared.clone()));
    }
    let mut all = WorkerStats::new();
    while let Some(joined) = workers.join_next().await {
        let stats = joined.map_err(|e| format!("a load worker failed: {e}"))?;
        all.latency.merge(&stats.latency);
        all.lag.merge(&stats.lag);
        for (code, n) in stats.status {
            *all.status.entry(code).or_default() += n;
        }
        for (kind, n) in stats.transport {
            *all.transport.entry(kind).or_default() += n;
        }
        if all.first_transport_error.is_none() {
            all.first_transport_error = stats.first_transport_error;
        }
        all.answered += stats.answered;
        all.last_answer = all.last_answer.max(stats.last_answer);
    }
    done.store(true, Ordering::Relaxed);
    if let Some(printer) = printer {
        printer.abort();
    }
    let finished = Instant::now();
    let elapsed = (finished - start).as_secs_f64().max(1e-9);
    let ok: u64 = all
        .status
        .iter()
        .filter(|(code, _)| (200..300).contains(*code))
        .map(|(_, n)| n)
        .sum();
    let transport: u64 = all.transport.values().sum();
    let sent = shared.sent.load(Ordering::Relaxed);
    let kept_up = opts.rate.map(|rate| {
        let scheduled = (rate * opts.duration.as_secs_f64()).floor();
        sent as f64 >= 0.98 * scheduled
    });
    Ok(Summary {
        url: opts.url.clone(),
        mode: if opts.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        concurrency: opts.concurrency,
        rate: opts.rate,
        elapsed_s: elapsed,
        sent,
        answered: all.answered,
        ok,
        errors: all.answered - ok + transport,
        throughput: all.answered as f64 / elapsed,
        ok_per_s: ok as f64 / elapsed,
        status: all.status,
        transport_errors: all
            .transport
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        first_transport_error: all.first_transport_error,
        latency_ms: all.latency.summary(),
        lag_ms: opts.rate.and_then(|_| all.lag.summary()),
        kept_up,
    })
}

impl Summary {
    /// The human-readable report (several lines).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mode = match self.rate {
            Some(rate) => format!("open loop at {rate}/s"),
            None => "closed loop".to_string(),
        };
        out.push_str(&format!(
            "flowbridge load {}: {} workers, {mode}, {:.1}s\n",
            self.url, self.concurrency, self.elapsed_s
        ));
        let transport: u64 = self.transport_errors.values().sum();
        out.push_str(&format!(
            "  requests    {} sent, {} answered ({} 2xx), {} transport errors\n",
            self.sent, self.answered, self.ok, transport
        ));
        out.push_str(&format!(
            "  throughput  {:.1} events/s answered, {:.1} events/s 2xx\n",
            self.throughput, self.ok_per_s
        ));
        if let Some(l) = &self.latency_ms {
            out.push_str(&format!(
                "  latency     p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (mean {:.3} ms)\n",
                l.p50, l.p90, l.p99, l.max, l.mean
            ));
        }
        let codes: Vec<String> = self
            .status
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        out.push_str(&format!(
            "  status      {}\n",
            if codes.is_empty() {
                "none".to_string()
            } else {
                codes.join(", ")
            }
        ));
        if !self.transport_errors.is_empty() {
            let kinds: Vec<String> = self
                .transport_errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            out.push_str(&format!("  transport   {}\n", kinds.join(", ")));
            if let Some(first) = &self.first_transport_error {
                out.push_str(&format!("  first error {first}\n"));
            }
        }
        if let (Some(lag), Some(kept_up)) = (&self.lag_ms, self.kept_up) {
            out.push_str(&format!(
                "  schedule    send lag p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms; {}\n",
                lag.p50,
                lag.p99,
                lag.max,
                if kept_up {
                    "kept up with the rate"
                } else {
                    "could NOT keep up with the rate (all workers busy: raise --concurrency)"
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests;
