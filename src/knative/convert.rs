//! The per-object conversion rules of `flowbridge knative`: Deployment/StatefulSet → Knative
//! Service, what is dropped, rewritten or refused, and the note recorded for each.

use serde_json::{Map, Value, json};

use super::Options;

/// The port `jina export kubernetes` gives every unit, kept as the Knative container port.
pub const UNIT_PORT: u16 = 8080;
/// The port a Knative Service answers on inside the cluster (its Kubernetes Service port).
pub const KNATIVE_PORT: u16 = 80;
/// Container port name that makes Knative route HTTP/2 cleartext end to end (gRPC needs it).
pub const GRPC_PORT_NAME: &str = "h2c";
/// Container port name for HTTP/1.1 units (HTTP and WebSocket gateways).
pub const HTTP_PORT_NAME: &str = "http1";

/// Conversion state: options, the export's namespace, notes and refusals collected so far.
pub(super) struct Context<'a> {
    options: &'a Options,
    from_ns: String,
    pub notes: Vec<String>,
    pub refusals: Vec<String>,
}

/// Notes about one object: they become YAML comments above it and stderr lines.
struct Log<'n> {
    prefix: String,
    notes: &'n mut Vec<String>,
    comments: Vec<String>,
}

impl Log<'_> {
    fn note(&mut self, message: String) {
        self.notes.push(format!("{}: {message}", self.prefix));
        self.comments.push(format!("- {message}"));
    }
}

fn name_of(doc: &Value) -> String {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string()
}

