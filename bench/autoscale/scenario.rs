//! Scenario files (`bench/autoscale/scenarios/*.yaml`) and their senders: what arrives, when,
//! and how each sender waits for its answer and retries, for either client.
//!
//! Senders behave as Knative's do: each event is one HTTP delivery that waits for its answer;
//! a failed delivery (flowbridge's 429/503/504, or the activator's 503 for the direct client)
//! is retried 10 times with exponential backoff from 0.2 s (a Broker's usual
//! `delivery: {retry: 10, backoffPolicy: exponential, backoffDelay: PT0.2S}`, about 205 s in
//! all); an event that fails them all is lost (dead-lettered).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbridge::dispatch::Dispatcher;
use flowbridge::flow::testing::{InProcess, Reply};
use flowbridge::flow::{Answer, RequestHead, SendError};
use flowbridge::model::{Document, FlowRequest, FlowResponse};
use flowbridge::telemetry::trace::EventSpan;
use serde::Deserialize;
use tokio::time::Instant;

use super::knative::{FlowModel, Revision};
use super::kpa::KpaSpec;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// One line for the table.
    pub about: String,
    #[serde(default)]
    pub flow: FlowModel,
    #[serde(default)]
    pub knative: KpaSpec,
    #[serde(default)]
    pub flowbridge: Bridge,
    /// Documents per event.
    #[serde(default = "one")]
    pub docs_per_event: usize,
    pub phases: Vec<Phase>,
}

fn one() -> usize {
    1
}

/// flowbridge's side of a scenario: the gateway's entry in flowbridge's config as a user
/// writes it (`concurrency`, `batch`, `timeout`, …; the product's defaults where not given),
/// read by flowbridge's own config loader ([`Bridge::spec`]). The simulator fills in `url` and,
/// unless `autoscale: false`, the Flow's Knative `autoscale: {target, max_scale}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bridge {
    pub gateway: serde_norway::Mapping,
    /// Tell flowbridge the Flow's Knative target and max-scale (`autoscale:`).
    pub autoscale: bool,
}

impl Default for Bridge {
    fn default() -> Bridge {
        Bridge {
            gateway: serde_norway::Mapping::new(),
            autoscale: true,
        }
    }
}

impl Bridge {
    /// The gateway flowbridge's config loader makes of [`Bridge::gateway`] in front of a
    /// revision with `knative`'s target and max-scale (every error of the entry, as `check`
    /// prints them).
    pub fn spec(&self, knative: &KpaSpec) -> Result<flowbridge::model::GatewaySpec, String> {
        use serde_norway::{Mapping, Value};
        let mut entry = self.gateway.clone();
        entry.insert("url".into(), "grpc://127.0.0.1:1".into());
        if self.autoscale {
            let mut scale = Mapping::new();
            scale.insert("target".into(), knative.target.into());
            scale.insert("max_scale".into(), knative.max_scale.into());
            entry.insert("autoscale".into(), Value::Mapping(scale));
        }
        let mut gateways = Mapping::new();
        gateways.insert("flow".into(), Value::Mapping(entry));
        let mut route = Mapping::new();
        route.insert("name".into(), "sim".into());
        route.insert("gateway".into(), "flow".into());
        let mut config = Mapping::new();
        config.insert("gateways".into(), Value::Mapping(gateways));
        config.insert(
            "routes".into(),
            Value::Sequence(vec![Value::Mapping(route)]),
        );
        let text = serde_norway::to_string(&config).map_err(|e| e.to_string())?;
        let mut config =
            flowbridge::config::from_yaml(&text, "flowbridge.gateway", &Default::default())
                .map_err(|e| e.to_string())?;
        config
            .gateways
            .remove("flow")
            .ok_or_else(|| "the config has no gateway flow".to_owned())
    }
}

/// One step of a scenario; steps run one after the other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    /// One event; the phase ends with its answer.
    Single {},
    /// `senders` senders, each sending its next event when the previous one is answered (and
    /// `think` plus up to `jitter` later, uniformly), for `duration` or `events` each.
    Closed {
        senders: usize,
        #[serde(default, with = "super::duration::option")]
        duration: Option<Duration>,
        #[serde(default)]
        events: Option<u64>,
        #[serde(default, with = "super::duration")]
        think: Duration,
        #[serde(default, with = "super::duration")]
        jitter: Duration,
    },
    /// Open loop: events arrive at `from` per second rising linearly to `to`, for `duration`,
    /// whatever the answers.
    Rate {
        from: f64,
        to: f64,
        #[serde(with = "super::duration")]
        duration: Duration,
    },
    /// A backlog of `events` delivered with at most `concurrency` in flight (a KafkaSource
    /// catching up: `max.poll.records` per partition in flight).
    Backlog { events: u64, concurrency: usize },
    /// One event every `every`, `count` times, each waited for.
    Ping {
        #[serde(with = "super::duration")]
        every: Duration,
        count: u64,
    },
    /// Wait until the revision is back at zero pods (at most `max`).
    Idle {
        #[serde(with = "super::duration")]
        max: Duration,
    },
}

