//! Delivery to one gateway: the per-gateway queue between ingress and the Flow client, with
//! adaptive micro-batching, limits, cold-start handling and per-event results.
//!
//! Every event's Flow request is [`Dispatcher::submit`]ted and waits in the gateway's queue
//! (`queue`, which counts its documents as it changes). A driver task per gateway sends from its
//! front:
//!
//! * **Adaptive batching.** While fewer than `concurrency` requests are in flight, the front
//!   event leaves at once, together with whatever else is waiting with the same batch key
//!   (endpoint, target executor, parameters) — at low load that is nothing, so no latency is
//!   added. While every slot is busy, events pile up and the next free slot takes them together
//!   as one DataRequest, up to `batch.max_docs` documents and `batch.max_bytes` encoded bytes
//!   (an event is never split; one larger than a cap goes alone). `batch.linger` optionally
//!   holds the front event that long for company. Events whose documents share ids with the
//!   batch are left for a later one, so results can be matched back by id ([`batch::split`]).
//! * **Limits.** At most `concurrency` requests in flight, at most `rate` requests started per
//!   second (token bucket, [`bucket`]), at most `max_pending` events waiting: beyond that
//!   `submit` fails at once with [`FlowError::Overloaded`] (429 + `Retry-After`).
//! * **Cold gateways.** When a request was not accepted (connect error, or a code of
//!   `retry.codes` before any response header), its events go back to the front of the queue
//!   and the gateway is *cold*: only one request at a time probes it, after a full-jitter
//!   exponential backoff pause (`retry.initial_backoff` doubling to `retry.max_backoff`), while
//!   every other event waits in the queue instead of dialling on its own. The first accepted
//!   request makes it warm again, and the waiting events leave in full batches ([`cold`]: the
//!   state, and the spell's length for the metrics).
//! * **Deadlines.** An event waits in the queue at most `connect_timeout` (cold start, or no free
//!   slot), then fails with [`FlowError::Unavailable`] (503) naming the last cause; once sent, the
//!   request has `timeout` ([`FlowError::Deadline`], 504). An event whose HTTP request went away
//!   (the sender gave up) is dropped from the queue instead of being sent.
//!
//! * **Autoscaled Flows** (`autoscale:`): [`scale`] lets a backlog show to Knative.
//!
//! Results fan out per event (`answer`): each gets the Flow's response with only its own
//! documents, or the error of its request (an executor error fails only that request's events).
//! Each queued event carries its trace span (empty when tracing is off); the Flow request's span
//! ([`crate::telemetry::trace::FlowSpan`]) is the child of the first event's span and links to
//! all of them, and its context goes to the gateway as gRPC metadata.
//!
//! [`dedup`] holds the per-route redelivery window used by ingress; [`window`] puts it and the
//! window shared through Redis ([`crate::state`]) behind one type.

mod answer;
pub mod batch;
pub mod bucket;
mod budget;
mod cold;
pub mod dedup;
pub mod limit;
mod queue;
pub mod scale;
pub mod window;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::flow::{Answer, Backoff, FlowClient, FlowError, PreparedDocs, RequestHead, SendError};
use crate::model::{FlowRequest, FlowResponse};
use crate::state::Policy;
use crate::state::rate::SharedRate;
use crate::telemetry::metrics::{GatewayGauges, GatewayMetrics};
use crate::telemetry::trace::{EventSpan, FlowCall, FlowOutcome, FlowSpan};
use batch::{Candidate, Caps};
use bucket::TokenBucket;
use cold::Cold;
use limit::{Efficiency, Limiter, Outcome};
use queue::Queue;

/// The outcome an event waits for.
type EventResult = Result<FlowResponse, FlowError>;

/// One event waiting in the queue.
struct Pending {
    key: String,
    head: RequestHead,
    ids: Vec<String>,
    docs: PreparedDocs,
    alone: bool,
    enqueued: Instant,
    deadline: Instant,
    answer: oneshot::Sender<EventResult>,
    /// The event's span (empty when tracing is off): parent of / linked to the Flow request.
    span: EventSpan,
    /// What the event needs of the answer: its documents (to build a reply), or only the fact.
    want: Answer,
}

struct State {
    queue: Queue,
    /// When the last request in flight ended (`None`: none yet).
    quiet_since: Option<Instant>,
    /// An autoscaled Flow may be waking from zero: no request answered since it was quiet.
    waking: bool,
    in_flight: usize,
    /// The in-flight limit (fixed or adaptive).
    limiter: Limiter,
    cold: Option<Cold>,
    backoff: Backoff,
    bucket: Option<TokenBucket>,
    /// A request's worth of the shared rate budget, taken ahead ([`budget`]).
    token: bool,
    closed: bool,
    stats: Stats,
}

