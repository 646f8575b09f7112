//! `flowbridge knative`: turns the directory `jina export kubernetes` wrote into Knative Serving
//! manifests. Owns reading the export, the conversion rules (what Knative accepts, what it
//! rejects, what is refused outright) and the deterministic YAML it writes.
//!
//! What it does, per object of the export (jina 3.34 layout: `<unit>/<unit>.yml`, one multi-document
//! file per gateway, executor, shard head and shard):
//!
//! * `Deployment` → `serving.knative.dev/v1` `Service` (see [`convert`] for every change);
//!   a `StatefulSet` the same way unless it has `volumeClaimTemplates`, which Knative cannot run
//!   (refused);
//! * `v1` `Service` dropped (Knative makes its own), `ServiceMonitor` dropped (it selects those
//!   Services), `ConfigMap` kept;
//! * a `Namespace` object and a `kustomization.yaml` listing every file are added.
//!
//! Multi-protocol gateways keep only their gRPC protocol (flowbridge talks gRPC, and a Knative
//! Service has exactly one port); a multi-protocol gateway without gRPC is refused.
//!
//! Every removal or conversion is written as a YAML comment above the object it concerns and
//! returned as a note (the CLI prints notes on stderr). Output is deterministic: files in sorted
//! order, keys sorted (serde_json's `BTreeMap`), no timestamps or absolute paths.

mod convert;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

pub use convert::{GRPC_PORT_NAME, HTTP_PORT_NAME, KNATIVE_PORT, UNIT_PORT};

/// Which Knative autoscaling metric the generated Services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// In-flight requests per pod (`autoscaling.knative.dev/metric: concurrency`).
    Concurrency,
    /// Requests per second per pod (`rps`).
    Rps,
}

impl Metric {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Concurrency => "concurrency",
            Metric::Rps => "rps",
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "concurrency" => Ok(Metric::Concurrency),
            "rps" => Ok(Metric::Rps),
            other => Err(format!(
                "unknown metric {other:?}: expected concurrency or rps"
            )),
        }
    }
}

/// Conversion settings (the CLI flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespace of every generated object; addresses between units are rewritten to it.
    pub namespace: String,
    /// `autoscaling.knative.dev/min-scale`.
    pub min_scale: u32,
    /// `autoscaling.knative.dev/max-scale` (0 = unlimited).
    pub max_scale: u32,
    /// `autoscaling.knative.dev/metric`.
    pub metric: Metric,
    /// `autoscaling.knative.dev/target`.
    pub target: u32,
    /// Revision `timeoutSeconds` and `responseStartTimeoutSeconds`.
    pub timeout_seconds: u64,
}

impl Options {
    /// The `autoscale:` entry of flowbridge's gateway for this Flow (scale-aware delivery,
    /// docs/delivery.md), when its Services scale on concurrency (flowbridge's rules count
    /// requests in flight; an `rps` target says nothing about them).
    pub fn flowbridge_autoscale(&self) -> Option<String> {
        (self.metric == Metric::Concurrency).then(|| {
            format!(
                "autoscale: {{target: {}, max_scale: {}}}",
                self.target, self.max_scale
            )
        })
    }

    /// Defaults of the CLI: scale 0..10, concurrency target 2 (as the seed demo), 300 s.
    pub fn new(namespace: impl Into<String>) -> Options {
        Options {
            namespace: namespace.into(),
            min_scale: 0,
            max_scale: 10,
            metric: Metric::Concurrency,
            target: 2,
            timeout_seconds: 300,
        }
    }

    /// The command line that reproduces this conversion (written into the output header).
    pub fn command_line(&self) -> String {
        format!(
            "flowbridge knative EXPORT_DIR --namespace {} --min-scale {} --max-scale {} --metric {} --target {} --timeout {}s",
            self.namespace,
            self.min_scale,
            self.max_scale,
            self.metric.as_str(),
            self.target,
            self.timeout_seconds
        )
    }

    fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !is_dns_label(&self.namespace) {
            errors.push(format!(
                "--namespace {:?}: not a Kubernetes namespace name (1-63 of a-z 0-9 -, starting and ending with a letter or digit)",
                self.namespace
            ));
        }
        if self.max_scale != 0 && self.min_scale > self.max_scale {
            errors.push(format!(
                "--min-scale {} is larger than --max-scale {}",
                self.min_scale, self.max_scale
            ));
        }
        if self.target == 0 {
            errors.push("--target must be at least 1".to_string());
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > 3600 {
            errors.push(format!(
                "--timeout {}s: must be between 1s and 3600s",
                self.timeout_seconds
            ));
        }
        errors
    }
}

/// One file to write, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Relative path (`/`-separated).
    pub path: String,
    /// Full YAML text (comments and `---`-separated documents).
    pub text: String,
}

/// The result of a conversion: files and the notes the CLI prints on stderr.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// `namespace.yaml`, the converted export files (same relative paths) and `kustomization.yaml`.
    pub files: Vec<OutputFile>,
    /// One line per removed or converted thing: `<file>: <object>: <what and why>`.
    pub notes: Vec<String>,
}

/// Why nothing was converted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the export failed.
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    /// The export holds something this converter refuses; every reason is listed.
    #[error("refusing to convert {}:\n  {}", .dir.display(), .reasons.join("\n  "))]
    Refused { dir: PathBuf, reasons: Vec<String> },
}

/// A document read from the export, with where it came from.
struct SourceDoc {
    file: String,
    value: Value,
}

