//! Knative's autoscaler (KPA), concurrency metric, as knative/serving 98e5ef90 decides: pure,
//! time comes in as arguments. Each rule names the file and function it follows.
//!
//! * Observed concurrency is the *revision's total* (every pod's requests, queued ones included,
//!   plus what the activator holds), reported once a second as that second's time-weighted
//!   average (`pkg/queue/handler.go` `ProxyHandler` counts a request before the breaker;
//!   knative/networking `pkg/http/stats/request.go` `Report`), summed over pods and activator
//!   (`pkg/autoscaler/metrics/stats_scraper.go` `computeAverages`; `collector.go` `record`).
//! * Two windows of 1-second buckets average it: stable (`window`, 60 s) and panic
//!   (`panic-window-percentage` 10 % of it) (`pkg/autoscaler/aggregation/bucketing.go`
//!   `TimedFloat64Buckets.WindowAverage`; `pkg/reconciler/autoscaling/resources/metric.go`
//!   `MakeMetric`).
//! * Every 2 s (`pkg/autoscaler/scaling/multiscaler.go` `tickInterval`) `Scale`
//!   (`pkg/autoscaler/scaling/autoscaler.go`) computes desired pods from them; the first request
//!   at zero pokes an immediate tick (`MultiScaler.Poke`).
//! * Bounds and scale to zero are the reconciler's (`pkg/reconciler/autoscaling/kpa/scaler.go`
//!   `applyBounds`, `handleScaleToZero`).
//!
//! Defaults are `config/core/configmaps/autoscaler.yaml`'s (`pkg/autoscaler/config/config.go`
//! `defaultConfig`).

use std::collections::VecDeque;
use std::time::Duration;

use serde::Deserialize;

/// The Knative knobs of the Flow's Service (annotations `autoscaling.knative.dev/*` and the
/// `config-autoscaler` ConfigMap).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KpaSpec {
    /// `autoscaling.knative.dev/target`: concurrent requests per pod (soft).
    pub target: f64,
    /// `target-utilization-percentage` / 100 (default 0.7): the target actually aimed at is
    /// `target × utilization` (`pkg/reconciler/autoscaling/resources/target.go`
    /// `ResolveMetricTarget`).
    pub utilization: f64,
    #[serde(with = "super::duration")]
    pub stable_window: Duration,
    /// Percent of the stable window (default 10).
    pub panic_window_percentage: f64,
    /// Percent (default 200): panic when desired panic pods / ready pods reaches it.
    pub panic_threshold_percentage: f64,
    pub max_scale_up_rate: f64,
    pub max_scale_down_rate: f64,
    pub min_scale: u32,
    /// 0: unlimited.
    pub max_scale: u32,
    #[serde(with = "super::duration")]
    pub scale_to_zero_grace_period: Duration,
    #[serde(with = "super::duration")]
    pub scale_to_zero_pod_retention_period: Duration,
}

impl Default for KpaSpec {
    fn default() -> KpaSpec {
        KpaSpec {
            // `container-concurrency-target-default`.
            target: 100.0,
            utilization: 0.7,
            stable_window: Duration::from_secs(60),
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            min_scale: 0,
            max_scale: 0,
            scale_to_zero_grace_period: Duration::from_secs(30),
            scale_to_zero_pod_retention_period: Duration::ZERO,
        }
    }
}

impl KpaSpec {
    /// The panic window: the stable window's percentage, rounded to whole seconds, at least 1 s
    /// (`MakeMetric`).
    pub fn panic_window(&self) -> Duration {
        let secs = (self.stable_window.as_secs_f64() * self.panic_window_percentage / 100.0)
            .round()
            .max(1.0);
        Duration::from_secs(secs as u64)
    }
}

/// Averages over 1-second buckets (`TimedFloat64Buckets`): a bucket sums what was recorded in
/// its second; the average divides by the seconds since the first write, up to the window, so a
/// fresh window is not diluted by seconds before it existed; a window without any write is 0.
#[derive(Debug, Clone)]
pub struct Buckets {
    window: u64,
    buckets: VecDeque<(u64, f64)>,
    first_write: u64,
    last_write: Option<u64>,
}

impl Buckets {
    pub fn new(window: Duration) -> Buckets {
        Buckets {
            window: window.as_secs().max(1),
            buckets: VecDeque::new(),
            first_write: 0,
            last_write: None,
        }
    }

