//! The HTTP/1.1 cases: slowloris, a trickled body, oversized heads, a client that never reads,
//! idle keep-alive connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::net::{complete_response, connect, deadline, join_all, secs, spread, tally};
use crate::support::{parse_response, unique};
use crate::{BODY_TIMEOUT, HEAD_TIMEOUT, IDLE_TIMEOUT, Outcome, SLACK, STALL_SLACK};

// 1. slowloris ---------------------------------------------------------------------------------

const SLOWLORIS: usize = 500;

/// One slowloris connection: the request line and `Host`, then a header byte a second. How long
/// after its first byte the server closed it, and how many bytes it answered first.
async fn slowloris_one(port: u16) -> Result<(Duration, usize), String> {
    let mut s = connect(port).await?;
    let start = Instant::now();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .map_err(|e| format!("first write: {e}"))?;
    let trickle = b"X-Slowloris: 0123456789abcdefghijklmnopqrstuvwxyz";
    let (mut sent, mut answered) = (0, 0);
    let mut buf = [0u8; 1024];
    let mut tick = tokio::time::interval_at(
        deadline(start + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    let give_up = deadline(start + HEAD_TIMEOUT + SLACK + Duration::from_secs(3));
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Ok((start.elapsed(), answered)),
                Ok(n) => answered += n,
            },
            _ = tick.tick() => {
                if s.write_all(&[trickle[sent % trickle.len()]]).await.is_err() {
                    return Ok((start.elapsed(), answered));
                }
                sent += 1;
            }
            () = tokio::time::sleep_until(give_up) => {
                return Err(format!("still open {} after its first byte", secs(start.elapsed())));
            }
        }
    }
}

pub async fn slowloris(port: u16) -> Outcome {
    let tasks = (0..SLOWLORIS)
        .map(|_| tokio::spawn(slowloris_one(port)))
        .collect();
    let results = join_all(tasks).await;
    let closed: Vec<Duration> = results.iter().flatten().map(|(t, _)| *t).collect();
    let answered = results.iter().flatten().filter(|(_, n)| *n > 0).count();
    let errors: Vec<String> = results.iter().filter_map(|r| r.clone().err()).collect();
    let bound = HEAD_TIMEOUT + SLACK;
    let late = closed.iter().filter(|t| **t > bound).count();
    let mut failures = Vec::new();
    if !errors.is_empty() {
        failures.push(format!(
            "slowloris: {} of {SLOWLORIS} not closed: {}",
            errors.len(),
            tally(&errors)
        ));
    }
    if late > 0 {
        failures.push(format!(
            "slowloris: {late} closed later than head_timeout + {} ({})",
            secs(SLACK),
            spread(&closed)
        ));
    }
    Outcome {
        summary: format!(
            "{}/{SLOWLORIS} closed {} after the first byte ({answered} got bytes first)",
            closed.len(),
            spread(&closed)
        ),
        failures,
        limits: vec![("head_timeout", SLOWLORIS as u64)],
    }
}

// 2. trickled body -----------------------------------------------------------------------------

const TRICKLERS: usize = 50;

/// What one trickled-body connection got.
struct Answered {
    /// From the end of the head to the complete response.
    after: Duration,
    status: u16,
    code: String,
    connection: String,
    /// From the response to the close, if it closed within [`SLACK`].
    closed_after: Option<Duration>,
}

async fn trickled_one(port: u16) -> Result<Answered, String> {
    let mut s = connect(port).await?;
    let id = unique("hostile-trickle");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: {id}\r\n\
         ce-type: hostile.trickle\r\nce-source: /hostile/trickle\r\n\
         content-type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    let mut body = br#"{"text": ""#.to_vec();
    body.resize(998, b'a');
    body.extend_from_slice(b"\"}");
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("head: {e}"))?;
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let give_up = deadline(start + BODY_TIMEOUT + SLACK + Duration::from_secs(3));
    let (mut raw, mut sent, mut buf) = (Vec::new(), 0, [0u8; 4096]);
    let end = loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) => return Err(format!("closed without an answer after {}", secs(start.elapsed()))),
                Err(e) => return Err(format!("{} without an answer after {}", e.kind(), secs(start.elapsed()))),
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(end) = complete_response(&raw) {
                        break end;
                    }
                }
            },
            // One body byte a second until the first byte of an answer.
            _ = tick.tick(), if raw.is_empty() && sent < body.len() => {
                if let Err(e) = s.write_all(&body[sent..=sent]).await {
                    return Err(format!("write: {} after {}", e.kind(), secs(start.elapsed())));
                }
                sent += 1;
            }
            () = tokio::time::sleep_until(give_up) => {
                return Err(format!("no answer within {}", secs(start.elapsed())));
            }
        }
    };
    let after = start.elapsed();
    let response = parse_response(&raw[..end], false)?;
    let code = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("(body {:?})", response.text()));
    // Then the connection must close.
    let answered = Instant::now();
    let closed = tokio::time::timeout(SLACK, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    Ok(Answered {
        after,
        status: response.status,
        code,
        connection: response.header("connection").unwrap_or("").to_string(),
        closed_after: closed.ok().map(|()| answered.elapsed()),
    })
}

