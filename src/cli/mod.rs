//! The command line: `serve`, `check`, `explain`, `send`, `knative` and `load` (clap derive, env
//! fallbacks). Each verb
//! parses its arguments, calls into the library and turns the outcome into an exit code
//! (0 ok, 1 failure, 64 usage/config error as in sysexits `EX_USAGE`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::config::{self, Config, Overrides};
use crate::ingress::binding;
use crate::model::{CloudEvent, Data, ExtValue, now_timestamp};
use crate::rules::mapping::{Expr, MappingSpec, document_to_json};

/// Exit code for invalid configuration or usage (sysexits EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "flowbridge",
    version,
    about = "Run Jina Flows on CloudEvents: a Knative sink that calls a Jina gateway over gRPC",
    after_help = "Examples:\n  flowbridge serve --config config/demo.yaml\n  flowbridge check --config config/demo.yaml\n  flowbridge send http://127.0.0.1:8080 --type com.example.ping --source /me --data '{\"text\":\"hi\"}'\n  flowbridge load http://127.0.0.1:8080 --concurrency 64 --duration 30s"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve CloudEvents on $PORT (default 8080) and run the configured Flows.
    #[command(
        after_help = "Example:\n  PORT=8080 flowbridge serve --config /etc/flowbridge/config.yaml\n  flowbridge serve --gateway grpc://127.0.0.1:54321   # embedded default config"
    )]
    Serve(ServeArgs),
    /// Validate a config; print one line per route. Exit 0, or 64 listing every error.
    #[command(
        after_help = "Example:\n  flowbridge check --config config/demo.yaml\n  flowbridge check --config config/demo.yaml --probe\n\nWith --probe each gateway is asked once what it speaks (protocol, docarray, jina) and which\nendpoints it serves; a route endpoint it does not serve is a warning (exit stays 0).\nExit 2 when a gateway cannot be reached or reports another docarray than configured."
    )]
    Check(CheckArgs),
    /// Show which route each event matches and the exact Jina request it becomes (no gateway needed).
    #[command(
        after_help = "Example:\n  flowbridge explain --config config/demo.yaml event.json\n  echo '{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}' | flowbridge explain -"
    )]
    Explain(ExplainArgs),
    /// Send one CloudEvent (binary mode unless --structured) and print the status and any reply.
    #[command(
        after_help = "Example:\n  flowbridge send http://127.0.0.1:8080 --type com.example.order.created --source /shop/eu \\\n    --subject order-17 --data '{\"text\":\"two apples\"}' --ext tenant=acme"
    )]
    Send(SendArgs),
    /// Convert `jina export kubernetes` output into Knative Services (one h2c port, autoscaling).
    #[command(
        after_help = "Example:\n  jina export kubernetes flow.yml export --k8s-namespace demo\n  flowbridge knative export --namespace demo -o k8s/flow --min-scale 0 --max-scale 10 --target 2\n  kubectl apply -k k8s/flow\n\nEvery removed or converted thing is a comment in the output and a line on stderr.\nMulti-protocol gateways keep only gRPC; StatefulSets with volume claims are refused (exit 1)."
    )]
    Knative(KnativeArgs),
    /// Load-test a CloudEvents sink: N workers (one keep-alive connection each) POST events with
    /// unique ids for a while, then print throughput, latency percentiles and status counts.
    #[command(
        after_help = "Examples:\n  flowbridge load http://127.0.0.1:8080 --concurrency 64 --duration 30s\n  flowbridge load http://127.0.0.1:8080 --rate 1000 --duration 15s --json   # open loop\n\nWithout --rate every worker sends its next event when the previous one is answered (closed loop).\nWith --rate R, sends are scheduled R per second and at most --concurrency are in flight;\nthe summary says whether the rate was kept. A progress line goes to stderr every second."
    )]
    Load(LoadArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Config file (YAML). Without it, the embedded default config is used.
    #[arg(long, short, env = "FLOWBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Gateway URL of the embedded default config.
    #[arg(long, env = "FLOWBRIDGE_GATEWAY")]
    pub gateway: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also connect to each gateway: print what it speaks and check the routes' endpoints.
    #[arg(long)]
    pub probe: bool,
}