impl<'a> Context<'a> {
    pub fn new(options: &'a Options, from_ns: &str) -> Context<'a> {
        Context {
            options,
            from_ns: from_ns.to_string(),
            notes: Vec::new(),
            refusals: Vec::new(),
        }
    }

    /// Convert one document of `file`. Returns the document to write (with its comments), or
    /// `None` when it is dropped (a file-level comment says so) or refused.
    pub fn convert_doc(
        &mut self,
        file: &str,
        doc: &Value,
        file_comments: &mut Vec<String>,
    ) -> Option<(Vec<String>, Value)> {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let name = name_of(doc);
        let mut dropped = |ctx: &mut Self, why: &str| {
            let msg = format!("dropped {kind} {name}: {why}");
            ctx.notes.push(format!("{file}: {msg}"));
            file_comments.push(msg);
        };
        match (api, kind) {
            ("v1", "Service") => {
                dropped(
                    self,
                    "a Knative Service creates its own Kubernetes Services (port 80 → the container port)",
                );
                None
            }
            (_, "ServiceMonitor") => {
                dropped(
                    self,
                    "it selects the dropped Kubernetes Service; scrape the pods with a PodMonitor if you need Jina metrics",
                );
                None
            }
            ("v1", "ConfigMap") => {
                let mut out = doc.clone();
                out["metadata"]["namespace"] = json!(self.options.namespace);
                Some((vec![], out))
            }
            ("apps/v1", "Deployment" | "StatefulSet") => self.workload(file, kind, &name, doc),
            _ => {
                self.refusals.push(format!(
                    "{file}: {api} {kind} {name}: not an object `jina export kubernetes` writes; flowbridge knative does not know how to convert it"
                ));
                None
            }
        }
    }

    fn workload(
        &mut self,
        file: &str,
        kind: &str,
        name: &str,
        doc: &Value,
    ) -> Option<(Vec<String>, Value)> {
        let options = self.options;
        let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
        if kind == "StatefulSet" {
            let claims: Vec<String> = spec
                .get("volumeClaimTemplates")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(name_of).collect())
                .unwrap_or_default();
            if !claims.is_empty() {
                self.refusals.push(format!(
                    "{file}: StatefulSet {name} claims persistent volumes ({}) for the executor's `volumes`: \
                     a Knative Service cannot run it (pods are created and removed by the autoscaler, down to zero, \
                     and Knative has no volumeClaimTemplates). Remove `volumes` from this executor, keep state \
                     outside the pod, or deploy this unit with plain `kubectl apply` next to the Knative ones",
                    claims.join(", ")
                ));
                return None;
            }
        }
        let mut log = Log {
            prefix: format!("{file}: {kind} {name}"),
            notes: &mut self.notes,
            comments: vec![format!(
                "{kind} {name} → Knative Service (serving.knative.dev/v1):"
            )],
        };
        let mut refusals = Vec::new();

        let replicas = spec.get("replicas").and_then(Value::as_u64).unwrap_or(1);
        let max = if options.max_scale == 0 {
            "unlimited".to_string()
        } else {
            options.max_scale.to_string()
        };
        let mut msg = format!(
            "removed spec.replicas ({replicas}), spec.strategy and spec.selector: Knative's autoscaler sets the pod count (min-scale {}, max-scale {max})",
            options.min_scale
        );
        if options.max_scale != 0 && replicas > u64::from(options.max_scale) {
            msg.push_str(&format!(
                "; the export asked for {replicas} replicas, more than --max-scale"
            ));
        }
        log.note(msg);

        let template = spec.get("template").cloned().unwrap_or(Value::Null);
        let mut pod_meta = template
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut pod_spec = template
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();

        // Labels: the `ns` label jina sets follows the namespace.
        if let Some(labels) = pod_meta.get_mut("labels").and_then(Value::as_object_mut)
            && labels.get("ns").and_then(Value::as_str) == Some(self.from_ns.as_str())
        {
            labels.insert("ns".into(), json!(options.namespace));
        }
        let pod_type = pod_meta
            .get("labels")
            .and_then(|l| l.get("pod_type"))
            .and_then(Value::as_str)
            .unwrap_or("WORKER")
            .to_string();

        let annotations = pod_meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(annotations) = annotations {
            if annotations.contains_key("linkerd.io/inject") {
                log.note("kept linkerd.io/inject: Jina relies on Linkerd to balance gRPC calls across pods".to_string());
            }
            let scaling = [
                (
                    "autoscaling.knative.dev/metric",
                    options.metric.as_str().to_string(),
                ),
                ("autoscaling.knative.dev/target", options.target.to_string()),
                (
                    "autoscaling.knative.dev/min-scale",
                    options.min_scale.to_string(),
                ),
                (
                    "autoscaling.knative.dev/max-scale",
                    options.max_scale.to_string(),
                ),
            ];
            log.note(format!(
                "added {}",
                scaling
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for (k, v) in scaling {
                annotations.insert(k.into(), json!(v));
            }
        }

        let mut containers: Vec<Value> = pod_spec
            .get("containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let main = containers
            .iter()
            .position(|c| {
                matches!(
                    c.get("name").and_then(Value::as_str),
                    Some("gateway" | "executor")
                )
            })
            .unwrap_or(0);
        for (i, container) in containers.iter_mut().enumerate() {
            let Some(c) = container.as_object_mut() else {
                continue;
            };
            let cname = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            convert_container(
                c,
                &cname,
                i == main,
                &pod_type,
                options,
                &self.from_ns,
                &mut log,
                &mut refusals,
            );
        }
        pod_spec.insert("containers".into(), Value::Array(containers));
        pod_spec.insert("timeoutSeconds".into(), json!(options.timeout_seconds));
        pod_spec.insert(
            "responseStartTimeoutSeconds".into(),
            json!(options.timeout_seconds),
        );
        log.note(format!(
            "set timeoutSeconds and responseStartTimeoutSeconds to {} (a request, cold start included, may take this long)",
            options.timeout_seconds
        ));

        let comments = log.comments;
        for r in refusals {
            self.refusals.push(format!("{file}: {kind} {name}: {r}"));
        }
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        metadata.insert("namespace".into(), json!(options.namespace));
        if let Some(labels) = doc.pointer("/metadata/labels") {
            metadata.insert("labels".into(), labels.clone());
        }
        Some((
            comments,
            json!({
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": metadata,
                "spec": {"template": {"metadata": pod_meta, "spec": pod_spec}},
            }),
        ))
    }
}

/// Convert one container in place.
#[allow(clippy::too_many_arguments)]
fn convert_container(
    c: &mut Map<String, Value>,
    cname: &str,
    is_main: bool,
    pod_type: &str,
    options: &Options,
    from_ns: &str,
    log: &mut Log<'_>,
    refusals: &mut Vec<String>,
) {
    // env: Knative rejects fieldRef (unless kubernetes.podspec-fieldref is on).
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        let mut kept = Vec::new();
        for e in env.drain(..) {
            let ename = e
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            if let Some(path) = e
                .pointer("/valueFrom/fieldRef/fieldPath")
                .and_then(Value::as_str)
            {
                log.note(format!(
                    "container {cname}: removed env {ename} (fieldRef {path}): Knative rejects fieldRef unless the kubernetes.podspec-fieldref feature is enabled"
                ));
                continue;
            }
            let mut e = e;
            if ename == "K8S_NAMESPACE_NAME"
                && e.get("value").and_then(Value::as_str) == Some(from_ns)
            {
                e["value"] = json!(options.namespace);
            }
            kept.push(e);
        }
        *env = kept;
    }

    // Probes: exec probes (`jina ping`) go; the main container gets a TCP readiness probe.
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        if c.get(probe).and_then(|p| p.get("exec")).is_some() {
            let cmd = c
                .get(probe)
                .and_then(|p| p.pointer("/exec/command"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            c.remove(probe);
            log.note(format!(
                "container {cname}: removed exec {probe} (`{cmd}`): Knative's queue-proxy probes readiness itself and cannot exec; a kubelet exec probe would start a Python process every few seconds"
            ));
        }
    }
    if is_main {
        c.insert(
            "readinessProbe".into(),
            json!({"tcpSocket": {"port": UNIT_PORT}, "successThreshold": 1}),
        );
        log.note(format!(
            "container {cname}: added readinessProbe tcpSocket {UNIT_PORT}, run by queue-proxy (Jina serves gRPC health, but Knative cannot probe gRPC)"
        ));
    }

    if let Some(lifecycle) = c.remove("lifecycle") {
        let what: Vec<&str> = lifecycle
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        log.note(format!(
            "container {cname}: removed lifecycle ({}): a Knative Service may not set it; queue-proxy drains requests before the container gets SIGTERM",
            what.join(", ")
        ));
    }

    // Args: namespace, addresses between units, gateway protocols.
    let mut args: Vec<String> = c
        .get("args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(values) = flag_values(&args, "--k8s-namespace")
        && values.first().map(String::as_str) == Some(from_ns)
    {
        set_flag_values(
            &mut args,
            "--k8s-namespace",
            std::slice::from_ref(&options.namespace),
        );
    }
    let mut port_name = GRPC_PORT_NAME;
    if is_main && pod_type == "GATEWAY" {
        let protocols: Vec<String> = flag_values(&args, "--protocol")
            .unwrap_or_else(|| vec!["GRPC".to_string()])
            .iter()
            .map(|p| p.to_ascii_uppercase())
            .collect();
        if protocols.len() > 1 {
            if protocols.iter().any(|p| p == "GRPC") {
                set_flag_values(&mut args, "--protocol", &["GRPC".to_string()]);
                set_flag_values(&mut args, "--port", &[UNIT_PORT.to_string()]);
                if flag_values(&args, "--uses").is_some_and(|u| u == ["CompositeGateway"]) {
                    set_flag_values(&mut args, "--uses", &["GRPCGateway".to_string()]);
                }
                let others: Vec<&str> = protocols
                    .iter()
                    .filter(|p| *p != "GRPC")
                    .map(String::as_str)
                    .collect();
                log.note(format!(
                    "container {cname}: multi-protocol gateway ({}): kept only gRPC on {UNIT_PORT} (--uses GRPCGateway), dropped {}: a Knative Service has exactly one port, and flowbridge talks gRPC",
                    protocols.join(", "),
                    others.join(", ")
                ));
            } else {
                refusals.push(format!(
                    "the gateway serves {} but not gRPC: a Knative Service has exactly one port and flowbridge needs gRPC; export the Flow with `protocol: grpc`",
                    protocols.join(", ")
                ));
            }
        } else if protocols.first().map(String::as_str) != Some("GRPC") {
            port_name = HTTP_PORT_NAME;
        }
        rewrite_json_flag(
            &mut args,
            "--deployments-addresses",
            options,
            from_ns,
            cname,
            log,
        );
    }
    if is_main && pod_type == "HEAD" {
        rewrite_json_flag(&mut args, "--connection-list", options, from_ns, cname, log);
    }
    if c.contains_key("args") {
        c.insert(
            "args".into(),
            Value::Array(args.into_iter().map(Value::String).collect()),
        );
    }

    // Ports: exactly one, on the main container.
    let old_ports: Vec<String> = c
        .get("ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("containerPort").map(Value::to_string))
                .collect()
        })
        .unwrap_or_default();
    if is_main {
        c.insert(
            "ports".into(),
            json!([{"name": port_name, "containerPort": UNIT_PORT}]),
        );
        let extra: Vec<&String> = old_ports
            .iter()
            .filter(|p| **p != UNIT_PORT.to_string())
            .collect();
        let mut msg = format!(
            "container {cname}: one port {UNIT_PORT} named {port_name} ({})",
            if port_name == GRPC_PORT_NAME {
                "Knative then routes HTTP/2 cleartext, which gRPC needs"
            } else {
                "HTTP/1.1"
            }
        );
        if !extra.is_empty() {
            msg.push_str(&format!(
                "; dropped ports {}",
                extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        log.note(msg);
    } else if c.remove("ports").is_some() {
        log.note(format!(
            "container {cname}: removed ports ({}): in a Knative Service only the serving container declares a port; the sidecar is still reachable on localhost",
            old_ports.join(", ")
        ));
    }
}

/// The values after `flag` (up to the next `--…` argument), if the flag is present.
fn flag_values(args: &[String], flag: &str) -> Option<Vec<String>> {
    let i = args.iter().position(|a| a == flag)?;
    Some(
        args[i + 1..]
            .iter()
            .take_while(|a| !a.starts_with("--"))
            .cloned()
            .collect(),
    )
}

/// Replace the values after `flag` (no-op when the flag is absent).
fn set_flag_values(args: &mut Vec<String>, flag: &str, values: &[String]) {
    let Some(i) = args.iter().position(|a| a == flag) else {
        return;
    };
    let n = args[i + 1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .count();
    args.splice(i + 1..i + 1 + n, values.iter().cloned());
}

/// Rewrite the unit addresses inside a JSON-valued flag (gateway `--deployments-addresses`,
/// head `--connection-list`) to the Knative Services: `<svc>.<ns>.svc:8080` → `<svc>.<NS>.svc:80`.
fn rewrite_json_flag(
    args: &mut Vec<String>,
    flag: &str,
    options: &Options,
    from_ns: &str,
    cname: &str,
    log: &mut Log<'_>,
) {
    let Some(values) = flag_values(args, flag) else {
        return;
    };
    let Some(text) = values.first() else {
        return;
    };
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        log.note(format!(
            "container {cname}: {flag} is not JSON; left unchanged: {text}"
        ));
        return;
    };
    let mut rewritten = Vec::new();
    let mut kept = Vec::new();
    rewrite_strings(
        &mut value,
        &mut |s| match rewrite_address(s, from_ns, &options.namespace) {
            Some(new) => {
                rewritten.push(format!("{s} → {new}"));
                new
            }
            None => {
                kept.push(s.to_string());
                s.to_string()
            }
        },
    );
    set_flag_values(args, flag, &[value.to_string()]);
    if !rewritten.is_empty() {
        log.note(format!(
            "container {cname}: {flag} now names the Knative Services on port {KNATIVE_PORT}: {}",
            rewritten.join(", ")
        ));
    }
    if !kept.is_empty() {
        log.note(format!(
            "container {cname}: {flag}: left {} unchanged (not a unit of this export)",
            kept.join(", ")
        ));
    }
}

fn rewrite_strings(value: &mut Value, f: &mut impl FnMut(&str) -> String) {
    match value {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_strings(v, f)),
        _ => {}
    }
}

/// `[scheme://]<svc>.<from_ns>.svc[.cluster.local]:8080` → `[scheme://]<svc>.<to_ns>.svc:80`;
/// `None` for anything else.
pub(super) fn rewrite_address(addr: &str, from_ns: &str, to_ns: &str) -> Option<String> {
    let (scheme, rest) = match addr.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), addr),
    };
    let (host, port) = rest.rsplit_once(':')?;
    if port != UNIT_PORT.to_string() {
        return None;
    }
    let svc = host
        .strip_suffix(&format!(".{from_ns}.svc.cluster.local"))
        .or_else(|| host.strip_suffix(&format!(".{from_ns}.svc")))?;
    if !super::is_dns_label(svc) {
        return None;
    }
    Some(format!("{scheme}{svc}.{to_ns}.svc:{KNATIVE_PORT}"))
}
