//! The HTTP/2 (h2c, prior knowledge) cases: rapid reset, SETTINGS and PING floods, with frames
//! and HPACK written by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::OwnedReadHalf;

use crate::Outcome;
use crate::net::{connect, deadline, secs, tally};

// 5.–7. HTTP/2 ---------------------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADERS: u8 = 0x1;
const FRAME_RST_STREAM: u8 = 0x3;
pub const FRAME_SETTINGS: u8 = 0x4;
pub const FRAME_PING: u8 = 0x6;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
pub const CANCEL: u32 = 0x8;
/// How long the HTTP/2 cases go on.
const H2_FOR: Duration = Duration::from_secs(5);

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK "literal header field without indexing, indexed name" (RFC 7541 6.2.2), no Huffman.
fn literal(name_index: u8, value: &str) -> Vec<u8> {
    assert!(name_index < 15 && value.len() < 127);
    let mut f = vec![name_index, value.len() as u8];
    f.extend_from_slice(value.as_bytes());
    f
}

/// HEADERS of `POST /` on `stream`, END_HEADERS without END_STREAM (a body would follow).
fn post_headers(stream: u32) -> Vec<u8> {
    let mut block = literal(2, "POST"); // :method
    block.extend(literal(6, "http")); // :scheme
    block.extend(literal(4, "/")); // :path
    block.extend(literal(1, "x")); // :authority
    frame(FRAME_HEADERS, FLAG_END_HEADERS, stream, &block)
}

fn reason(code: u32) -> String {
    let names = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    names
        .get(code as usize)
        .map_or_else(|| format!("0x{code:x}"), |n| n.to_string())
}

/// What a client read from the server's side of an HTTP/2 connection.
#[derive(Default)]
struct H2Seen {
    /// The server's SETTINGS (not ACKs): it speaks HTTP/2.
    settings: u64,
    settings_acks: u64,
    ping_acks: u64,
    headers: u64,
    resets: u64,
    /// Every GOAWAY: when, last stream id, error code.
    goaways: Vec<(Duration, u32, u32)>,
    /// When the server closed (EOF or error).
    closed: Option<Duration>,
    /// SETTINGS of the server not yet acknowledged.
    acks_owed: u64,
    /// The first bytes read (for a server that does not speak HTTP/2).
    first_bytes: Vec<u8>,
}

impl H2Seen {
    fn describe(&self) -> String {
        let goaway = match (self.goaways.first(), self.goaways.last()) {
            (Some(first), Some(last)) if self.goaways.len() > 1 => format!(
                "GOAWAY {} (last stream {}) at {}, … {} (last stream {}) at {}",
                reason(first.2),
                first.1,
                secs(first.0),
                reason(last.2),
                last.1,
                secs(last.0)
            ),
            (Some(g), _) => format!(
                "GOAWAY {} (last stream {}) at {}",
                reason(g.2),
                g.1,
                secs(g.0)
            ),
            _ => "no GOAWAY".to_string(),
        };
        let closed = self.closed.map_or("not closed".to_string(), |t| {
            format!("closed at {}", secs(t))
        });
        format!("{goaway}, {closed}")
    }
}

/// Reads the server's frames into `seen` until the connection closes.
async fn read_frames(mut r: OwnedReadHalf, seen: Arc<Mutex<H2Seen>>, start: Instant) {
    let (mut pending, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                seen.lock().unwrap().closed = Some(start.elapsed());
                return;
            }
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut seen = seen.lock().unwrap();
        if seen.first_bytes.is_empty() {
            seen.first_bytes = pending[..pending.len().min(64)].to_vec();
        }
        while pending.len() >= 9 {
            let len = u32::from_be_bytes([0, pending[0], pending[1], pending[2]]) as usize;
            if pending.len() < 9 + len {
                break;
            }
            let (kind, flags, payload) = (pending[3], pending[4], &pending[9..9 + len]);
            match kind {
                FRAME_SETTINGS if flags & FLAG_ACK == 0 => {
                    seen.settings += 1;
                    seen.acks_owed += 1;
                }
                FRAME_SETTINGS => seen.settings_acks += 1,
                FRAME_PING if flags & FLAG_ACK != 0 => seen.ping_acks += 1,
                FRAME_HEADERS => seen.headers += 1,
                FRAME_RST_STREAM => seen.resets += 1,
                FRAME_GOAWAY if len >= 8 => {
                    let last = u32::from_be_bytes(payload[0..4].try_into().unwrap()) & 0x7fff_ffff;
                    let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
                    seen.goaways.push((start.elapsed(), last, code));
                }
                _ => {}
            }
            pending.drain(..9 + len);
        }
    }
}