/// Counters, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// DataRequests sent (attempts, probes included).
    pub requests: u64,
    /// Events carried by those requests.
    pub events: u64,
    /// Documents carried by those requests.
    pub docs: u64,
    /// Largest number of events in one request.
    pub max_events: u64,
    /// Events refused because the queue was full.
    pub overloaded: u64,
}

struct Shared {
    client: FlowClient,
    /// `rate` as one budget for every replica (`state:`), and the policy when Redis fails.
    shared_rate: Option<(SharedRate, Policy)>,
    metrics: Arc<GatewayMetrics>,
    state: Mutex<State>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere must not wedge it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The queue and driver of one gateway. Dropping it stops the driver.
#[derive(Debug)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("gateway", &self.client.spec.name)
            .finish_non_exhaustive()
    }
}

/// What the driver does next.
enum Step {
    /// Send these events as one request: a probe of a cold gateway?, requests in flight with
    /// it, sent while an autoscaled Flow may be waking from zero?
    Send(Vec<Pending>, bool, usize, bool),
    Wait(Option<Instant>),
    /// Take a request's worth of the shared rate budget (a Redis round trip) before sending.
    Token,
    Stop,
}

impl Dispatcher {
    /// Start the driver for `client`'s gateway (needs a tokio runtime).
    pub fn new(client: FlowClient) -> Dispatcher {
        Dispatcher::with_metrics(client, Arc::new(GatewayMetrics::new()))
    }

    /// [`Dispatcher::new`] recording its requests in `metrics`.
    pub fn with_metrics(client: FlowClient, metrics: Arc<GatewayMetrics>) -> Dispatcher {
        Dispatcher::with_state(client, metrics, None)
    }

    /// [`Dispatcher::with_metrics`] whose `rate` is the budget shared through Redis (with the
    /// policy when Redis fails) instead of this process's own token bucket.
    pub fn with_state(
        client: FlowClient,
        metrics: Arc<GatewayMetrics>,
        shared_rate: Option<(SharedRate, Policy)>,
    ) -> Dispatcher {
        let now = Instant::now();
        let spec = &client.spec;
        let state = State {
            queue: Queue::default(),
            quiet_since: None,
            waking: false,
            in_flight: 0,
            limiter: Limiter::new(spec.concurrency),
            cold: None,
            backoff: Backoff::new(&spec.retry),
            bucket: spec.rate.map(|r| TokenBucket::new(r, now)),
            token: false,
            closed: false,
            stats: Stats::default(),
        };
        let shared = Arc::new(Shared {
            client,
            shared_rate,
            metrics,
            state: Mutex::new(state),
            wake: Notify::new(),
        });
        tokio::spawn(drive(shared.clone()));
        Dispatcher { shared }
    }

