//! What flowbridge uses: VmRSS and fds from `/proc/<pid>`, CPU time, and the admin
//! `/metrics` series of its connections, limits and tasks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::FlowBridge;

/// VmRSS (KiB) and open file descriptors of a process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub rss_kib: u64,
    pub fds: usize,
}

pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    Usage { rss_kib, fds }
}

/// CPU time used so far: by process `pid` (utime + stime), and by the whole machine (busy and
/// total, summed over its cores), in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    at: Instant,
    process: u64,
    busy: u64,
    total: u64,
}

impl Cpu {
    pub fn now(pid: u32) -> Cpu {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // Fields after the command name (which may hold spaces): state is field 3, utime 14.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<u64> = after.split(' ').map(|f| f.parse().unwrap_or(0)).collect();
        let process = fields[11] + fields[12];
        let all = std::fs::read_to_string("/proc/stat").unwrap();
        let cpu: Vec<u64> = all
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
        let total: u64 = cpu.iter().take(8).sum();
        let busy = total - cpu[3] - cpu[4];
        Cpu {
            at: Instant::now(),
            process,
            busy,
            total,
        }
    }

    /// Between `self` and `later`: the process's CPU (100 = one core) and the machine's busy
    /// cores (100 = one core), in percent.
    pub fn until(&self, later: &Cpu) -> (f64, f64) {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let seconds = (later.at - self.at).as_secs_f64().max(1e-3);
        let process = (later.process - self.process) as f64 / ticks / seconds * 100.0;
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        let total = (later.total - self.total).max(1) as f64;
        let machine = (later.busy - self.busy) as f64 / total * cores * 100.0;
        (process, machine)
    }
}

/// Samples VmRSS and fds every 100 ms on a thread, keeping the maxima.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, usize)>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut rss, mut fds) = (0, 0);
            loop {
                let u = usage(pid);
                rss = rss.max(u.rss_kib);
                fds = fds.max(u.fds);
                if flag.load(Ordering::SeqCst) {
                    return (rss, fds);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler { stop, thread }
    }

    /// The most VmRSS (KiB) and fds seen.
    pub fn stop(self) -> (u64, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// What the admin `/metrics` says about connections, limits and tasks.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// `flowbridge_limits_total` by its `limit` label.
    pub limits: BTreeMap<String, u64>,
    pub connections_open: Option<u64>,
    pub tasks: Option<u64>,
}

impl Scrape {
    pub fn of(bridge: &FlowBridge) -> Scrape {
        let text = bridge.metrics();
        let mut scrape = Scrape::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = value as u64;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            match name {
                "flowbridge_limits_total" => {
                    let limit = labels
                        .split(',')
                        .find_map(|l| l.trim().strip_prefix("limit=\""))
                        .map(|l| l.trim_end_matches('}').trim_end_matches('"'))
                        .unwrap_or("?")
                        .to_string();
                    *scrape.limits.entry(limit).or_default() += value;
                }
                "flowbridge_connections_open" => {
                    *scrape.connections_open.get_or_insert(0) += value;
                }
                "flowbridge_runtime_tasks" => *scrape.tasks.get_or_insert(0) += value,
                _ => {}
            }
        }
        scrape
    }

    /// How much each limit counter rose since `before` (only those that did).
    pub fn limits_since(&self, before: &Scrape) -> BTreeMap<String, u64> {
        self.limits
            .iter()
            .map(|(k, v)| {
                let base = before.limits.get(k).copied().unwrap_or(0);
                (k.clone(), v.saturating_sub(base))
            })
            .filter(|(_, d)| *d > 0)
            .collect()
    }
}

pub fn show(v: Option<u64>) -> String {
    v.map_or("–".to_string(), |v| v.to_string())
}
