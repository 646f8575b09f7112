//! The well-behaved sender: keep-alive HTTP/1.1 connections POSTing real CloudEvents at a
//! steady rate, each event's latency measured from when it was due.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::unique;
use crate::{RATE, SENDER_CONNECTIONS};

/// One well-behaved event: when it was due, how long from then to its answer, and the answer.
pub struct Sample {
    pub scheduled: Instant,
    pub latency: Duration,
    pub id: String,
    pub outcome: Result<u16, String>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        matches!(self.outcome, Ok(s) if (200..300).contains(&s))
    }
}

/// [`RATE`] events/s over [`SENDER_CONNECTIONS`] threads, each with one keep-alive connection.
pub struct Sender {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The sender's figures over a window of scheduled times.
pub struct Window {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub failures: Vec<String>,
}

impl Sender {
    pub fn start(port: u16) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let interval = Duration::from_secs_f64(f64::from(SENDER_CONNECTIONS) / f64::from(RATE));
        let first = Instant::now() + Duration::from_millis(100);
        let threads = (0..SENDER_CONNECTIONS)
            .map(|i| {
                let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
                let first = first + interval * i / SENDER_CONNECTIONS;
                std::thread::spawn(move || send_loop(port, first, interval, &stop, &samples))
            })
            .collect();
        Sender {
            stop,
            samples,
            threads,
        }
    }

    /// The events scheduled in `[from, to)`.
    pub fn window(&self, from: Instant, to: Instant) -> Window {
        let samples = self.samples.lock().unwrap();
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.scheduled >= from && s.scheduled < to)
            .collect();
        let mut latencies: Vec<Duration> = inside.iter().map(|s| s.latency).collect();
        latencies.sort();
        let quantile = |q: usize| {
            if latencies.is_empty() {
                Duration::ZERO
            } else {
                latencies[(latencies.len() * q).div_ceil(100).max(1) - 1]
            }
        };
        let (p50, p99) = (quantile(50), quantile(99));
        let failures = inside
            .iter()
            .filter(|s| !s.ok())
            .map(|s| format!("{}: {:?}", s.id, s.outcome))
            .collect();
        Window {
            count: inside.len(),
            p50,
            p99,
            failures,
        }
    }

    /// Stops the threads; every event they sent.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

type Connection = (std::net::TcpStream, BufReader<std::net::TcpStream>);

fn send_loop(
    port: u16,
    first: Instant,
    interval: Duration,
    stop: &AtomicBool,
    samples: &Mutex<Vec<Sample>>,
) {
    let mut next = first;
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let scheduled = next;
        next += interval;
        let id = unique("hostile-good");
        let outcome = send_one(port, &mut connection, &id);
        let latency = scheduled.elapsed();
        samples.lock().unwrap().push(Sample {
            scheduled,
            latency,
            id,
            outcome,
        });
    }
}

/// POSTs one binary-mode event on the kept connection (a new one if there is none); the status.
fn send_one(port: u16, connection: &mut Option<Connection>, id: &str) -> Result<u16, String> {
    if connection.is_none() {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        *connection = Some((stream, reader));
    }
    let (stream, reader) = connection.as_mut().unwrap();
    let body = br#"{"text": "hello"}"#;
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nce-specversion: 1.0\r\nce-id: {id}\r\n\
         ce-type: hostile.good\r\nce-source: /hostile/sender\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let answer = stream
        .write_all(&request)
        .and_then(|()| read_response(reader));
    match answer {
        Ok((status, close)) => {
            if close {
                *connection = None;
            }
            Ok(status)
        }
        Err(e) => {
            *connection = None;
            Err(e.to_string())
        }
    }
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body): its status and whether the
/// server said `Connection: close`.
fn read_response(reader: &mut impl BufRead) -> std::io::Result<(u16, bool)> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let (mut length, mut chunked, mut close) = (0usize, false, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => {
                length = value
                    .parse()
                    .map_err(|_| bad(format!("content-length {value:?}")))?
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("chunk size {line:?}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
        }
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
    }
    Ok((status, close))
}