pub async fn trickled_body(port: u16) -> Outcome {
    let tasks = (0..TRICKLERS)
        .map(|_| tokio::spawn(trickled_one(port)))
        .collect();
    let results = join_all(tasks).await;
    let answers: Vec<&Answered> = results.iter().flatten().collect();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().cloned())
        .collect();
    let mut failures = Vec::new();
    if !errors.is_empty() {
        failures.push(format!(
            "trickled body: {} of {TRICKLERS} got no answer: {}",
            errors.len(),
            tally(&errors)
        ));
    }
    let wrong: Vec<String> = answers
        .iter()
        .filter(|a| a.status != 408 || a.code != "body_timeout" || a.connection != "close")
        .map(|a| format!("{} {} connection={:?}", a.status, a.code, a.connection))
        .collect();
    if !wrong.is_empty() {
        failures.push(format!(
            "trickled body: {} answers are not 408 body_timeout + Connection: close: {}",
            wrong.len(),
            tally(&wrong)
        ));
    }
    let times: Vec<Duration> = answers.iter().map(|a| a.after).collect();
    let late = times.iter().filter(|t| **t > BODY_TIMEOUT + SLACK).count();
    if late > 0 {
        failures.push(format!(
            "trickled body: {late} answered later than body_timeout + {} ({})",
            secs(SLACK),
            spread(&times)
        ));
    }
    let open = answers.iter().filter(|a| a.closed_after.is_none()).count();
    if open > 0 {
        failures.push(format!(
            "trickled body: {open} connections still open {} after the answer",
            secs(SLACK)
        ));
    }
    let statuses: Vec<String> = answers
        .iter()
        .map(|a| format!("{} {}", a.status, a.code))
        .collect();
    let closes: Vec<Duration> = answers.iter().filter_map(|a| a.closed_after).collect();
    Outcome {
        summary: format!(
            "{}/{TRICKLERS} answered [{}] {} after the head, closed {} later",
            answers.len(),
            tally(&statuses),
            spread(&times),
            spread(&closes)
        ),
        failures,
        limits: vec![("body_timeout", TRICKLERS as u64)],
    }
}

// 3. and 4. oversized heads --------------------------------------------------------------------

/// How long the oversized-head cases send requests, and from how many clients at once.
const OVERSIZED_FOR: Duration = Duration::from_secs(3);
const OVERSIZED_CLIENTS: usize = 2;

/// Writes `head` (on a task, ignoring write errors: the server may stop reading) and reads the
/// answer: its status, and whether the connection closed within [`SLACK`] after it.
async fn oversized_one(port: u16, head: Arc<Vec<u8>>) -> Result<(u16, bool), String> {
    let (mut r, mut w) = connect(port).await?.into_split();
    let start = Instant::now();
    // The write half is handed back, not dropped: dropping it would send a FIN.
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&head).await;
        w
    });
    let (mut raw, mut buf) = (Vec::new(), vec![0u8; 16 * 1024]);
    let mut answered = None;
    let mut closed = false;
    let give_up = start + SLACK + Duration::from_secs(3);
    loop {
        let until = answered.map_or(give_up, |a: Instant| a + SLACK);
        match tokio::time::timeout_at(deadline(until), r.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                raw.extend_from_slice(&buf[..n]);
                if answered.is_none() && complete_response(&raw).is_some() {
                    answered = Some(Instant::now());
                }
            }
        }
    }
    writer.abort();
    if answered.is_none() {
        return Err(if raw.is_empty() {
            format!("no answer (closed: {closed})")
        } else {
            format!(
                "incomplete answer {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(60)])
            )
        });
    }
    let status = parse_response(&raw, false)?.status;
    Ok((status, closed))
}