/// The check every HTTP/2 case makes: the server answered the preface with SETTINGS.
fn spoke_h2(seen: &H2Seen, failures: &mut Vec<String>) {
    if seen.settings == 0 {
        failures.push(format!(
            "no HTTP/2 SETTINGS from the server (h2c with prior knowledge not served); it sent {:?}",
            String::from_utf8_lossy(&seen.first_bytes)
        ));
    }
}

/// One rapid-reset connection, until `until` or until the server sends GOAWAY or closes: how
/// many streams it opened (and reset), what the server sent, why it stopped. Fast: 50 HEADERS +
/// RST_STREAM pairs a write, as fast as the socket takes them (most streams are reset before
/// the server accepted them). Paced: a HEADERS, 1 ms, its RST_STREAM (the server has accepted
/// the stream and started its request; the reset cancels it).
async fn rapid_reset_connection(
    port: u16,
    until: Instant,
    paced: bool,
) -> Result<(u64, H2Seen, String), String> {
    let (r, mut w) = connect(port).await?.into_split();
    let start = Instant::now();
    let seen = Arc::new(Mutex::new(H2Seen::default()));
    let reader = tokio::spawn(read_frames(r, Arc::clone(&seen), start));
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(FRAME_SETTINGS, 0, 0, &[]));
    let (mut stream, mut opened) = (1u32, 0u64);
    let mut stopped = String::from("window over");
    if let Err(e) = w.write_all(&hello).await {
        stopped = format!("preface: {}", e.kind());
    } else {
        while Instant::now() < until {
            let mut batch = Vec::new();
            {
                let mut seen = seen.lock().unwrap();
                if !seen.goaways.is_empty() || seen.closed.is_some() {
                    stopped = "server ended it".to_string();
                    break;
                }
                for _ in 0..std::mem::take(&mut seen.acks_owed) {
                    batch.extend(frame(FRAME_SETTINGS, FLAG_ACK, 0, &[]));
                }
            }
            let pairs = if paced { 1 } else { 50 };
            for _ in 0..pairs {
                batch.extend(post_headers(stream));
                if paced {
                    if w.write_all(&batch).await.is_err() {
                        break;
                    }
                    batch.clear();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                batch.extend(frame(FRAME_RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
                stream += 2;
            }
            match tokio::time::timeout(Duration::from_secs(1), w.write_all(&batch)).await {
                Ok(Ok(())) => opened += pairs,
                Ok(Err(e)) => {
                    stopped = format!("write: {}", e.kind());
                    break;
                }
                Err(_) => {
                    stopped = format!("writes blocked at {}", secs(start.elapsed()));
                    break;
                }
            }
            // One worker thread: let the reader see what the server sends.
            tokio::task::yield_now().await;
        }
    }
    // What the server still says about it (a GOAWAY in flight, the close).
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while seen.lock().unwrap().closed.is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    drop(w);
    reader.abort();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    Ok((opened, seen, stopped))
}

/// Rapid reset for [`H2_FOR`]: a connection at a time, the next one as soon as the server ended
/// the last (as an attacker would).
pub async fn rapid_reset(port: u16, paced: bool) -> Outcome {
    let mut failures = Vec::new();
    let start = Instant::now();
    let until = start + H2_FOR;
    let (mut connections, mut streams) = (0u64, 0u64);
    let (mut first, mut goaways, mut errors) = (None, Vec::new(), Vec::new());
    while Instant::now() < until {
        match rapid_reset_connection(port, until, paced).await {
            Ok((opened, seen, stopped)) => {
                connections += 1;
                streams += opened;
                goaways.extend(seen.goaways.iter().map(|g| reason(g.2)));
                if first.is_none() {
                    spoke_h2(&seen, &mut failures);
                    first = Some(format!(
                        "first: {opened} streams, {}, {}; server sent {} HEADERS, {} RST_STREAM",
                        stopped,
                        seen.describe(),
                        seen.headers,
                        seen.resets
                    ));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        failures.push(format!("rapid reset: {}", tally(&errors)));
    }
    Outcome {
        summary: format!(
            "{connections} connections, {streams} streams opened+reset in {} (GOAWAYs: {}); {}",
            secs(start.elapsed()),
            if goaways.is_empty() {
                "none".to_string()
            } else {
                tally(&goaways)
            },
            first.unwrap_or_default()
        ),
        failures,
        // The paced reset is flowbridge's own guard's (README, "Server limits"); the fast one is
        // refused by h2 itself (ENHANCE_YOUR_CALM) before flowbridge sees the requests.
        limits: paced.then_some(("reset_flood", 1)).into_iter().collect(),
    }
}

/// Writes `one` over and over for [`H2_FOR`] after the preface, reading nothing; then reads what
/// the server sent.
pub async fn flood(port: u16, one: Vec<u8>) -> Outcome {
    let mut failures = Vec::new();
    let (r, mut w) = match connect(port).await {
        Ok(s) => s.into_split(),
        Err(e) => {
            return Outcome {
                summary: e.clone(),
                failures: vec![e],
                limits: Vec::new(),
            };
        }
    };
    let start = Instant::now();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(FRAME_SETTINGS, 0, 0, &[]));
    let batch = one.repeat(256);
    let (mut written, mut off) = (0u64, 0usize);
    let mut blocked_at: Option<Duration> = None;
    let mut ended = None;
    if let Err(e) = w.write_all(&hello).await {
        ended = Some(format!("preface: {}", e.kind()));
    }
    while ended.is_none() && start.elapsed() < H2_FOR {
        let began = start.elapsed();
        let until = (start + H2_FOR).min(Instant::now() + Duration::from_millis(500));
        match tokio::time::timeout_at(deadline(until), w.write(&batch[off..])).await {
            Ok(Ok(n)) => {
                written += n as u64;
                off = (off + n) % batch.len();
                blocked_at = None;
            }
            Ok(Err(e)) => ended = Some(format!("write {} at {}", e.kind(), secs(start.elapsed()))),
            Err(_) => {
                blocked_at.get_or_insert(began);
            }
        }
        tokio::task::yield_now().await;
    }
    let frames = written / one.len() as u64;
    let writes = match (&ended, blocked_at) {
        (Some(e), Some(t)) => format!("writes blocked from {}, then {e}", secs(t)),
        (Some(e), None) => e.clone(),
        (None, Some(t)) => format!("writes blocked from {} on", secs(t)),
        (None, None) => "writes never blocked".to_string(),
    };
    // Now read: what did the server send meanwhile (ACKs, GOAWAY), and does it close?
    let seen = Arc::new(Mutex::new(H2Seen::default()));
    let reader = tokio::spawn(read_frames(r, Arc::clone(&seen), start));
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while seen.lock().unwrap().closed.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(w);
    reader.abort();
    let seen = seen.lock().unwrap();
    spoke_h2(&seen, &mut failures);
    Outcome {
        summary: format!(
            "{frames} frames written in {} ({writes}); then read {} SETTINGS ACKs, {} PING ACKs; {}",
            secs(H2_FOR),
            seen.settings_acks,
            seen.ping_acks,
            seen.describe()
        ),
        failures,
        limits: Vec::new(),
    }
}