/// `check --probe`: a gateway could not be reached, or speaks another docarray than configured.
pub const EXIT_PROBE: u8 = 2;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Port to listen on (replaces the port of `listen`).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Admin listener for /metrics, /healthz and /readyz (replaces `admin_listen`); IP:port, or
    /// "" / off for none.
    #[arg(long, env = "FLOWBRIDGE_ADMIN_LISTEN", value_name = "IP:PORT")]
    pub admin_listen: Option<String>,
    /// Log format on stderr [default: json when stderr is not a terminal, else text].
    #[arg(long, env = "FLOWBRIDGE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (fields as keys).
    Json,
    /// Human-readable lines.
    Text,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Structured-mode JSON event files (an array is read as a batch); `-` reads stdin.
    #[arg(required = true)]
    pub events: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to POST the event.
    pub url: String,
    /// Event `type`.
    #[arg(long = "type")]
    pub ty: String,
    /// Event `source`.
    #[arg(long)]
    pub source: String,
    /// Event `id` (default: a fresh UUID).
    #[arg(long)]
    pub id: Option<String>,
    /// Event `subject`.
    #[arg(long)]
    pub subject: Option<String>,
    /// Data as JSON text (content type application/json unless --content-type says otherwise).
    #[arg(long, conflicts_with = "data_file")]
    pub data: Option<String>,
    /// Data read from a file.
    #[arg(long)]
    pub data_file: Option<PathBuf>,
    /// `datacontenttype` of the data.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Extension attribute `name=value` (repeatable).
    #[arg(long = "ext", value_name = "NAME=VALUE")]
    pub ext: Vec<String>,
    /// Send in structured mode (application/cloudevents+json).
    #[arg(long)]
    pub structured: bool,
    /// Do not send `Prefer: reply`.
    #[arg(long)]
    pub no_reply: bool,
}

#[derive(Debug, Args)]
pub struct KnativeArgs {
    /// The directory `jina export kubernetes FLOW DIR` wrote.
    pub export_dir: PathBuf,
    /// Namespace of every generated object (addresses between units are rewritten to it).
    #[arg(long)]
    pub namespace: String,
    /// Write the files here (must not exist or be empty); without it, print them to stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// `autoscaling.knative.dev/min-scale` (0 = scale to zero).
    #[arg(long, default_value_t = 0)]
    pub min_scale: u32,
    /// `autoscaling.knative.dev/max-scale` (0 = unlimited).
    #[arg(long, default_value_t = 10)]
    pub max_scale: u32,
    /// `autoscaling.knative.dev/metric`.
    #[arg(long, default_value = "concurrency", value_parser = ["concurrency", "rps"])]
    pub metric: String,
    /// `autoscaling.knative.dev/target` (in-flight requests or requests/s per pod).
    #[arg(long, default_value_t = 2)]
    pub target: u32,
    /// Revision timeoutSeconds and responseStartTimeoutSeconds (e.g. 300s, 2m).
    #[arg(long, default_value = "300s")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Where to POST the events (http:// only).
    pub url: String,
    /// Workers: connections, and events in flight at most.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub concurrency: usize,
    /// How long to send (e.g. 30s, 2m, 500ms).
    #[arg(long, short = 'd', default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Events per second (open loop); default: as fast as answers come back (closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Event `type`.
    #[arg(long = "type", default_value = "dev.flowbridge.load")]
    pub ty: String,
    /// Event `source`.
    #[arg(long, default_value = "/flowbridge/load")]
    pub source: String,
    /// Event data as JSON text (sent as application/json).
    #[arg(long, default_value = r#"{"text":"hello from flowbridge load"}"#)]
    pub data: String,
    /// Send in structured mode (application/cloudevents+json) instead of binary mode.
    #[arg(long)]
    pub structured: bool,
    /// A request not answered within this long counts as a transport error.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest has no rustls provider of its own: clients that take the process default (the
    // OTLP HTTP exporter) get ring.
    crate::tls::install_default_provider();
    let json_logs = match &cli.command {
        Command::Serve(args) => match args.log_format {
            Some(format) => format == LogFormat::Json,
            None => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
        },
        _ => std::env::var("FLOWBRIDGE_LOG_FORMAT").is_ok_and(|v| v == "json"),
    };
    crate::telemetry::init(json_logs);
    match cli.command {
        Command::Check(args) => {
            let code = check(&args.config);
            if args.probe && code == ExitCode::SUCCESS {
                with_runtime(probe(args.config))
            } else {
                code
            }
        }
        Command::Explain(args) => explain(&args),
        Command::Serve(args) => with_runtime(serve(args)),
        Command::Send(args) => with_runtime(send(args)),
        Command::Knative(args) => knative(&args),
        Command::Load(args) => with_runtime(load_test(args)),
    }
}