pub async fn oversized_heads(port: u16, head: Vec<u8>) -> Outcome {
    let head = Arc::new(head);
    let until = Instant::now() + OVERSIZED_FOR;
    let clients: Vec<_> = (0..OVERSIZED_CLIENTS)
        .map(|_| {
            let head = Arc::clone(&head);
            tokio::spawn(async move {
                let mut results = Vec::new();
                while Instant::now() < until {
                    results.push(oversized_one(port, Arc::clone(&head)).await);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                results
            })
        })
        .collect();
    let mut results = Vec::new();
    for c in clients {
        results.extend(c.await.unwrap());
    }
    let sent = results.len();
    let mut failures = Vec::new();
    let errors: Vec<String> = results.iter().filter_map(|r| r.clone().err()).collect();
    if !errors.is_empty() {
        failures.push(format!(
            "{} of {sent} requests got no answer: {}",
            errors.len(),
            tally(&errors)
        ));
    }
    let answers: Vec<(u16, bool)> = results.into_iter().flatten().collect();
    let statuses: Vec<String> = answers.iter().map(|(s, _)| s.to_string()).collect();
    let not_431 = answers.iter().filter(|(s, _)| *s != 431).count();
    if not_431 > 0 {
        failures.push(format!(
            "{not_431} answers are not 431: {}",
            tally(&statuses)
        ));
    }
    let open = answers.iter().filter(|(_, closed)| !closed).count();
    if open > 0 {
        failures.push(format!(
            "{open} connections still open {} after the answer",
            secs(SLACK)
        ));
    }
    Outcome {
        summary: format!(
            "{sent} requests ({} bytes of head each): [{}], {} closed after the answer",
            head.len(),
            tally(&statuses),
            answers.iter().filter(|(_, c)| *c).count()
        ),
        failures,
        limits: vec![("header_too_large", sent as u64)],
    }
}

// 8. a client that never reads -----------------------------------------------------------------

pub async fn never_reads(port: u16) -> Outcome {
    let mut failures = Vec::new();
    let (_never_read, mut w) = match connect(port).await {
        Ok(s) => s.into_split(),
        Err(e) => {
            return Outcome {
                summary: e.clone(),
                failures: vec![e],
                limits: vec![("idle_timeout", 1)],
            };
        }
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let batch = request.repeat(1000);
    let start = Instant::now();
    let (mut written, mut off) = (0u64, 0usize);
    // When our writes stopped making progress (a write pending for a second).
    let mut stalled: Option<Instant> = None;
    let mut closed: Option<Instant> = None;
    let mut end = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        let began = Instant::now();
        let until = match stalled {
            None => began + Duration::from_secs(1),
            Some(t) => t + IDLE_TIMEOUT + STALL_SLACK + Duration::from_secs(2),
        };
        match tokio::time::timeout_at(deadline(until), w.write(&batch[off..])).await {
            Ok(Ok(n)) => {
                written += n as u64;
                off = (off + n) % batch.len();
                // Progress: the server read again.
                stalled = None;
            }
            Ok(Err(e)) => {
                closed = Some(Instant::now());
                end = e.kind().to_string();
                break;
            }
            Err(_) if stalled.is_none() => stalled = Some(began),
            Err(_) => break,
        }
    }
    let requests = written / request.len() as u64;
    let summary = match (stalled, closed) {
        (Some(s), Some(c)) => format!(
            "{requests} requests written; writes stalled at {}, closed ({end}) {} after the stall",
            secs(s - start),
            secs(c - s)
        ),
        (Some(s), None) => {
            failures.push(format!(
                "never-reading client still open {} after its writes stalled",
                secs(s.elapsed())
            ));
            format!(
                "{requests} requests written; writes stalled at {}, still open {} later",
                secs(s - start),
                secs(s.elapsed())
            )
        }
        (None, Some(c)) => format!(
            "{requests} requests written; closed ({end}) at {} before writes stalled",
            secs(c - start)
        ),
        (None, None) => {
            failures.push("never-reading client: writes never stalled in 30 s".to_string());
            format!("{requests} requests written, never stalled")
        }
    };
    if let (Some(s), Some(c)) = (stalled, closed)
        && c - s > IDLE_TIMEOUT + STALL_SLACK
    {
        failures.push(format!(
            "never-reading client closed {} after its writes stalled (idle_timeout + {} allowed)",
            secs(c - s),
            secs(STALL_SLACK)
        ));
    }
    Outcome {
        summary,
        failures,
        limits: vec![("idle_timeout", 1)],
    }
}

// 9. idle keep-alive connections ---------------------------------------------------------------

pub const IDLE_CONNECTIONS: usize = 5_000;
/// `limits.max_connections`: the test config leaves the default.
const MAX_CONNECTIONS: usize = 2048;
/// Connections being opened (connect + one request) at once.
const IDLE_OPENING: usize = 200;

/// How one idle connection ended.
#[derive(Debug, Clone)]
enum Idle {
    /// Answered with this status, then closed this long after the answer.
    Answered(u16, Duration),
    /// Closed without any byte of an answer: over `limits.max_connections`.
    Refused,
}

/// One connection: a `GET /healthz`, its answer, then idle until the server closes it; or,
/// over `max_connections`, closed before any byte of an answer.
async fn idle_one(
    port: u16,
    opening: Arc<tokio::sync::Semaphore>,
    open: Arc<(AtomicUsize, AtomicUsize)>,
) -> Result<Idle, String> {
    let permit = opening.acquire_owned().await.unwrap();
    let mut s = connect(port).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .map_err(|e| format!("write: {}", e.kind()))?;
    let (mut raw, mut buf) = (Vec::new(), [0u8; 1024]);
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                // Closed (or reset) before any byte of an answer: refused. How soon is not a
                // criterion (a busy server accepts the storm's connections late); the server's
                // own `max_connections` count must cover every one (checked by the harness).
                Ok(0) | Err(_) if raw.is_empty() => return Ok(None),
                Ok(0) => return Err("closed before the answer".to_string()),
                Err(e) => return Err(format!("{} before the answer", e.kind())),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
            if let Some(end) = complete_response(&raw) {
                return Ok(Some(parse_response(&raw[..end], false)?.status));
            }
        }
    })
    .await
    .map_err(|_| "no answer within 10 s".to_string())??;
    drop(permit);
    let Some(status) = status else {
        return Ok(Idle::Refused);
    };
    let answered = Instant::now();
    let now_open = open.0.fetch_add(1, Ordering::SeqCst) + 1;
    open.1.fetch_max(now_open, Ordering::SeqCst);
    let closed = tokio::time::timeout(IDLE_TIMEOUT + SLACK + Duration::from_secs(3), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    open.0.fetch_sub(1, Ordering::SeqCst);
    match closed {
        Ok(()) => Ok(Idle::Answered(status, answered.elapsed())),
        Err(_) => Err(format!(
            "still open {} after the answer",
            secs(answered.elapsed())
        )),
    }
}

