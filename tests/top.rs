//! `flowbridge top` as a person uses it, against a flowbridge in front of the real Flow: under
//! `tmux` (the live view: the figures on screen move while events are sent, `q` quits), and
//! `--once`, whose plain table is parsed.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{FlowBridge, flowbridge_bin, post_event, shared_flow, unique};

fn bridge() -> FlowBridge {
    let flow = shared_flow();
    let config = support::write_config(&format!(
        r#"
unmatched: reject
gateways:
  main: {{url: "{}", timeout: 20s}}
routes:
  - name: orders
    gateway: main
    filters:
      - exact: {{type: top.order}}
"#,
        flow.grpc_url()
    ));
    FlowBridge::start(&config)
}

/// Sends events to `port` until `stop` (202 for `top.order`, 422 for anything else).
fn sender(port: u16, ty: &'static str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            let status = post_event(port, &unique("top"), ty, &[]);
            assert!(status == 202 || status == 422, "{status}");
            sent += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        sent
    })
}

/// The numbers of the line starting with `name` in a table.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().skip(1).map(str::to_owned).collect())
}

#[test]
fn once_prints_a_table_with_the_live_figures() {
    let bridge = bridge();
    let url = format!("http://127.0.0.1:{}", bridge.admin_port);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = sender(bridge.port, "top.order", stop.clone());
    let unmatched = sender(bridge.port, "top.nobody", stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new(flowbridge_bin())
        .args(["top", &url, "--once"])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(ok.join().unwrap() > 0 && unmatched.join().unwrap() > 0);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let orders = row(&table, "orders").unwrap_or_else(|| panic!("no orders row:\n{table}"));
    // EVENTS/S 2XX/S 4XX/S 5XX/S
    let n = |i: usize| orders[i].parse::<f64>().unwrap();
    assert!(n(0) > 10.0 && n(1) > 10.0 && n(3) == 0.0, "{table}");
    // Unmatched events carry the route label of no route: `flowbridge_event_count_total` counts
    // them under route "" (shown as an empty name) or not at all — either way not as orders.
    let main = row(&table, "main").unwrap_or_else(|| panic!("no main row:\n{table}"));
    // REQ/S FLIGHT/LIMIT DOCS/REQ P50 P99 QUEUE WAIT-P99 COLD REASON
    assert!(main[0].parse::<f64>().unwrap() > 1.0, "{table}");
    assert!(main[1].contains('/'), "{table}");
    assert!(main[2].parse::<f64>().unwrap() >= 1.0, "{table}");
    assert!(main[4].parse::<f64>().unwrap() > 0.0, "{table}");
    // Every event waits a little (microseconds at least) before its request is sent.
    assert!(main[6].parse::<f64>().unwrap() > 0.0, "{table}");
    assert_eq!(main[7], "no", "{table}");

    // Nothing to scrape: exit 1 and say why.
    let out = Command::new(flowbridge_bin())
        .args(["top", "http://127.0.0.1:1", "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach 127.0.0.1:1"));
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run tmux ({e}); install it (Debian: apt-get install tmux)")
        });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn live_view_under_tmux_moves_and_quits_on_q() {
    let bridge = bridge();
    let url = format!("http://127.0.0.1:{}", bridge.admin_port);
    let session = unique("fbtop");
    let socket = unique("fbtop-sock");
    let base = ["-L", socket.as_str()];
    let cmd = format!(
        "{} top {url}; echo EXITED $?; sleep 30",
        flowbridge_bin().display()
    );
    let mut new = base.to_vec();
    new.extend([
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "30",
        &cmd,
    ]);
    tmux(&new);
    let capture = || {
        let mut a = base.to_vec();
        a.extend(["capture-pane", "-p", "-t", &session]);
        tmux(&a)
    };
    // Wait for the first figures.
    let wait_for = |what: &dyn Fn(&str) -> bool, within: Duration| -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = capture();
            if what(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "screen never matched:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let quiet = wait_for(&|s| row(s, "main").is_some(), Duration::from_secs(15));
    assert!(quiet.contains("flowbridge top"), "{quiet}");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = sender(bridge.port, "top.order", stop.clone());
    // The orders row appears and its events/s goes above zero while events flow.
    let busy = wait_for(
        &|s| {
            row(s, "orders")
                .and_then(|r| r.first().and_then(|v| v.parse::<f64>().ok()))
                .is_some_and(|v| v > 5.0)
        },
        Duration::from_secs(15),
    );
    eprintln!("the live view while events flow:\n{busy}");
    let first = row(&busy, "main").unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(ok.join().unwrap() > 0);
    // After the events stop the rate falls back to 0 on screen.
    let after = wait_for(
        &|s| {
            row(s, "orders")
                .and_then(|r| r.first().and_then(|v| v.parse::<f64>().ok()))
                .is_some_and(|v| v == 0.0)
        },
        Duration::from_secs(15),
    );
    assert_ne!(row(&after, "main").unwrap(), first, "{after}");
    // A narrower terminal: lines are cut to its width.
    let mut resize = base.to_vec();
    resize.extend(["resize-window", "-t", &session, "-x", "40", "-y", "20"]);
    tmux(&resize);
    let narrow = wait_for(
        &|s| s.lines().all(|l| l.chars().count() <= 40) && s.contains("ROUTE"),
        Duration::from_secs(10),
    );
    assert!(narrow.contains("orders"), "{narrow}");
    // q quits with status 0.
    let mut keys = base.to_vec();
    keys.extend(["send-keys", "-t", &session, "q"]);
    tmux(&keys);
    let done = wait_for(&|s| s.contains("EXITED"), Duration::from_secs(10));
    assert!(done.contains("EXITED 0"), "{done}");
    let mut kill = base.to_vec();
    kill.extend(["kill-server"]);
    tmux(&kill);
}
