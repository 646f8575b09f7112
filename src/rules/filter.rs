//! Knative Trigger filter dialect (`exact`, `prefix`, `suffix`, `all`, `any`, `not`) plus our
//! `cel` predicate, evaluated against an event's attributes and extensions.
//!
//! STUB: owned by the config+filters work.

use crate::model::CloudEvent;

#[derive(Debug)]
pub enum Filter {
    Any,
}

impl Filter {
    pub fn matches(&self, event: &CloudEvent) -> bool {
        let _ = event;
        true
    }
}