/// Read every `*.yml` / `*.yaml` file under `dir` (sorted by relative path) as YAML documents.
fn read_export(dir: &Path) -> Result<Vec<(String, Vec<SourceDoc>)>, Error> {
    let mut files = Vec::new();
    collect_yaml(dir, dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(Error::Read {
            path: dir.to_path_buf(),
            message: "no .yml/.yaml files found; expected the directory `jina export kubernetes FLOW DIR` wrote".to_string(),
        });
    }
    let mut out = Vec::new();
    for rel in files {
        let path = dir.join(&rel);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut docs = Vec::new();
        for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(de).map_err(|e| Error::Read {
                path: path.clone(),
                message: format!("document {}: {e}", i + 1),
            })?;
            if !value.is_null() {
                docs.push(SourceDoc {
                    file: rel.clone(),
                    value,
                });
            }
        }
        out.push((rel, docs));
    }
    Ok(out)
}

fn collect_yaml(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Read {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::Read {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(root, &path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push(rel);
        }
    }
    Ok(())
}

/// Convert the export in `dir`. Nothing is written; see [`write`].
pub fn convert_dir(dir: &Path, options: &Options) -> Result<Conversion, Error> {
    let option_errors = options.check();
    if !option_errors.is_empty() {
        return Err(Error::Refused {
            dir: dir.to_path_buf(),
            reasons: option_errors,
        });
    }
    let export = read_export(dir)?;

    // The namespace the export was made for (addresses between units name it).
    let namespaces: BTreeSet<String> = export
        .iter()
        .flat_map(|(_, docs)| docs)
        .filter_map(|d| {
            d.value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .collect();
    if namespaces.len() > 1 {
        return Err(Error::Refused {
            dir: dir.to_path_buf(),
            reasons: vec![format!(
                "the export uses several namespaces ({}); export one Flow with one --k8s-namespace",
                namespaces.into_iter().collect::<Vec<_>>().join(", ")
            )],
        });
    }
    let from_ns = namespaces
        .into_iter()
        .next()
        .unwrap_or_else(|| "default".to_string());

    let mut ctx = convert::Context::new(options, &from_ns);
    let mut files = vec![OutputFile {
        path: "namespace.yaml".to_string(),
        text: render(
            &[header(options)],
            &[(
                vec![],
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.namespace}}),
            )],
        ),
    }];
    for (rel, docs) in &export {
        let mut file_comments = Vec::new();
        let mut out_docs = Vec::new();
        for doc in docs {
            if let Some(converted) = ctx.convert_doc(&doc.file, &doc.value, &mut file_comments) {
                out_docs.push(converted);
            }
        }
        let mut head = vec![header(options), format!("from {rel}")];
        head.extend(file_comments);
        files.push(OutputFile {
            path: rel.clone(),
            text: render(&head, &out_docs),
        });
    }
    if !ctx.refusals.is_empty() {
        return Err(Error::Refused {
            dir: dir.to_path_buf(),
            reasons: ctx.refusals,
        });
    }
    let resources: Vec<Value> = files.iter().map(|f| json!(f.path)).collect();
    files.push(OutputFile {
        path: "kustomization.yaml".to_string(),
        text: render(
            &[header(options)],
            &[(
                vec![],
                json!({
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": resources,
                }),
            )],
        ),
    });
    Ok(Conversion {
        files,
        notes: ctx.notes,
    })
}

/// The first comment line of every generated file.
fn header(options: &Options) -> String {
    format!(
        "Generated by `{}` from `jina export kubernetes` output; regenerate rather than edit.",
        options.command_line()
    )
}

/// YAML text: `# comment` lines, then documents separated by `---`, each preceded by its comments.
fn render(head: &[String], docs: &[(Vec<String>, Value)]) -> String {
    let mut out = String::new();
    for line in head {
        push_comment(&mut out, line);
    }
    for (i, (comments, value)) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        for line in comments {
            push_comment(&mut out, line);
        }
        match serde_norway::to_string(value) {
            Ok(text) => out.push_str(&text),
            // A serde_json::Value always serialises; keep the file parseable regardless.
            Err(e) => push_comment(&mut out, &format!("cannot serialise this object: {e}")),
        }
    }
    out
}

fn push_comment(out: &mut String, line: &str) {
    for part in line.lines() {
        out.push_str("# ");
        out.push_str(part);
        out.push('\n');
    }
}

/// Write `conversion` into `out_dir`, which must not exist yet or be empty.
pub fn write(conversion: &Conversion, out_dir: &Path) -> Result<(), Error> {
    let io = |path: &Path, e: std::io::Error| Error::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if out_dir.exists() {
        let mut entries = std::fs::read_dir(out_dir).map_err(|e| io(out_dir, e))?;
        if entries.next().is_some() {
            return Err(Error::Read {
                path: out_dir.to_path_buf(),
                message: "output directory is not empty; remove it or choose another (stale files would otherwise be applied too)".to_string(),
            });
        }
    }
    for file in &conversion.files {
        let path = out_dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, &file.text).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// All files as one multi-document stream (what the CLI prints without `-o`).
pub fn to_stream(conversion: &Conversion) -> String {
    conversion
        .files
        .iter()
        // The kustomization only makes sense next to the files it lists.
        .filter(|f| f.path != "kustomization.yaml")
        .map(|f| format!("# file: {}\n{}", f.path, f.text))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// RFC 1123 label: what Kubernetes accepts as a namespace or Service name.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl fmt::Display for Conversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_stream(self))
    }
}

#[cfg(test)]
mod tests;
