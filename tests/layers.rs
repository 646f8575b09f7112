//! The shape of `src/`, checked so it stays the way docs/design.md and `lib.rs` describe it:
//! imports run one way between the top-level modules, no two sibling files import each other,
//! the pure layers stay pure, no production file grows past ~600 lines and no inline test
//! module past ~100 (bigger ones live in their own `tests.rs`), and every file starts with a
//! module doc.
//!
//! Imports are read from the text: every `crate::a::b…` and `super::…` path outside comments
//! and test modules, resolved to the longest module path that is a file. Rough, but it finds
//! every `use` and every fully qualified call.

// Test code: panicking on a broken fixture is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Largest production file, in lines.
const MAX_FILE_LINES: usize = 600;
/// Largest inline `mod tests { … }`, in lines.
const MAX_INLINE_TESTS: usize = 100;

/// Which top-level modules each top-level module may import (besides itself). A module not
/// listed may import nothing of the crate.
const ALLOWED: &[(&str, &[&str])] = &[
    ("text", &[]),
    ("model", &[]),
    ("tls", &[]),
    // `flowbridge top`: reads a server's /metrics over HTTP, imports nothing of it.
    ("top", &[]),
    ("cloudevents", &["model", "text"]),
    ("rules", &["model", "cloudevents", "text"]),
    ("auth", &["model", "tls", "text"]),
    ("flow", &["model", "tls", "text"]),
    ("telemetry", &["model", "auth", "flow", "tls", "text"]),
    // Shared state (Redis): below dispatch, runtime and pipeline, which use it; config builds
    // its plain-data spec.
    ("state", &["model", "cloudevents", "tls", "text"]),
    (
        "config",
        &[
            "model",
            "rules",
            "auth",
            "state",
            "tls",
            "cloudevents",
            "text",
        ],
    ),
    ("dispatch", &["model", "flow", "state", "telemetry", "text"]),
    (
        "reply",
        &["model", "cloudevents", "rules", "telemetry", "tls", "text"],
    ),
    (
        "runtime",
        &[
            "model",
            "auth",
            "config",
            "dispatch",
            "flow",
            "state",
            "telemetry",
            "text",
        ],
    ),
    (
        "pipeline",
        &[
            "model",
            "dispatch",
            "flow",
            "reply",
            "rules",
            "runtime",
            "state",
            "telemetry",
            "text",
        ],
    ),
    (
        "ingress",
        &[
            "model",
            "auth",
            "cloudevents",
            "config",
            "flow",
            "pipeline",
            "reply",
            "rules",
            "runtime",
            "telemetry",
            "text",
        ],
    ),
    (
        "reload",
        &["model", "config", "ingress", "runtime", "telemetry"],
    ),
    ("server", &["config", "ingress", "telemetry"]),
    (
        "app",
        &[
            "model",
            "config",
            "ingress",
            "reload",
            "reply",
            "runtime",
            "server",
            "telemetry",
            "tls",
        ],
    ),
    ("knative", &[]),
    ("load", &["model", "cloudevents", "text"]),
];

/// Crates a module must not use: the pure layers know nothing of servers and runtimes.
const PURE: &[(&str, &[&str])] = &[
    ("model", &["axum", "tokio", "tonic", "hyper"]),
    ("cloudevents", &["axum", "tokio", "tonic", "hyper"]),
    ("rules", &["axum", "tokio", "tonic", "hyper"]),
    ("pipeline", &["axum", "hyper"]),
];

struct File {
    /// Path under `src/`.
    rel: String,
    /// Module path (`["flow", "client"]`; `[]` for lib.rs).
    module: Vec<String>,
    text: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(rel: &str) -> bool {
    rel.ends_with("/tests.rs") || rel.contains("/tests/") || rel.contains("/testing")
}

fn files() -> Vec<File> {
    let mut paths = Vec::new();
    walk(&src(), &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(String::from)
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                module.clear();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            File { rel, module, text }
        })
        .collect()
}