/// Which client sends the scenario's events to the Flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// One Flow request per event, straight to the Knative Service (the seed's load.py).
    Direct,
    /// flowbridge's dispatcher in front.
    Flowbridge,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Direct => "direct",
            ClientKind::Flowbridge => "flowbridge",
        }
    }
}

/// What happened to the events.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Events the Flow ran (by event number).
    processed: Vec<bool>,
    /// End-to-end latency (first attempt to answer) of every answered event, seconds.
    pub latencies: Vec<f32>,
    /// Events answered 2xx whose documents the Flow never ran.
    pub unprocessed_ok: u64,
    pub lost: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
    pub first_send: Option<Duration>,
    pub last_answer: Option<Duration>,
    /// Per second: events answered, and their latencies.
    pub second: Vec<f32>,
    pub series: Vec<ClientSample>,
}

/// The client's side of one second.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ClientSample {
    pub answered: u32,
    pub p50: Option<f32>,
    pub max: Option<f32>,
    /// Events waiting in flowbridge's queue (0 for the direct client).
    pub queued: u32,
}

impl Ledger {
    fn mark(&mut self, event: u64) {
        let i = event as usize;
        if self.processed.len() <= i {
            self.processed.resize(i + 1, false);
        }
        self.processed[i] = true;
    }
}

/// The modelled Flow as flowbridge's gateway: each Flow request is one request to the revision.
#[derive(Debug)]
struct Gateway {
    revision: Arc<Revision>,
    ledger: Arc<Mutex<Ledger>>,
}

