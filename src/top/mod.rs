//! `flowbridge top`: what a running flowbridge is doing, read from its own `/metrics` every
//! second — per route, events/s by status class; per gateway, Flow requests in flight against
//! the concurrency limit, documents per request, Flow latency p50/p99, queue depth, queue wait
//! p99 and cold state. Owns no state of the server: two scrapes make a rate.
//!
//! * [`scrape`] — one `GET /metrics` and the Prometheus text format as samples.
//! * [`view`] — two scrapes → the rows, and the rows as a plain table.

pub mod scrape;
pub mod view;
