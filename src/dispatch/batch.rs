//! Pure batching rules: which waiting events may leave together in one DataRequest
//! ([`select`]), and how the Flow's result documents are given back to each event ([`split`]).
//! No I/O and no clocks, so every rule is unit-tested directly.

use std::collections::{HashMap, HashSet};

use crate::model::Document;

/// What [`select`] needs to know about one waiting event.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    /// Events with equal keys (endpoint, target executor, parameters) may share a request.
    pub key: &'a str,
    /// The ids of the event's documents.
    pub ids: &'a [String],
    /// Encoded size of the event's documents.
    pub bytes: usize,
    /// The event must go out on its own (its own documents share an id, so results could not
    /// be told apart by id).
    pub alone: bool,
}

/// Caps of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caps {
    pub max_docs: usize,
    pub max_bytes: usize,
}

/// How many queued events [`select`] looks at beyond the caps, so that a long queue of other
/// keys does not make every batch scan all of it.
const SCAN_SLACK: usize = 256;

/// Indices (ascending) of the events that leave together, starting with the first one, which
/// always goes (even when it alone exceeds a cap). Others join when they have the first one's
/// key, fit under both caps, and none of their document ids is already in the batch.
pub fn select(queue: &[Candidate<'_>], caps: Caps) -> Vec<usize> {
    let Some(first) = queue.first() else {
        return Vec::new();
    };
    let mut chosen = vec![0];
    if first.alone {
        return chosen;
    }
    let mut docs = first.ids.len();
    let mut bytes = first.bytes;
    let mut ids: HashSet<&str> = first.ids.iter().map(String::as_str).collect();
    let limit = caps.max_docs.saturating_mul(4).saturating_add(SCAN_SLACK);
    for (index, c) in queue.iter().enumerate().skip(1).take(limit) {
        if docs >= caps.max_docs || bytes >= caps.max_bytes {
            break;
        }
        if c.key != first.key || c.alone {
            continue;
        }
        if docs + c.ids.len() > caps.max_docs || bytes + c.bytes > caps.max_bytes {
            continue;
        }
        if c.ids.iter().any(|id| ids.contains(id.as_str())) {
            continue;
        }
        ids.extend(c.ids.iter().map(String::as_str));
        docs += c.ids.len();
        bytes += c.bytes;
        chosen.push(index);
    }
    chosen
}

/// Whether some id occurs twice in `ids`.
pub fn has_duplicate_ids(ids: &[String]) -> bool {
    if ids.len() < 2 {
        return false;
    }
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().any(|id| !seen.insert(id.as_str()))
}

/// Give each event of a request (`sent[i]`: the ids of event `i`'s documents) its result
/// documents, in the order the Flow returned them.
///
/// A request of one event gets every result document, whatever the ids (an executor may add or
/// replace documents). In a request of several events each result document goes to the event
/// that sent a document with its id; an event fails when it does not get back exactly the ids
/// it sent, and every event fails when the Flow returned documents with ids nobody sent (they
/// could belong to any of them).
pub fn split(sent: &[Vec<String>], docs: Vec<Document>) -> Vec<Result<Vec<Document>, String>> {
    if sent.len() == 1 {
        return vec![Ok(docs)];
    }
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (event, ids) in sent.iter().enumerate() {
        for id in ids {
            owner.insert(id.as_str(), event);
        }
    }
    let mut results: Vec<Vec<Document>> = sent.iter().map(|_| Vec::new()).collect();
    let mut unknown: Vec<String> = Vec::new();
    for doc in docs {
        match owner.get(doc.id.as_str()) {
            Some(&event) => results[event].push(doc),
            None => unknown.push(doc.id),
        }
    }
    let events = sent.len();
    if !unknown.is_empty() {
        let message = format!(
            "the Flow returned {} document(s) with ids not in the request ({}); in a request \
             carrying {events} events they cannot be given to any event (executors must keep \
             document ids, or set batch.max_docs: 1)",
            unknown.len(),
            preview(&unknown)
        );
        return sent.iter().map(|_| Err(message.clone())).collect();
    }
    results
        .into_iter()
        .zip(sent)
        .map(|(got, ids)| {
            let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut returned: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
            expected.sort_unstable();
            returned.sort_unstable();
            if expected == returned {
                return Ok(got);
            }
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !returned.contains(&id.as_str()))
                .cloned()
                .collect();
            Err(format!(
                "the Flow returned {} of this event's {} document(s) (missing: {}) in a request \
                 carrying {events} events; executors must keep document ids, or set \
                 batch.max_docs: 1",
                got.len(),
                ids.len(),
                if missing.is_empty() {
                    "none, but some came back twice".to_string()
                } else {
                    preview(&missing)
                }
            ))
        })
        .collect()
}

/// The first few ids, quoted.
fn preview(ids: &[String]) -> String {
    let mut text: Vec<String> = ids.iter().take(5).map(|id| format!("{id:?}")).collect();
    if ids.len() > 5 {
        text.push(format!("… {} more", ids.len() - 5));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests;