    /// Add `value` to second `second`.
    pub fn record(&mut self, second: u64, value: f64) {
        match self.last_write {
            // Nothing written for a whole window: start afresh (`Record`'s reset).
            Some(last) if second.saturating_sub(last) >= self.window => {
                self.buckets.clear();
                self.first_write = second;
            }
            None => self.first_write = second,
            _ => {}
        }
        self.last_write = Some(second);
        match self.buckets.back_mut() {
            Some((s, v)) if *s == second => *v += value,
            _ => self.buckets.push_back((second, value)),
        }
        while let Some(&(s, _)) = self.buckets.front() {
            if s + self.window <= second {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// The average over the window ending at `now` (`WindowAverage`).
    pub fn average(&self, now: u64) -> f64 {
        let Some(last) = self.last_write else {
            return 0.0;
        };
        if now.saturating_sub(last) >= self.window {
            return 0.0;
        }
        let total: f64 = self
            .buckets
            .iter()
            .filter(|(s, _)| s + self.window > now)
            .map(|(_, v)| v)
            .sum();
        let seconds = (last - self.first_write + 1).min(self.window);
        total / seconds as f64
    }
}

/// The autoscaler of one revision: its windows and panic state.
#[derive(Debug, Clone)]
pub struct Kpa {
    pub spec: KpaSpec,
    stable: Buckets,
    panic: Buckets,
    /// When the panic condition last held (`panicTime`).
    panic_since: Option<Duration>,
    max_panic_pods: u32,
    /// When desired pods first became 0 (scale to zero waits the grace period from here).
    zero_since: Option<Duration>,
}

/// One tick's decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Pods wanted, after bounds and scale to zero.
    pub pods: u32,
    pub panicking: bool,
    pub stable: f64,
    pub panic: f64,
}

impl Kpa {
    pub fn new(spec: KpaSpec) -> Kpa {
        Kpa {
            stable: Buckets::new(spec.stable_window),
            panic: Buckets::new(spec.panic_window()),
            spec,
            panic_since: None,
            max_panic_pods: 0,
            zero_since: None,
        }
    }

    /// The revision's average concurrency during second `second`.
    pub fn record(&mut self, second: u64, concurrency: f64) {
        self.stable.record(second, concurrency);
        self.panic.record(second, concurrency);
    }

    /// One tick at `now` (seconds since start) with `ready` pods and `current` pods wanted so
    /// far (`Scale`, then `applyBounds` and `handleScaleToZero`).
    pub fn tick(&mut self, now: Duration, ready: u32, current: u32) -> Decision {
        let second = now.as_secs();
        let spec = &self.spec;
        let stable = self.stable.average(second);
        let panic = self.panic.average(second);
        // `readyPodsCount = max(1, ReadyCount())`.
        let ready_f = f64::from(ready.max(1));
        let target = (spec.target * spec.utilization).max(0.01);
        let max_up = (spec.max_scale_up_rate * ready_f).ceil();
        let max_down = (ready_f / spec.max_scale_down_rate).floor();
        let dspc = (stable / target).ceil();
        let dppc = (panic / target).ceil();
        let desired_stable = dspc.max(max_down).min(max_up) as u32;
        let desired_panic = dppc.max(max_down).min(max_up) as u32;
        // Panic when the panic window asks for twice the ready pods (`isOverPanicThreshold`,
        // on the rounded-up pod count).
        let over = dppc / ready_f >= spec.panic_threshold_percentage / 100.0;
        if over {
            self.panic_since = Some(now);
        } else if let Some(since) = self.panic_since
            && since + spec.stable_window < now
        {
            self.panic_since = None;
            self.max_panic_pods = 0;
        }
        let mut desired = if self.panic_since.is_some() {
            // Never scale down while panicking.
            let d = desired_stable.max(desired_panic);
            self.max_panic_pods = self.max_panic_pods.max(d);
            self.max_panic_pods
        } else {
            desired_stable
        };
        // `applyBounds`.
        if desired < spec.min_scale {
            desired = spec.min_scale;
        }
        if spec.max_scale != 0 && desired > spec.max_scale {
            desired = spec.max_scale;
        }
        // `handleScaleToZero`: 0 only after the grace period (and the last pod's retention)
        // since desired first became 0; until then one pod stays.
        if desired == 0 && current > 0 {
            let since = *self.zero_since.get_or_insert(now);
            let wait = spec
                .scale_to_zero_grace_period
                .max(spec.scale_to_zero_pod_retention_period);
            if now - since < wait {
                desired = 1;
            }
        } else if desired > 0 {
            self.zero_since = None;
        }
        Decision {
            pods: desired,
            panicking: self.panic_since.is_some(),
            stable,
            panic,
        }
    }
}
