//! The events waiting for a gateway ([`Queue`]) and how many documents they hold. The count is
//! kept with every change, so a plan reads it without walking the queue; every change goes
//! through a method here, so it cannot drift. Reading is the deque's own API (`Deref`).

use std::collections::VecDeque;
use std::ops::Deref;

use super::Pending;

/// Waiting events, oldest first, and their documents.
#[derive(Default)]
pub(super) struct Queue {
    events: VecDeque<Pending>,
    docs: usize,
}

impl Queue {
    /// Documents of the waiting events.
    pub(super) fn docs(&self) -> usize {
        self.docs
    }

    pub(super) fn push_back(&mut self, pending: Pending) {
        self.docs += pending.ids.len();
        self.events.push_back(pending);
    }

    /// Back to the front (a request the gateway did not accept).
    pub(super) fn push_front(&mut self, pending: Pending) {
        self.docs += pending.ids.len();
        self.events.push_front(pending);
    }

    pub(super) fn pop_front(&mut self) -> Option<Pending> {
        let p = self.events.pop_front()?;
        self.docs -= p.ids.len();
        Some(p)
    }

    pub(super) fn remove(&mut self, index: usize) -> Option<Pending> {
        let p = self.events.remove(index)?;
        self.docs -= p.ids.len();
        Some(p)
    }

    /// Every waiting event, leaving the queue empty.
    pub(super) fn take_all(&mut self) -> Vec<Pending> {
        self.docs = 0;
        self.events.drain(..).collect()
    }
}

impl Deref for Queue {
    type Target = VecDeque<Pending>;

    fn deref(&self) -> &VecDeque<Pending> {
        &self.events
    }
}
