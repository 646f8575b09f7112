//! HTTP ingress: the axum server, the CloudEvents binding ([`binding`]) and the one place where
//! errors become status codes.

pub mod binding;