/// The text without comments and without an inline `#[cfg(test)] mod tests { … }` at the end.
fn production_text(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths used by `text` (in module `module`), as written (`crate::a::b`, `super::c`).
fn used_paths(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices("::") {
        // The word before `::` must be `crate` or `super`, at a word boundary.
        let before = &text[..start];
        let word_start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[word_start..];
        if word != "crate" && word != "super" {
            continue;
        }
        if word_start > 0 && bytes[word_start - 1] == b':' {
            continue; // `super::super::…` is read from its first `super`.
        }
        let mut base: Vec<String> = if word == "crate" {
            Vec::new()
        } else {
            module[..module.len().saturating_sub(1)].to_vec()
        };
        let mut rest = &text[start + 2..];
        loop {
            if let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
                continue;
            }
            break;
        }
        for seg in rest.split("::") {
            let name: String = seg
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                break;
            }
            base.push(name.clone());
            if name.len() != seg.len() {
                break;
            }
        }
        out.push(base);
    }
    out
}

/// For each file (by `rel`), the files it imports.
fn imports(files: &[File]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<&[String], &str> = files
        .iter()
        .map(|f| (f.module.as_slice(), f.rel.as_str()))
        .collect();
    let mut graph = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(&f.rel)) {
        let mut targets = BTreeSet::new();
        for path in used_paths(&f.module, &production_text(&f.text)) {
            let target = (1..=path.len())
                .rev()
                .find_map(|k| by_module.get(&path[..k]).copied());
            if let Some(target) = target
                && target != f.rel
            {
                targets.insert(target.to_string());
            }
        }
        graph.insert(f.rel.clone(), targets);
    }
    graph
}

fn top(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.trim_end_matches(".rs")
}

/// `a` is the `mod.rs` of the folder `b` sits in (parent and child may share types both ways).
fn parent_of(a: &str, b: &str) -> bool {
    a.strip_suffix("mod.rs")
        .is_some_and(|dir| b.starts_with(dir) && !b[dir.len()..].contains('/'))
}

#[test]
fn top_level_modules_import_only_what_lies_below_them() {
    let files = files();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, targets) in imports(&files) {
        let (a, file) = (top(&from), &from);
        if a == "lib" || a == "main" || a == "cli" {
            continue;
        }
        let Some(ok) = allowed.get(a) else {
            wrong.push(format!("{file}: top-level module {a} is not in ALLOWED"));
            continue;
        };
        for target in targets {
            let b = top(&target);
            if b != a && !ok.contains(&b) {
                wrong.push(format!("{file} imports {target} ({a} → {b})"));
            }
        }
    }
    assert!(wrong.is_empty(), "uphill imports:\n{}", wrong.join("\n"));
}

#[test]
fn no_two_sibling_files_import_each_other() {
    let graph = imports(&files());
    let mut cycles = Vec::new();
    for (a, targets) in &graph {
        for b in targets {
            if a < b
                && graph.get(b).is_some_and(|t| t.contains(a))
                && !parent_of(a, b)
                && !parent_of(b, a)
            {
                cycles.push(format!("{a} ↔ {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files importing each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn pure_layers_use_no_server_or_runtime_crates() {
    let mut wrong = Vec::new();
    for f in files().iter().filter(|f| !is_test_file(&f.rel)) {
        let Some((_, banned)) = PURE.iter().find(|(m, _)| top(&f.rel) == *m) else {
            continue;
        };
        let text = production_text(&f.text);
        for krate in *banned {
            if text.contains(&format!("{krate}::")) {
                wrong.push(format!("{} uses {krate}", f.rel));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn files_stay_small_and_big_test_modules_live_apart() {
    let mut wrong = Vec::new();
    for f in files() {
        if is_test_file(&f.rel) {
            continue;
        }
        let lines = f.text.lines().count();
        let tests = f
            .text
            .find("#[cfg(test)]\nmod tests {")
            .map_or(0, |i| f.text[i..].lines().count());
        if lines - tests > MAX_FILE_LINES {
            wrong.push(format!(
                "{}: {} production lines (> {MAX_FILE_LINES})",
                f.rel,
                lines - tests
            ));
        }
        if tests > MAX_INLINE_TESTS {
            wrong.push(format!(
                "{}: inline test module of {tests} lines (> {MAX_INLINE_TESTS}); move it to tests.rs",
                f.rel
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_file_starts_with_a_module_doc() {
    let missing: Vec<String> = files()
        .into_iter()
        .filter(|f| !f.text.trim_start().starts_with("//!"))
        .map(|f| f.rel)
        .collect();
    assert!(missing.is_empty(), "no //! module doc: {missing:?}");
}