pub async fn idle_connections(port: u16) -> Outcome {
    let opening = Arc::new(tokio::sync::Semaphore::new(IDLE_OPENING));
    let open = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let start = Instant::now();
    let tasks = (0..IDLE_CONNECTIONS)
        .map(|_| tokio::spawn(idle_one(port, Arc::clone(&opening), Arc::clone(&open))))
        .collect();
    let results = join_all(tasks).await;
    let took = start.elapsed();
    let mut failures = Vec::new();
    let errors: Vec<String> = results.iter().filter_map(|r| r.clone().err()).collect();
    if !errors.is_empty() {
        failures.push(format!(
            "idle connections: {} of {IDLE_CONNECTIONS} failed: {}",
            errors.len(),
            tally(&errors)
        ));
    }
    let ended: Vec<Idle> = results.into_iter().flatten().collect();
    let refused = ended.iter().filter(|i| matches!(i, Idle::Refused)).count();
    let answers: Vec<(u16, Duration)> = ended
        .iter()
        .filter_map(|i| match i {
            Idle::Answered(status, after) => Some((*status, *after)),
            Idle::Refused => None,
        })
        .collect();
    let not_200 = answers.iter().filter(|(s, _)| *s != 200).count();
    if not_200 > 0 {
        failures.push(format!("idle connections: {not_200} GET /healthz not 200"));
    }
    let closes: Vec<Duration> = answers.iter().map(|(_, t)| *t).collect();
    let late = closes.iter().filter(|t| **t > IDLE_TIMEOUT + SLACK).count();
    if late > 0 {
        failures.push(format!(
            "idle connections: {late} closed later than idle_timeout + {} after their answer ({})",
            secs(SLACK),
            spread(&closes)
        ));
    }
    let at_most = open.1.load(Ordering::SeqCst);
    if at_most > MAX_CONNECTIONS {
        failures.push(format!(
            "idle connections: {at_most} open at once, limits.max_connections is {MAX_CONNECTIONS}"
        ));
    }
    Outcome {
        summary: format!(
            "{}/{IDLE_CONNECTIONS} answered then closed {} after the answer, {refused} refused at \
             once (max_connections); at most {at_most} open at once; all done in {}",
            answers.len(),
            spread(&closes),
            secs(took)
        ),
        failures,
        limits: vec![
            ("idle_timeout", answers.len() as u64),
            ("max_connections", refused as u64),
        ],
    }
}
