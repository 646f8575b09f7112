//! In-process Jina gateways for tests and benchmarks (feature `test-util`, and the crate's own
//! tests): tonic servers on loopback ports built from the generated server code, which the
//! default build does not contain. Nothing here is used by flowbridge itself.
//!
//! * `fake` — the fake gateway the tests drive [`FlowClient`](super::FlowClient) and the
//!   dispatcher against: a behaviour per test ([`Mode`]), docarray v1 or v2 ([`Docarray`]), and
//!   a record of what it received ([`Seen`]).
//! * [`null`] — the benchmarks' null gateway (feature `null-gateway`, which turns on
//!   `test-util`): answers every Call at once with its request.
//! * [`model`] — a gateway that is a Rust value ([`InProcess`]): the client calls it instead of
//!   a server, for simulations under a paused clock.

mod fake;
pub mod model;
pub mod null;

pub use model::{InProcess, Reply};

pub use fake::{
    Docarray, Mode, Seen, SeenRequest, free_port, serve_as, serve_on, start, start_as, start_tls,
};