    /// The gateway's client.
    pub fn client(&self) -> &FlowClient {
        &self.shared.client
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// Events waiting to be sent.
    pub fn pending(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// The queue state for the metrics gauges, read now.
    pub fn gauges(&self) -> GatewayGauges {
        let state = self.shared.lock();
        GatewayGauges {
            gateway: self.shared.client.spec.name.clone(),
            pending: state.queue.len() as u64,
            in_flight: state.in_flight as u64,
            cold: state.cold.is_some(),
            overloaded: state.stats.overloaded,
            timeout: self.shared.client.spec.timeout.as_secs_f64(),
            limit: Some(state.limiter.gauges()),
        }
    }

    /// Queue one event's request and wait for its own result (with the documents the Flow
    /// returned for it).
    pub async fn submit(&self, request: FlowRequest) -> EventResult {
        self.submit_traced(request, EventSpan::default(), Answer::Documents)
            .await
    }

    /// [`Dispatcher::submit`] for an event with a span (the Flow request that carries it links
    /// to it, and is its child when the event comes first in the batch), saying what it needs of
    /// the answer: with [`Answer::Ids`] its documents come back with only their ids, unless
    /// another event in the same request needs them.
    pub async fn submit_traced(
        &self,
        request: FlowRequest,
        span: EventSpan,
        want: Answer,
    ) -> EventResult {
        let docs = FlowClient::prepare(request.docs)?;
        self.shared.client.admit(&docs).await?;
        let ids: Vec<String> = docs.ids().map(str::to_owned).collect();
        let alone = batch::has_duplicate_ids(&ids);
        let head = RequestHead {
            endpoint: request.endpoint,
            target_executor: request.target_executor,
            parameters: request.parameters,
        };
        let key = serde_json::to_string(&(&head.endpoint, &head.target_executor, &head.parameters))
            .unwrap_or_default();
        let spec = &self.shared.client.spec;
        let (answer, receive) = oneshot::channel();
        let now = Instant::now();
        {
            let mut state = self.shared.lock();
            if state.closed {
                return Err(self
                    .shared
                    .client
                    .unavailable("flowbridge is stopping".into()));
            }
            if state.queue.len() >= spec.max_pending {
                state.stats.overloaded += 1;
                return Err(FlowError::Overloaded {
                    gateway: spec.name.clone(),
                    max_pending: spec.max_pending,
                });
            }
            state.queue.push_back(Pending {
                key,
                head,
                ids,
                docs,
                alone,
                enqueued: now,
                deadline: now + spec.connect_timeout,
                answer,
                span,
                want,
            });
        }
        self.shared.wake.notify_one();
        receive.await.unwrap_or_else(|_| {
            Err(FlowError::Gateway {
                gateway: spec.name.clone(),
                message: "the dispatcher stopped before answering".into(),
            })
        })
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The driver: sends batches while the limits allow, sleeps otherwise.
async fn drive(shared: Arc<Shared>) {
    loop {
        let step = plan(&shared, &mut shared.lock(), Instant::now());
        match step {
            Step::Send(batch, probe, in_flight, waking) => {
                tokio::spawn(send(shared.clone(), batch, probe, in_flight, waking));
            }
            Step::Wait(Some(until)) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
            Step::Wait(None) => shared.wake.notified().await,
            Step::Token => budget::take(&shared).await,
            Step::Stop => return,
        }
    }
}

impl State {
    /// Requests that may be in flight now ([`scale::in_flight`]).
    fn allowed(&self, spec: &crate::model::GatewaySpec, efficiency: Option<Efficiency>) -> usize {
        scale::in_flight(
            spec,
            &self.limiter,
            efficiency,
            self.in_flight,
            self.queue.docs(),
        )
    }
}

/// Decide the next step under the lock.
fn plan(shared: &Shared, state: &mut State, now: Instant) -> Step {
    let spec = &shared.client.spec;
    if state.closed && state.queue.is_empty() {
        return Step::Stop;
    }
    // Events past their queue deadline, or whose sender went away, leave the front.
    while let Some(front) = state.queue.front() {
        let gone = front.answer.is_closed();
        if !gone && front.deadline > now {
            break;
        }
        if let Some(left) = state.queue.pop_front() {
            if gone {
                answer::waited(&shared.metrics, &left, now);
            } else {
                answer::expired(shared, state, left, now);
            }
        }
    }
    let Some(front) = state.queue.front() else {
        // Nobody waits for a cold gateway any more: its spell ends unseen.
        if let Some(cold) = state.cold.as_mut().filter(|_| state.in_flight == 0) {
            cold.unwatched();
        }
        return Step::Wait(None);
    };
    let (front_deadline, front_enqueued, front_alone) =
        (front.deadline, front.enqueued, front.alone);
    let wait_until = |t: Instant| Step::Wait(Some(t.min(front_deadline)));
    let efficiency = scale::efficiency(spec, &state.limiter);
    let allowed = state.allowed(spec, efficiency);
    if state.in_flight >= allowed {
        return wait_until(front_deadline);
    }
    let probe = match &state.cold {
        Some(cold) if cold.probing => return wait_until(front_deadline),
        Some(cold) if now < cold.next_probe => return wait_until(cold.next_probe),
        Some(_) => true,
        None => false,
    };
    let mut caps = Caps {
        max_docs: spec.batch.max_docs,
        max_bytes: spec.batch.max_bytes,
    };
    if let Some(efficiency) = efficiency {
        caps.max_docs = scale::share(
            efficiency,
            allowed - state.in_flight,
            state.queue.docs(),
            caps.max_docs,
        );
    }
    let chosen = {
        let candidates: Vec<Candidate<'_>> = state
            .queue
            .iter()
            .map(|p| Candidate {
                key: &p.key,
                ids: &p.ids,
                bytes: p.docs.encoded_len(),
                alone: p.alone || p.answer.is_closed(),
            })
            .collect();
        batch::select(&candidates, caps)
    };
    if !spec.batch.linger.is_zero() {
        let linger_end = front_enqueued + spec.batch.linger;
        let docs: usize = chosen.iter().map(|&i| state.queue[i].ids.len()).sum();
        if now < linger_end && docs < caps.max_docs && !front_alone {
            return wait_until(linger_end);
        }
    }
    if shared.shared_rate.is_some() {
        if !state.token {
            return Step::Token;
        }
        state.token = false;
    } else if let Some(bucket) = state.bucket.as_mut()
        && let Err(wait) = bucket.try_take(now)
    {
        return wait_until(now + wait);
    }
    let mut batch = Vec::with_capacity(chosen.len());
    for index in chosen.into_iter().rev() {
        if let Some(p) = state.queue.remove(index) {
            batch.push(p);
        }
    }
    batch.reverse();
    state.in_flight += 1;
    if let Some(cold) = state.cold.as_mut() {
        cold.probing = true;
    }
    let docs: usize = batch.iter().map(|p| p.ids.len()).sum();
    let stats = &mut state.stats;
    stats.requests += 1;
    stats.events += batch.len() as u64;
    stats.docs += docs as u64;
    stats.max_events = stats.max_events.max(batch.len() as u64);
    if spec.autoscale.is_some()
        && scale::waking(
            state.in_flight,
            state.quiet_since.map(|t| now.duration_since(t)),
        )
    {
        state.waking = true;
    }
    Step::Send(batch, probe, state.in_flight, state.waking)
}

/// Send one batch and hand out the results; requeue it when the gateway did not accept it.
async fn send(
    shared: Arc<Shared>,
    batch: Vec<Pending>,
    probe: bool,
    in_flight: usize,
    waking: bool,
) {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let client = &shared.client;
    let gateway = &client.spec.name;
    let Some(head) = batch.first().map(|p| &p.head) else {
        shared.lock().in_flight -= 1;
        return;
    };
    let docs: usize = batch.iter().map(|p| p.ids.len()).sum();
    debug!(gateway = %gateway, request_id, events = batch.len(), docs, probe, "sending");
    let metrics = &shared.metrics;
    metrics.docs.observe(docs as f64);
    metrics.events.observe(batch.len() as f64);
    if probe {
        metrics.probes.inc();
    }
    let span = FlowSpan::start(
        &FlowCall {
            gateway,
            url: &client.spec.url,
            endpoint: &head.endpoint,
            target_executor: head.target_executor.as_deref(),
            request_id: &request_id,
            docs,
            probe,
        },
        batch.iter().map(|p| &p.span),
    );
    let want = if batch.iter().any(|p| p.want == Answer::Documents) {
        Answer::Documents
    } else {
        Answer::Ids
    };
    let started = Instant::now();
    let result = client
        .send_with_metadata(
            head,
            batch.iter().map(|p| &p.docs),
            &request_id,
            &span.metadata(),
            want,
        )
        .await;
    let latency = started.elapsed();
    let seconds = latency.as_secs_f64();
    span.finish(match &result {
        Ok(_) => Ok(()),
        Err(SendError::NotAccepted(cause)) => Err(FlowOutcome::NotAccepted(cause)),
        Err(SendError::Failed(e)) => Err(FlowOutcome::Failed(e)),
    });
    match &result {
        Err(SendError::NotAccepted(_)) => metrics.retries.inc(),
        Ok(_) => metrics.request_done("ok", seconds),
        Err(SendError::Failed(e)) => metrics.request_done(answer::outcome(e), seconds),
    }
    let mut state = shared.lock();
    state.in_flight -= 1;
    if state.in_flight == 0 {
        state.quiet_since = Some(Instant::now());
    }
    let sample = match &result {
        Ok(_) | Err(SendError::Failed(FlowError::Executor { .. })) if waking => {
            // A wake-up that ends a spell of refusals is that spell's end, not a second one.
            if std::mem::take(&mut state.waking) && state.cold.is_none() {
                metrics.cold_ended("waking", seconds);
            }
            Outcome::Waking
        }
        Ok(_) | Err(SendError::Failed(FlowError::Executor { .. })) => Outcome::Answered,
        Err(SendError::Failed(FlowError::Deadline { .. })) => Outcome::Timeout,
        Err(_) => Outcome::Other,
    };
    if let Some(reason) = state
        .limiter
        .on_sample(Instant::now(), latency, docs, in_flight, sample)
    {
        let limit = state.limiter.limit();
        metrics.limit_changed(reason.as_str());
        debug!(gateway = %gateway, limit, reason = reason.as_str(), ratio = ?state.limiter.ratio(), "concurrency limit changed");
    }
    match result {
        Err(SendError::NotAccepted(cause)) => {
            let pause = state.backoff.next_pause();
            if state.cold.is_none() {
                warn!(gateway = %gateway, cause = %cause, "gateway not reachable; holding events until it answers");
            } else {
                debug!(gateway = %gateway, cause = %cause, retry_in_ms = pause.as_millis() as u64, "gateway still not reachable");
            }
            let next_probe = Instant::now() + pause;
            state.cold = Some(Cold::refused(state.cold.take(), started, next_probe, cause));
            for pending in batch.into_iter().rev() {
                state.queue.push_front(pending);
            }
        }
        other => {
            if let Some(cold) = state.cold.take() {
                cold.ended(metrics);
                info!(gateway = %gateway, waiting = state.queue.len(), "gateway reachable again");
            }
            state.backoff.reset();
            drop(state);
            answer::answer(batch, other, (&request_id, gateway), started, metrics);
        }
    }
    shared.wake.notify_one();
}

#[cfg(test)]
mod tests;
