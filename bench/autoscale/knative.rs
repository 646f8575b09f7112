//! A Knative Service of Flow replicas, modelled: pods that start cold and serve requests with
//! modelled service times, the activator that holds requests while no pod is ready, and the KPA
//! ([`super::kpa`]) that sets the pod count every 2 s.
//!
//! * **A replica** (one pod: Jina gateway and executor together) takes `cold_start` from
//!   creation to ready, then serves `slots` requests at a time (a Jina executor: one), each for
//!   `per_request + per_doc × documents`; others wait in it, first come first served. Before
//!   that, each request spends `overhead_request + overhead_doc × documents` on its own (the
//!   gateway and the network, which overlap with other requests' service). Every
//!   request in it counts as concurrency, waiting or not (`pkg/queue/handler.go`: a
//!   revision with `containerConcurrency: 0` has no queue-proxy breaker).
//! * **Routing.** With `containerConcurrency: 0` the activator picks the less loaded of two
//!   random ready pods (`pkg/activator/net/lb_policy.go` `randomChoice2Policy`). It stays in the
//!   path unless the excess burst capacity is non-negative (`kpa.go` `ReconcileKind`), which at
//!   the default `target-burst-capacity` (211) needs more pods than these scenarios' targets
//!   reach, so every request goes through it.
//! * **Cold start.** While no pod is ready the activator holds requests (up to 10,000 per
//!   revision, `pkg/activator/net/throttler.go` `breakerQueueDepth`; beyond that 503) and its
//!   first request pokes the autoscaler, which asks for a pod at once (`MultiScaler.Poke`).
//! * **Scale down.** A removed pod leaves the routing at once (readiness fails), finishes its
//!   requests and stays `drain` longer (the queue-proxy's 30 s quiet period,
//!   `drainSleepDuration`) before it is gone; Kubernetes removes the newest pods first.
//!   Replica-seconds count every pod from creation to gone.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::kpa::{Kpa, KpaSpec};

/// One Flow replica's behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowModel {
    #[serde(with = "super::duration")]
    pub cold_start: Duration,
    #[serde(with = "super::duration")]
    pub per_request: Duration,
    #[serde(with = "super::duration")]
    pub per_doc: Duration,
    /// Requests served at once by one replica.
    pub slots: usize,
    /// Time each request also spends outside the slots (Jina's gateway, the network: it overlaps
    /// with other requests' service).
    #[serde(with = "super::duration")]
    pub overhead_request: Duration,
    #[serde(with = "super::duration")]
    pub overhead_doc: Duration,
    /// How long a removed pod lives on after its last request.
    #[serde(with = "super::duration")]
    pub drain: Duration,
}

impl Default for FlowModel {
    fn default() -> FlowModel {
        FlowModel {
            cold_start: Duration::from_secs(10),
            per_request: Duration::from_millis(20),
            per_doc: Duration::from_micros(200),
            slots: 1,
            overhead_request: Duration::ZERO,
            overhead_doc: Duration::ZERO,
            drain: Duration::from_secs(30),
        }
    }
}

impl FlowModel {
    pub fn service_time(&self, docs: usize) -> Duration {
        self.per_request + self.per_doc * docs as u32
    }

    pub fn overhead(&self, docs: usize) -> Duration {
        self.overhead_request + self.overhead_doc * docs as u32
    }
}

/// The activator's queue was full.
#[derive(Debug)]
pub struct Refused;

#[derive(Debug, Clone, Copy, PartialEq)]
enum PodState {
    Starting,
    Ready,
    /// Removed: no new requests; gone `drain` after its last one.
    Draining {
        idle_since: Option<Instant>,
    },
}

#[derive(Debug)]
struct Pod {
    id: u64,
    state: PodState,
    in_flight: usize,
    slots: Arc<Semaphore>,
}

/// What one second looked like.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Sample {
    /// Pods alive (starting, ready or draining).
    pub pods: u32,
    pub ready: u32,
    /// Requests in the revision (pods and activator), averaged over the second: the
    /// concurrency Knative's autoscaler is given.
    pub in_flight: f32,
    /// Requests started by a pod during the second, and their documents.
    pub requests: u32,
    pub docs: u64,
    /// The KPA's last decision.
    pub desired: u32,
    pub panicking: bool,
}

#[derive(Debug)]
struct Inner {
    pods: Vec<Pod>,
    next_id: u64,
    /// Requests held by the activator.
    held: usize,
    /// Requests anywhere in the revision, and ∫ of it over the current second.
    total: usize,
    integral: f64,
    changed: Instant,
    kpa: Kpa,
    desired: u32,
    panicking: bool,
    rng: fastrand::Rng,
    second: Sample,
    /// Totals.
    requests: u64,
    docs: u64,
    replica_seconds: f64,
    max_ready: u32,
    samples: Vec<Sample>,
}

