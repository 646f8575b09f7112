//! Where each node of the config document is: a map from a [`Path`] to the line it starts on,
//! built from the YAML parser's events (serde's `Value` carries no positions). Every problem a
//! load reports gets a line from here: its own node's, or (for a missing key) its nearest
//! present ancestor's.
//!
//! Crate: `yaml-rust2` (its event parser, which marks every event with a line), used only for
//! positions; `serde_norway` still parses the values.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::Path;

/// Line (1-based) of every key and sequence item of one document.
#[derive(Debug, Default)]
pub struct Lines(HashMap<String, usize>);

impl Lines {
    /// Index `text`. Best effort: a syntax error (reported elsewhere, with its own line) leaves
    /// the index with what was read before it.
    pub fn index(text: &str) -> Lines {
        let mut walker = Walker::default();
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        Lines(walker.lines)
    }

    /// The line of `path`, or of its nearest ancestor that the document has.
    pub fn line_of(&self, path: &Path) -> Option<usize> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(line) = self.0.get(&p.to_string()) {
                return Some(*line);
            }
            current = p.parent();
        }
        None
    }
}

enum Frame {
    /// A mapping; `key` is the key whose value comes next (`None`: a key comes next).
    Map {
        path: Path,
        key: Option<String>,
    },
    Seq {
        path: Path,
        next: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
    /// Only the first document counts.
    done: bool,
}

impl Walker {
    /// A node starts: the path it has as a value, or `None` when it is a mapping key (whose
    /// line is recorded under the path it names).
    fn begin(&mut self, key_text: Option<&str>, line: usize) -> Option<Path> {
        let record = |lines: &mut HashMap<String, usize>, path: &Path| {
            lines.entry(path.to_string()).or_insert(line);
        };
        match self.stack.last_mut() {
            None => {
                let root = Path::root();
                record(&mut self.lines, &root);
                Some(root)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    let name = key_text.unwrap_or("<complex key>").to_string();
                    record(&mut self.lines, &path.key(&name));
                    *key = Some(name);
                    None
                }
                Some(name) => {
                    let value = path.key(&name);
                    record(&mut self.lines, &value);
                    Some(value)
                }
            },
            Some(Frame::Seq { path, next }) => {
                let item = path.index(*next);
                *next += 1;
                record(&mut self.lines, &item);
                Some(item)
            }
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.done {
            return;
        }
        let line = mark.line();
        match event {
            Event::Scalar(text, ..) => {
                self.begin(Some(&text), line);
            }
            Event::Alias(_) => {
                self.begin(None, line);
            }
            Event::MappingStart(..) => {
                let path = self
                    .begin(None, line)
                    .unwrap_or_else(|| Path::root().key("<complex key>"));
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self
                    .begin(None, line)
                    .unwrap_or_else(|| Path::root().key("<complex key>"));
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_items_and_missing_keys() {
        let text = "\
# a comment
gateways:
  main:
    url: grpc://x:1
routes:
  - name: a
    filters:
      - exact: { type: t }
      - cel: 'x'
  - { name: b, docs: 'y' }
";
        let lines = Lines::index(text);
        let at = |p: Path| lines.line_of(&p);
        let routes = Path::root().key("routes");
        assert_eq!(at(Path::root().key("gateways")), Some(2));
        assert_eq!(
            at(Path::root().key("gateways").key("main").key("url")),
            Some(4)
        );
        assert_eq!(at(routes.index(0)), Some(6));
        assert_eq!(
            at(routes.index(0).key("filters").index(1).key("cel")),
            Some(9)
        );
        assert_eq!(at(routes.index(1).key("docs")), Some(10));
        // Missing: the nearest ancestor that is there.
        assert_eq!(at(routes.index(0).key("reply").key("type")), Some(6));
        assert_eq!(at(Path::root().key("nothing")), at(Path::root()));
        assert_eq!(at(Path::root()), Some(2));
    }

    #[test]
    fn a_syntax_error_keeps_what_came_before() {
        let lines = Lines::index("listen: 0.0.0.0:1\nroutes:\n  - name: [x\n");
        assert_eq!(lines.line_of(&Path::root().key("listen")), Some(1));
    }
}
