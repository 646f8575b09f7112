//! Where a config problem is: a path into the document (`routes[2].filters[0].cel`), the
//! collected problems of one load, and their ordering by position in the YAML document.

use std::fmt;

use serde_norway::Value;

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root; renders as `routes[2].filters[0].cel`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Seg>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        Path(segs)
    }

    /// The steps of this path.
    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    /// The last step when it is a mapping key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The path one step up; `None` at the root.
    pub fn parent(&self) -> Option<Path> {
        let (_, up) = self.0.split_last()?;
        Some(Path(up.to_vec()))
    }

    /// Whether `self` is `other` or lies under it.
    pub fn starts_with(&self, other: &Path) -> bool {
        self.0.starts_with(&other.0)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Path(segs)
    }

    /// Position of what this path names in `doc`, for sorting: at each level the 1-based index
    /// of the key (or item) in the document; a level the document lacks (a missing required
    /// key) gets 0, so it sorts before its present siblings, and ends the key.
    fn position(&self, doc: &Value) -> Vec<usize> {
        let mut key = Vec::with_capacity(self.0.len());
        let mut node = Some(doc);
        for seg in &self.0 {
            let found = match (seg, node.map(untag)) {
                (Seg::Key(k), Some(Value::Mapping(m))) => m
                    .iter()
                    .position(|(name, _)| name.as_str() == Some(k.as_str()))
                    .map(|i| (i, m.get(k.as_str()))),
                (Seg::Index(i), Some(Value::Sequence(s))) if *i < s.len() => Some((*i, s.get(*i))),
                _ => None,
            };
            match found {
                Some((i, child)) => {
                    key.push(i + 1);
                    node = child;
                }
                None => {
                    key.push(0);
                    break;
                }
            }
        }
        key
    }
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// One problem at a path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: Path,
    pub message: String,
}

/// Everything wrong (errors) or suspicious (warnings) in one config.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Report {
    pub fn error(&mut self, path: Path, message: impl Into<String>) {
        self.errors.push(Problem {
            path,
            message: message.into(),
        });
    }

    pub fn warn(&mut self, path: Path, message: impl Into<String>) {
        self.warnings.push(Problem {
            path,
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Orders errors and warnings as their places appear in `doc` (stable: problems at the same
    /// place keep the order they were found in).
    pub fn sort_by_document(&mut self, doc: &Value) {
        sort(&mut self.errors, doc);
        sort(&mut self.warnings, doc);
    }
}

fn sort(problems: &mut [Problem], doc: &Value) {
    let mut keyed: Vec<(Vec<usize>, Problem)> = problems
        .iter()
        .map(|p| (p.path.position(doc), p.clone()))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    for (slot, (_, problem)) in problems.iter_mut().zip(keyed) {
        *slot = problem;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_and_indices() {
        let p = Path::root()
            .key("routes")
            .index(2)
            .key("filters")
            .index(0)
            .key("cel");
        assert_eq!(p.to_string(), "routes[2].filters[0].cel");
        assert_eq!(
            Path::root()
                .key("gateways")
                .key("my gw")
                .key("url")
                .to_string(),
            r#"gateways."my gw".url"#
        );
    }

    #[test]
    fn sorts_in_document_order_with_missing_keys_first_among_siblings() {
        let doc: Value = serde_norway::from_str(
            "routes:\n  - name: a\n    reply: {to: x, data: y}\ngateways:\n  g: {url: u}\n",
        )
        .expect("yaml");
        let mut report = Report::default();
        report.error(Path::root().key("gateways").key("g").key("url"), "1");
        report.error(
            Path::root().key("routes").index(0).key("reply").key("data"),
            "2",
        );
        report.error(
            Path::root().key("routes").index(0).key("reply").key("type"),
            "3",
        );
        report.error(
            Path::root().key("routes").index(0).key("reply").key("to"),
            "4",
        );
        report.error(Path::root().key("routes").index(0).key("name"), "5");
        report.sort_by_document(&doc);
        let order: Vec<&str> = report.errors.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(order, ["5", "3", "4", "2", "1"]);
    }
}