/// The revision: pods, activator and autoscaler.
#[derive(Debug)]
pub struct Revision {
    flow: FlowModel,
    start: Instant,
    inner: Mutex<Inner>,
    /// A pod became ready (wakes requests the activator holds).
    ready: Notify,
}

/// Totals at the end of a run.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    pub requests: u64,
    pub docs: u64,
    pub replica_seconds: f64,
    pub max_ready: u32,
}

const ACTIVATOR_QUEUE: usize = 10_000;

impl Revision {
    /// A revision at zero pods (or `min_scale`), with its 1-second stats loop and 2-second
    /// autoscaler tick running.
    pub fn start(flow: FlowModel, kpa: KpaSpec, seed: u64) -> Arc<Revision> {
        let now = Instant::now();
        let min = kpa.min_scale;
        let revision = Arc::new(Revision {
            flow,
            start: now,
            inner: Mutex::new(Inner {
                pods: Vec::new(),
                next_id: 0,
                held: 0,
                total: 0,
                integral: 0.0,
                changed: now,
                kpa: Kpa::new(kpa),
                desired: 0,
                panicking: false,
                rng: fastrand::Rng::with_seed(seed),
                second: Sample::default(),
                requests: 0,
                docs: 0,
                replica_seconds: 0.0,
                max_ready: 0,
                samples: Vec::new(),
            }),
            ready: Notify::new(),
        });
        {
            let mut inner = revision.lock();
            revision.scale_to(&mut inner, min);
        }
        tokio::spawn(Revision::seconds(Arc::clone(&revision)));
        revision
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request of `docs` documents through the activator to a pod; returns when a pod
    /// answered it. Dropping the future is the client going away: the request leaves the
    /// activator, or stops counting at its pod at once (as the queue-proxy counts it) while the
    /// pod still does the work.
    pub async fn request(self: &Arc<Self>, docs: usize) -> Result<(), Refused> {
        {
            let mut inner = self.lock();
            if inner.held >= ACTIVATOR_QUEUE {
                return Err(Refused);
            }
            self.add(&mut inner, 1);
        }
        let mut guard = InRevision {
            revision: self,
            pod: None,
            held: false,
        };
        let slots = loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if guard.held {
                    inner.held -= 1;
                    guard.held = false;
                }
                if let Some(index) = pick(&mut inner) {
                    let pod = &mut inner.pods[index];
                    pod.in_flight += 1;
                    guard.pod = Some(pod.id);
                    let slots = Arc::clone(&pod.slots);
                    inner.second.requests += 1;
                    inner.second.docs += docs as u64;
                    inner.requests += 1;
                    inner.docs += docs as u64;
                    break slots;
                }
                inner.held += 1;
                guard.held = true;
                if inner.desired == 0 {
                    // The activator's first request pokes the autoscaler: one pod at once.
                    inner.desired = 1;
                    self.scale_to(&mut inner, 1);
                }
            }
            notified.await;
        };
        // The replica works on a request it got whether or not its client still waits (a Jina
        // executor does not notice a cancelled call): the work holds the slot on its own.
        let (done, answered) = tokio::sync::oneshot::channel();
        let (overhead, service) = (self.flow.overhead(docs), self.flow.service_time(docs));
        tokio::spawn(async move {
            tokio::time::sleep(overhead).await;
            let _slot = slots.acquire_owned().await;
            tokio::time::sleep(service).await;
            let _ = done.send(());
        });
        let _ = answered.await;
        Ok(())
    }

    /// Requests in the revision change by `delta`: close the integral so far.
    fn add(&self, inner: &mut Inner, delta: isize) {
        let now = Instant::now();
        inner.integral += inner.total as f64 * (now - inner.changed).as_secs_f64();
        inner.changed = now;
        inner.total = inner.total.saturating_add_signed(delta);
    }

    /// Add pods up to `n` alive-and-not-draining, or remove the newest beyond it.
    fn scale_to(self: &Arc<Self>, inner: &mut Inner, n: u32) {
        let serving = |inner: &Inner| {
            inner
                .pods
                .iter()
                .filter(|p| !matches!(p.state, PodState::Draining { .. }))
                .count() as u32
        };
        while serving(inner) < n {
            let id = inner.next_id;
            inner.next_id += 1;
            inner.pods.push(Pod {
                id,
                state: PodState::Starting,
                in_flight: 0,
                slots: Arc::new(Semaphore::new(self.flow.slots.max(1))),
            });
            let revision = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(revision.flow.cold_start).await;
                let mut inner = revision.lock();
                if let Some(p) = inner.pods.iter_mut().find(|p| p.id == id)
                    && p.state == PodState::Starting
                {
                    p.state = PodState::Ready;
                }
                drop(inner);
                revision.ready.notify_waiters();
            });
        }
        let now = Instant::now();
        let mut excess = serving(inner).saturating_sub(n);
        // Kubernetes removes pods that are not ready first, then the newest.
        for wanted in [PodState::Starting, PodState::Ready] {
            for pod in inner.pods.iter_mut().rev() {
                if excess == 0 {
                    return;
                }
                if pod.state == wanted {
                    pod.state = PodState::Draining {
                        idle_since: (pod.in_flight == 0).then_some(now),
                    };
                    excess -= 1;
                }
            }
        }
    }

    /// Every second: the second's average concurrency to the KPA, drained pods gone, a
    /// sample; every other second, an autoscaler tick.
    async fn seconds(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = Instant::now();
            let elapsed = now - self.start;
            let second = elapsed.as_secs();
            let mut inner = self.lock();
            self.add(&mut inner, 0);
            let concurrency = std::mem::take(&mut inner.integral);
            let alive = inner.pods.len();
            // Pods (and the activator, while it holds requests) report the second just ended,
            // stamped now.
            if alive > 0 || inner.held > 0 {
                inner.kpa.record(second, concurrency);
            }
            let drain = self.flow.drain;
            inner.pods.retain(|p| match p.state {
                PodState::Draining {
                    idle_since: Some(t),
                } => now - t < drain,
                _ => true,
            });
            inner.replica_seconds += alive as f64;
            if second.is_multiple_of(2) {
                let ready = count(&inner, PodState::Ready);
                let current = inner.desired;
                let decision = inner.kpa.tick(elapsed, ready, current);
                inner.desired = decision.pods;
                inner.panicking = decision.panicking;
                self.scale_to(&mut inner, decision.pods);
            }
            let ready = count(&inner, PodState::Ready);
            inner.max_ready = inner.max_ready.max(ready);
            let mut sample = std::mem::take(&mut inner.second);
            sample.pods = inner.pods.len() as u32;
            sample.ready = ready;
            sample.in_flight = concurrency as f32;
            sample.desired = inner.desired;
            sample.panicking = inner.panicking;
            inner.samples.push(sample);
        }
    }

    /// The samples so far (one per second since the revision started).
    pub fn samples(&self) -> Vec<Sample> {
        self.lock().samples.clone()
    }

    /// Pods alive now.
    pub fn pods(&self) -> usize {
        self.lock().pods.len()
    }

    pub fn totals(&self) -> Totals {
        let inner = self.lock();
        Totals {
            requests: inner.requests,
            docs: inner.docs,
            replica_seconds: inner.replica_seconds,
            max_ready: inner.max_ready,
        }
    }
}