fn with_runtime(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &ConfigArgs, port: Option<u16>) -> Result<Config, ExitCode> {
    let overrides = Overrides {
        gateway: args.gateway.clone(),
        port,
    };
    config::load(args.config.as_deref(), &overrides).map_err(|errors| {
        let origin = args
            .config
            .as_deref()
            .map_or("embedded default config".to_string(), |p| {
                p.display().to_string()
            });
        eprintln!("{origin}: {} error(s):", errors.0.len());
        for e in &errors.0 {
            eprintln!("  {e}");
        }
        ExitCode::from(EXIT_CONFIG)
    })
}

async fn serve(args: ServeArgs) -> ExitCode {
    let admin_listen = match args.admin_listen.as_deref().map(config::parse_admin_listen) {
        None => None,
        Some(Ok(addr)) => Some(addr),
        Some(Err(e)) => {
            eprintln!("--admin-listen / FLOWBRIDGE_ADMIN_LISTEN: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let source = crate::reload::Source {
        path: args.config.config.clone(),
        overrides: Overrides {
            gateway: args.config.gateway.clone(),
            port: args.port,
        },
        admin_listen,
    };
    let loaded = match source.load() {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{}: {} error(s):", source.origin(), errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in &loaded.config.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    match crate::app::serve(loaded, source).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: &ConfigArgs) -> ExitCode {
    let config = match load(args, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in &config.warnings {
        println!("warning: {w}");
    }
    for (name, g) in &config.gateways {
        let rate = g.rate.map_or("unlimited".to_string(), |r| format!("{r}/s"));
        let mut tls = String::new();
        if let Some(ca) = &g.tls.ca_file {
            tls.push_str(&format!(", ca_file {}", ca.display()));
        }
        if let Some(name) = &g.tls.server_name {
            tls.push_str(&format!(", tls_server_name {name}"));
        }
        println!(
            "gateway {name}: {}, timeout {}, connect_timeout {}, concurrency {}, rate {rate}, \
             max_pending {}, batch max_docs {} max_bytes {} linger {}, retry {} backoff {}..{}{tls}",
            g.url,
            humantime::format_duration(g.timeout),
            humantime::format_duration(g.connect_timeout),
            g.concurrency,
            g.max_pending,
            g.batch.max_docs,
            g.batch.max_bytes,
            humantime::format_duration(g.batch.linger),
            g.retry.codes.join("|"),
            humantime::format_duration(g.retry.initial_backoff),
            humantime::format_duration(g.retry.max_backoff),
        );
    }
    for route in &config.rules.routes {
        let url = config
            .gateways
            .get(&route.gateway)
            .map_or("?", |g| g.url.as_str());
        let reply = route.reply.as_ref().map_or("no reply".to_string(), |r| {
            format!(
                "reply {}{}",
                r.ty,
                r.to.as_ref().map_or(String::new(), |to| format!(" → {to}"))
            )
        });
        let filters = if route.filters.is_empty() {
            "every event".to_string()
        } else {
            route
                .filters
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let dedup = route.dedup.map_or(String::new(), |d| {
            format!(", dedup {}", humantime::format_duration(d))
        });
        println!(
            "route {}: when {filters}; gateway {} ({url}), {}, {reply}{dedup}",
            route.name,
            route.gateway,
            describe_mapping(&route.mapping.spec),
        );
    }
    if let Some(tls) = &config.tls {
        println!(
            "tls: cert_file {}, key_file {}, {}",
            tls.cert_file.display(),
            tls.key_file.display(),
            tls.client_ca_file
                .as_ref()
                .map_or("no client certificates".to_string(), |ca| format!(
                    "client certificates required (client_ca_file {})",
                    ca.display()
                ))
        );
    }
    println!(
        "auth POST /: {}",
        crate::auth::spec::describe(config.auth.as_ref())
    );
    for w in &config.webhooks {
        println!(
            "webhook {}: POST /webhooks/{} → type {}, source {}; auth {}",
            w.name,
            w.name,
            w.describe_type(),
            w.source,
            crate::auth::spec::describe(w.auth.as_ref().or(config.auth.as_ref())),
        );
    }
    println!(
        "ok: {} route(s), {} gateway(s), listen {}, unmatched {}",
        config.rules.routes.len(),
        config.gateways.len(),
        config.listen,
        match config.unmatched {
            crate::rules::Unmatched::Accept => "accept",
            crate::rules::Unmatched::Reject => "reject",
        }
    );
    ExitCode::SUCCESS
}

/// `check --probe`: ask every gateway, then check each route's literal endpoint against what its
/// gateway serves.
async fn probe(args: ConfigArgs) -> ExitCode {
    use crate::rules::mapping::Expr;
    let config = match load(&args, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut failed = false;
    for (name, spec) in &config.gateways {
        let report = crate::flow::probe::probe(spec).await;
        let gateway = match &report.gateway {
            Ok(g) => g,
            Err(e) => {
                println!("probe gateway {name} ({}): error: {e}", spec.url);
                failed = true;
                continue;
            }
        };
        println!(
            "probe gateway {name} ({}): {}, docarray {} ({}), jina {}, configured docarray: {}",
            spec.url,
            gateway.protocol,
            gateway.docarray.as_deref().unwrap_or("not reported"),
            gateway.format.as_str(),
            gateway.jina.as_deref().unwrap_or("not reported"),
            spec.docarray.as_str(),
        );
        let round_trip = report
            .round_trip
            .map(|t| format!("{:.1} ms", t.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "not measured".into());
        let limit = match spec.concurrency {
            crate::model::Concurrency::Fixed(n) => format!("fixed at {n} requests in flight"),
            crate::model::Concurrency::Auto { min, max } => format!(
                "auto, {min} to {max} requests in flight, starting at {}; the live limit, the \
                 reason of its last change, the no-load latency by batch size and the batch \
                 size are on /metrics (flowbridge_gateway_concurrency_limit…)",
                crate::dispatch::limit::Limiter::new(spec.concurrency).limit()
            ),
        };
        println!(
            "probe gateway {name}: status round trip {round_trip} (a floor for the no-load \
             latency); concurrency {limit}; batches up to {} docs / {} bytes",
            spec.batch.max_docs, spec.batch.max_bytes
        );
        if let Some(mismatch) = &report.mismatch {
            println!("probe gateway {name}: error: {mismatch}");
            failed = true;
        }
        match &report.endpoints {
            Ok(served) => println!(
                "probe gateway {name}: serves endpoints {}",
                served.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            Err(why) => println!("probe gateway {name}: endpoints: {why}"),
        }
        let Ok(served) = &report.endpoints else {
            continue;
        };
        for route in config.rules.routes.iter().filter(|r| &r.gateway == name) {
            let endpoint = match &route.mapping.spec.endpoint {
                None => "/".to_owned(),
                Some(Expr::Literal(e)) => e.clone(),
                Some(Expr::Cel(_)) => {
                    println!(
                        "note: route {}: endpoint is computed per event (cel); not checked",
                        route.name
                    );
                    continue;
                }
            };
            match crate::flow::probe::check_endpoint(served, &endpoint) {
                Ok(None) => {}
                Ok(Some(note)) => println!("note: route {}: {note}", route.name),
                Err(warning) => println!("warning: route {}: {warning}", route.name),
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_PROBE)
    } else {
        ExitCode::SUCCESS
    }
}

/// One-line summary of a route's mapping for `check`.
fn describe_mapping(spec: &MappingSpec) -> String {
    let show = |e: &Expr| match e {
        Expr::Literal(s) => s.clone(),
        Expr::Cel(c) => format!("cel({c})"),
    };
    let mut parts = vec![format!(
        "endpoint {}",
        spec.endpoint.as_ref().map_or("/".to_string(), show)
    )];
    if let Some(t) = &spec.target_executor {
        parts.push(format!("target {}", show(t)));
    }
    parts.push(
        if spec.docs.is_some() {
            "docs: cel"
        } else {
            "docs: default mapping"
        }
        .to_string(),
    );
    if spec.parameters.is_some() {
        parts.push("parameters: cel".to_string());
    }
    parts.join(", ")
}

fn knative(args: &KnativeArgs) -> ExitCode {
    use crate::knative;
    let timeout = match humantime::parse_duration(&args.timeout) {
        Ok(d) if d.subsec_nanos() == 0 => d.as_secs(),
        Ok(_) => {
            eprintln!("error: --timeout {}: whole seconds only", args.timeout);
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            eprintln!("error: --timeout {:?}: {e}", args.timeout);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = knative::Options {
        namespace: args.namespace.clone(),
        min_scale: args.min_scale,
        max_scale: args.max_scale,
        metric: args.metric.parse().unwrap_or(knative::Metric::Concurrency),
        target: args.target,
        timeout_seconds: timeout,
    };
    let conversion = match knative::convert_dir(&args.export_dir, &options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowbridge knative: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for note in &conversion.notes {
        eprintln!("flowbridge knative: {note}");
    }
    match &args.output {
        Some(dir) => {
            if let Err(e) = knative::write(&conversion, dir) {
                eprintln!("flowbridge knative: error: {e}");
                return ExitCode::FAILURE;
            }
            eprintln!(
                "flowbridge knative: wrote {} files to {} (kubectl apply -k {})",
                conversion.files.len(),
                dir.display(),
                dir.display()
            );
        }
        None => print!("{}", knative::to_stream(&conversion)),
    }
    ExitCode::SUCCESS
}

fn read_input(name: &str) -> Result<String, String> {
    if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(Path::new(name)).map_err(|e| format!("{name}: {e}"))
    }
}

/// The explain result for one event: route name and request, exactly as it would be sent, and
/// `trace`: each route tried, in order, with the filter that rejected it (index, rendering and
/// any `cel`/`cesql` evaluation error) or, for the route chosen, the filters that all matched.
pub fn explain_event(config: &Config, event: &CloudEvent) -> Result<Value, Value> {
    let trace: Vec<Value> = config
        .rules
        .trace(event)
        .iter()
        .map(|t| {
            let route = t.route;
            match &t.failure {
                None => json!({
                    "route": route.name,
                    "matched": true,
                    "filters": route.filters.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                }),
                Some(failure) => {
                    let mut entry = json!({
                        "route": route.name,
                        "matched": false,
                        "filter": failure.index,
                        "failed": route
                            .filters
                            .get(failure.index)
                            .map(|f| f.to_string()),
                    });
                    if let Some(error) = &failure.error {
                        entry["error"] = json!(error);
                    }
                    entry
                }
            }
        })
        .collect();
    let Some(route) = config.rules.route(event) else {
        return Ok(json!({"route": null, "request": null, "trace": trace}));
    };
    if let Some(Err(e)) = route.schema.as_ref().map(|s| s.check(event)) {
        return Err(json!({"route": route.name, "error": e.to_string(), "trace": trace}));
    }
    match route.mapping.apply(event) {
        Ok(request) => Ok(json!({
            "route": route.name,
            "request": {
                "endpoint": request.endpoint,
                "target_executor": request.target_executor,
                "parameters": request.parameters,
                "docs": request.docs.iter().map(document_to_json).collect::<Vec<_>>(),
            },
            "trace": trace,
        })),
        Err(e) => Err(json!({"route": route.name, "error": e.to_string(), "trace": trace})),
    }
}

fn explain(args: &ExplainArgs) -> ExitCode {
    let config = match load(&args.config, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut failed = false;
    for name in &args.events {
        let events = read_input(name).and_then(|text| {
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
            match &value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| binding::from_json(v).map_err(|e| format!("{name}[{i}]: {e}")))
                    .collect(),
                _ => binding::from_json(&value)
                    .map(|e| vec![e])
                    .map_err(|e| format!("{name}: {e}")),
            }
        });
        match events {
            Ok(events) => {
                for event in &events {
                    let out = explain_event(&config, event).unwrap_or_else(|e| {
                        failed = true;
                        e
                    });
                    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn load_test(args: LoadArgs) -> ExitCode {
    let options = crate::load::LoadOptions {
        url: args.url,
        concurrency: args.concurrency,
        duration: args.duration,
        rate: args.rate,
        ty: args.ty,
        source: args.source,
        data: Some(args.data),
        structured: args.structured,
        timeout: args.timeout,
        progress: !args.quiet,
    };
    let summary = match crate::load::run(&options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        print!("{}", summary.to_text());
    }
    if summary.kept_up == Some(false) {
        eprintln!(
            "warning: could not keep up with --rate {}: sent {} events",
            options.rate.unwrap_or_default(),
            summary.sent
        );
    }
    // Exit 1 when nothing at all got a 2xx (the target is down or refuses everything).
    if summary.ok > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn is_json_type(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.ends_with("/json") || essence.ends_with("+json")
}

/// Build the event `send` posts.
pub fn event_from_args(args: &SendArgs) -> Result<CloudEvent, String> {
    let mut extensions = std::collections::BTreeMap::new();
    for kv in &args.ext {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--ext {kv:?}: expected NAME=VALUE"))?;
        extensions.insert(k.to_string(), ExtValue::String(v.to_string()));
    }
    let raw: Option<Vec<u8>> = match (&args.data, &args.data_file) {
        (Some(d), _) => Some(d.clone().into_bytes()),
        (None, Some(f)) => {
            Some(std::fs::read(f).map_err(|e| format!("--data-file {}: {e}", f.display()))?)
        }
        (None, None) => None,
    };
    let content_type = match (&args.content_type, &raw) {
        (Some(ct), _) => Some(ct.clone()),
        (None, None) => None,
        (None, Some(bytes)) => {
            if serde_json::from_slice::<Value>(bytes).is_ok() {
                Some("application/json".to_string())
            } else if args.data.is_some() {
                return Err("--data is not valid JSON; pass --content-type for other data".into());
            } else {
                Some("application/octet-stream".to_string())
            }
        }
    };
    let data = match (raw, &content_type) {
        (None, _) => None,
        (Some(bytes), Some(ct)) if is_json_type(ct) => Some(Data::Json(
            serde_json::from_slice(&bytes).map_err(|e| format!("data is not valid JSON: {e}"))?,
        )),
        (Some(bytes), Some(ct)) if ct.to_ascii_lowercase().starts_with("text/") => {
            Some(Data::Text(
                String::from_utf8(bytes).map_err(|_| "text data is not valid UTF-8".to_string())?,
            ))
        }
        (Some(bytes), _) => Some(Data::Binary(bytes.into())),
    };
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    Ok(CloudEvent {
        datacontenttype: content_type,
        subject: args.subject.clone(),
        time: Some(now_timestamp()),
        extensions,
        data,
        ..CloudEvent::new(id, &args.source, &args.ty)
    })
}

async fn send(args: SendArgs) -> ExitCode {
    let event = match event_from_args(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // https:// targets: the system's roots (SSL_CERT_FILE / SSL_CERT_DIR honoured).
    let client = match crate::tls::https_client(None, None).and_then(|b| {
        b.build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut request = client.post(&args.url);
    if args.structured {
        request = request
            .header("content-type", "application/cloudevents+json")
            .body(binding::to_json(&event).to_string());
    } else {
        let (headers, body) = binding::encode_binary(&event);
        request = request.headers(headers).body(body);
    }
    if !args.no_reply {
        request = request.header("prefer", "reply");
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: POST {}: {}",
                args.url,
                crate::tls::describe_error(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    let mut out = json!({"status": status.as_u16(), "id": event.id, "reply": null});
    if status.is_success() {
        if !body.is_empty() || headers.contains_key("ce-specversion") {
            match binding::decode(&headers, &body) {
                Ok(decoded) => {
                    out["reply"] = decoded.events.first().map_or(Value::Null, binding::to_json);
                }
                Err(e) => out["reply_error"] = json!(e.to_string()),
            }
        }
    } else {
        out["error"] =
            serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
