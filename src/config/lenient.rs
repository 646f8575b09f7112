//! Deserializing the YAML document into [`RawConfig`] without stopping at the first mistake.
//!
//! serde stops at the first unknown key or wrong type. To report them all, the document is
//! deserialized through `serde_path_to_error` (which says where the error is); the offending
//! node is then taken out of a copy of the document and the copy deserialized again, until it
//! goes through. Taking out means: an unknown key is removed; a value of the wrong type becomes
//! null (every raw field is optional, so null reads as "not set"), and if null does not fit
//! either, the key is removed or the list item replaced by an empty mapping. Validation then runs
//! on what is left, so its problems come out in the same report; those at or under a node taken
//! out are dropped (they would only repeat it, e.g. "name is required" after `name: [x]`).

use serde_norway::{Mapping, Value};

use super::path::{Path, Problem};
use super::raw::RawConfig;

/// Most nodes taken out of one document before giving up on the rest.
const MAX_REPAIRS: usize = 200;

/// The raw config of `doc` with every node serde refuses taken out, and a problem for each.
/// `None` only when a refused node cannot be taken out (the problems say which).
pub fn deserialize(doc: &Value) -> (Option<RawConfig>, Vec<Problem>) {
    let mut doc = doc.clone();
    let mut problems: Vec<Problem> = Vec::new();
    // Nodes already set to null once (a second refusal removes them).
    let mut nulled: Vec<Path> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let error = match serde_path_to_error::deserialize::<_, RawConfig>(&doc) {
            Ok(raw) => return (Some(raw), problems),
            Err(error) => error,
        };
        let message = error.inner().to_string();
        let mut path = convert(error.path());
        let unknown = unknown_field(&message);
        if let Some(key) = unknown
            && path.last_key() != Some(key)
        {
            path = path.key(key);
        }
        // A refusal caused by an earlier repair (a required key now missing) repeats a problem
        // already reported under this node.
        let repeat = problems.iter().any(|p| p.path.starts_with(&path));
        let repaired = if unknown.is_some() {
            remove(&mut doc, &path)
        } else if !nulled.contains(&path) {
            nulled.push(path.clone());
            replace(&mut doc, &path, Value::Null)
        } else {
            remove(&mut doc, &path)
        };
        if !repeat {
            problems.push(Problem { path, message });
        }
        if !repaired {
            return (None, problems);
        }
    }
    (None, problems)
}

/// The key of serde's "unknown field `x`, expected …" message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(key, _)| key)
}

fn convert(path: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    let mut out = Path::root();
    for segment in path.iter() {
        out = match segment {
            Segment::Seq { index } => out.index(*index),
            Segment::Map { key } => out.key(key),
            Segment::Enum { variant } => out.key(variant),
            Segment::Unknown => out.key("?"),
        };
    }
    out
}

/// The node at `path`, mutably.
fn node_mut<'a>(doc: &'a mut Value, path: &Path) -> Option<&'a mut Value> {
    let mut node = doc;
    for seg in path.segments() {
        node = untag_mut(node);
        node = match (seg, node) {
            (super::path::Seg::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str())?,
            (super::path::Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn untag_mut(value: &mut Value) -> &mut Value {
    match value {
        Value::Tagged(tagged) => untag_mut(&mut tagged.value),
        other => other,
    }
}

fn replace(doc: &mut Value, path: &Path, with: Value) -> bool {
    match node_mut(doc, path) {
        Some(node) => {
            *node = with;
            true
        }
        None => false,
    }
}

/// Remove a mapping key; a list item becomes an empty mapping (so later items keep their index).
fn remove(doc: &mut Value, path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return false;
    };
    let last = path.segments().last().cloned();
    let Some(node) = node_mut(doc, &parent).map(untag_mut) else {
        return false;
    };
    match (last, node) {
        (Some(super::path::Seg::Key(k)), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Some(super::path::Seg::Index(i)), Value::Sequence(s)) => match s.get_mut(i) {
            Some(item) if *item != Value::Mapping(Mapping::new()) => {
                *item = Value::Mapping(Mapping::new());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> (Option<RawConfig>, Vec<String>) {
        let doc: Value = serde_norway::from_str(yaml).expect("yaml");
        let (raw, problems) = deserialize(&doc);
        let listed = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        (raw, listed)
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_listed() {
        let (raw, listed) = run("
routez: []
listen: [1, 2]
gateways:
  main: { url: grpc://x:1, timeout: 1s, concurency: 3, batch: { max_doc: 3 } }
routes:
  - name: a
    filtres: []
  - 7
  - name: [b]
");
        let raw = raw.expect("the rest goes through");
        assert_eq!(raw.routes.as_ref().map(Vec::len), Some(3));
        let mut starts: Vec<&str> = listed
            .iter()
            .map(|l| l.split(": ").next().unwrap_or(""))
            .collect();
        starts.sort_unstable();
        assert_eq!(
            starts,
            [
                "gateways.main.batch.max_doc",
                "gateways.main.concurency",
                "listen",
                "routes[0].filtres",
                "routes[1]",
                "routes[2].name",
                "routez",
            ],
            "{listed:#?}"
        );
        let find = |p: &str| {
            listed
                .iter()
                .find(|l| l.starts_with(p))
                .cloned()
                .unwrap_or_default()
        };
        assert!(
            find("routez: ").contains("unknown field `routez`, expected one of `listen`"),
            "{listed:#?}"
        );
        assert!(
            find("listen: ").contains("invalid type: sequence"),
            "{listed:#?}"
        );
        assert!(
            find("routes[1]: ").contains("expected struct RawRoute"),
            "{listed:#?}"
        );
    }

    #[test]
    fn a_clean_document_has_no_problems() {
        let (raw, listed) =
            run("gateways: { main: { url: grpc://x:1 } }\nroutes: [ { name: a } ]\n");
        assert!(raw.is_some());
        assert!(listed.is_empty(), "{listed:?}");
    }
}
