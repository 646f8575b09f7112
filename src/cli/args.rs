//! The clap types of every verb, the exit codes, and the config loading the verbs share. The
//! verbs' files (`check`, `explain`, `send`) and the dispatch in `mod.rs` import from here; this
//! file imports none of them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, Overrides};

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
    /// A live view of a running flowbridge from its /metrics: per route events/s by status
    /// class, per gateway requests in flight / limit, docs per request, p50/p99, queue, queue
    /// wait p99, cold.
    #[command(
        after_help = "Examples:\n  flowbridge top                          # http://127.0.0.1:9095\n  flowbridge top http://10.0.0.7:9095\n  flowbridge top --once | grep orders     # one plain table (two scrapes a second apart)\n\nq, Esc or Ctrl-C quits."
    )]
    Top(TopArgs),
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

/// The config `args` name (or the embedded default); on errors, lists them on stderr and gives
/// the exit code.
pub(super) fn load(args: &ConfigArgs, port: Option<u16>) -> Result<Config, ExitCode> {
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

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The admin listener of the flowbridge to watch (http:// only).
    #[arg(default_value = "http://127.0.0.1:9095")]
    pub url: String,
    /// Print one plain table and exit (two scrapes `--interval` apart).
    #[arg(long)]
    pub once: bool,
    /// Time between scrapes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
}