fn count(inner: &Inner, state: PodState) -> u32 {
    inner.pods.iter().filter(|p| p.state == state).count() as u32
}

/// A request's place in the revision, given back when it ends (answered or dropped).
struct InRevision<'a> {
    revision: &'a Revision,
    pod: Option<u64>,
    /// Held by the activator.
    held: bool,
}

impl Drop for InRevision<'_> {
    fn drop(&mut self) {
        let revision = self.revision;
        let mut inner = revision.lock();
        revision.add(&mut inner, -1);
        if self.held {
            inner.held -= 1;
        }
        let now = Instant::now();
        if let Some(id) = self.pod
            && let Some(p) = inner.pods.iter_mut().find(|p| p.id == id)
        {
            p.in_flight -= 1;
            if let PodState::Draining { idle_since } = &mut p.state
                && p.in_flight == 0
            {
                *idle_since = Some(now);
            }
        }
    }
}

/// The less loaded of two different random ready pods (the one when only one is ready).
fn pick(inner: &mut Inner) -> Option<usize> {
    let ready: Vec<usize> = inner
        .pods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.state == PodState::Ready)
        .map(|(i, _)| i)
        .collect();
    match ready.len() {
        0 => None,
        1 => Some(ready[0]),
        n => {
            // Two different pods (`randomChoice2Policy` draws the second from the others).
            let i = inner.rng.usize(..n);
            let j = (i + 1 + inner.rng.usize(..n - 1)) % n;
            let (a, b) = (ready[i], ready[j]);
            Some(if inner.pods[b].in_flight < inner.pods[a].in_flight {
                b
            } else {
                a
            })
        }
    }
}