impl InProcess for Gateway {
    fn call(&self, _head: &RequestHead, docs: Vec<Document>, request_id: &str) -> Reply {
        let revision = Arc::clone(&self.revision);
        let ledger = Arc::clone(&self.ledger);
        let request_id = request_id.to_owned();
        Box::pin(async move {
            if revision.request(docs.len()).await.is_err() {
                return Err(SendError::NotAccepted(
                    "the activator's queue is full (503)".into(),
                ));
            }
            let mut ledger = lock(&ledger);
            for d in &docs {
                if let Some(event) = event_of(&d.id) {
                    ledger.mark(event);
                }
            }
            drop(ledger);
            Ok(FlowResponse {
                request_id,
                docs,
                parameters: Default::default(),
            })
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn event_of(id: &str) -> Option<u64> {
    id.split_once('-').and_then(|(e, _)| e.parse().ok())
}

/// One scenario run with one client.
pub struct Run {
    scenario: Scenario,
    pub revision: Arc<Revision>,
    dispatcher: Option<Dispatcher>,
    pub ledger: Arc<Mutex<Ledger>>,
    next: AtomicU64,
    start: Instant,
}

impl Run {
    pub fn new(scenario: &Scenario, kind: ClientKind, seed: u64) -> Result<Arc<Run>, String> {
        let revision = Revision::start(scenario.flow.clone(), scenario.knative.clone(), seed);
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let dispatcher = match kind {
            ClientKind::Direct => None,
            ClientKind::Flowbridge => {
                let spec = scenario.flowbridge.spec(&scenario.knative)?;
                let gateway = Gateway {
                    revision: Arc::clone(&revision),
                    ledger: Arc::clone(&ledger),
                };
                let client = flowbridge::flow::FlowClient::in_process(&spec, Arc::new(gateway));
                Some(Dispatcher::new(client))
            }
        };
        let run = Arc::new(Run {
            scenario: scenario.clone(),
            revision,
            dispatcher,
            ledger,
            next: AtomicU64::new(0),
            start: Instant::now(),
        });
        tokio::spawn(Arc::clone(&run).sample());
        Ok(run)
    }

    /// Every second: the client's sample.
    async fn sample(self: Arc<Run>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let queued = self.dispatcher.as_ref().map_or(0, |d| d.pending()) as u32;
            let mut ledger = lock(&self.ledger);
            let mut second = std::mem::take(&mut ledger.second);
            second.sort_by(f32::total_cmp);
            let sample = ClientSample {
                answered: second.len() as u32,
                p50: second.get(second.len() / 2).copied(),
                max: second.last().copied(),
                queued,
            };
            ledger.series.push(sample);
        }
    }

    /// Run every phase.
    pub async fn play(self: &Arc<Run>) {
        for phase in self.scenario.phases.clone() {
            self.phase(phase).await;
        }
    }

    async fn phase(self: &Arc<Run>, phase: Phase) {
        match phase {
            Phase::Single {} => self.deliver().await,
            Phase::Closed {
                senders,
                duration,
                events,
                think,
                jitter,
            } => {
                let end = duration.map(|d| Instant::now() + d);
                let mut tasks = Vec::new();
                for sender in 0..senders {
                    let run = Arc::clone(self);
                    let mut rng = fastrand::Rng::with_seed(sender as u64);
                    tasks.push(tokio::spawn(async move {
                        let mut sent = 0;
                        while end.is_none_or(|e| Instant::now() < e)
                            && events.is_none_or(|n| sent < n)
                        {
                            run.deliver().await;
                            sent += 1;
                            tokio::time::sleep(think + jitter.mul_f64(rng.f64())).await;
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            }
            Phase::Rate { from, to, duration } => {
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                let mut owed = 0.0;
                let step = Duration::from_millis(1);
                let mut t = Duration::ZERO;
                while t < duration {
                    let rate = from + (to - from) * t.as_secs_f64() / duration.as_secs_f64();
                    owed += rate * step.as_secs_f64();
                    while owed >= 1.0 {
                        owed -= 1.0;
                        let run = Arc::clone(self);
                        tasks.spawn(async move { run.deliver().await });
                    }
                    t += step;
                    tokio::time::sleep_until(start + t).await;
                    while tasks.try_join_next().is_some() {}
                }
                while tasks.join_next().await.is_some() {}
            }
            Phase::Backlog {
                events,
                concurrency,
            } => {
                let left = Arc::new(AtomicU64::new(events));
                let mut tasks = Vec::new();
                for _ in 0..concurrency {
                    let run = Arc::clone(self);
                    let left = Arc::clone(&left);
                    tasks.push(tokio::spawn(async move {
                        while left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok()
                        {
                            run.deliver().await;
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            }
            Phase::Ping { every, count } => {
                let start = Instant::now();
                for i in 0..count {
                    tokio::time::sleep_until(start + every * i as u32).await;
                    self.deliver().await;
                }
            }
            Phase::Idle { max } => {
                let end = Instant::now() + max;
                while self.revision.pods() > 0 && Instant::now() < end {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One event, delivered with the sender's retries.
    async fn deliver(&self) {
        let event = self.next.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        {
            let mut ledger = lock(&self.ledger);
            ledger.first_send.get_or_insert(started - self.start);
        }
        let mut backoff = Duration::from_millis(200);
        for attempt in 0..=10 {
            if self.attempt(event).await {
                let now = Instant::now();
                let latency = (now - started).as_secs_f32();
                let mut ledger = lock(&self.ledger);
                if !ledger
                    .processed
                    .get(event as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    ledger.unprocessed_ok += 1;
                }
                ledger.latencies.push(latency);
                ledger.second.push(latency);
                ledger.last_answer = Some(now - self.start);
                return;
            }
            if attempt < 10 {
                lock(&self.ledger).retries += 1;
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        lock(&self.ledger).lost += 1;
    }

    /// One attempt; true when answered 2xx.
    async fn attempt(&self, event: u64) -> bool {
        let docs = self.scenario.docs_per_event;
        match &self.dispatcher {
            None => {
                if self.revision.request(docs).await.is_err() {
                    return false;
                }
                lock(&self.ledger).mark(event);
                true
            }
            Some(dispatcher) => {
                let request = FlowRequest {
                    endpoint: "/".into(),
                    target_executor: None,
                    parameters: Default::default(),
                    docs: (0..docs)
                        .map(|i| Document {
                            id: format!("{event}-{i}"),
                            ..Document::default()
                        })
                        .collect(),
                };
                dispatcher
                    .submit_traced(request, EventSpan::default(), Answer::Ids)
                    .await
                    .is_ok()
            }
        }
    }
}
