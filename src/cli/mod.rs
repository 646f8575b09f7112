//! The command line: `serve`, `check`, `explain`, `send`, `knative`, `load` and `top` (clap derive, env
//! fallbacks). Each verb parses its arguments, calls into the library and turns the outcome into
//! an exit code (0 ok, 1 failure, 64 usage/config error as in sysexits `EX_USAGE`).
//!
//! The top of the crate: it may use every other module, and none uses it. This file holds the
//! dispatch and the verbs too short for a file (`serve`, `knative`, `load`):
//! * `args`: the clap types, exit codes and the shared config loading;
//! * `check`: `check` (the config, one line per gateway and route) and `check --probe`;
//! * `explain`: `explain`, which route an event takes and the request it becomes;
//! * `send`: `send`, one CloudEvent posted and its answer printed;
//! * `top`: `top`, the live view of a running flowbridge (`crate::top`).

mod args;
mod check;
mod explain;
mod send;
mod top;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{self, Overrides};

pub use args::*;
pub use explain::explain_event;
pub use send::event_from_args;

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
            let code = check::check(&args.config);
            if args.probe && code == ExitCode::SUCCESS {
                with_runtime(check::probe(args.config))
            } else {
                code
            }
        }
        Command::Explain(args) => explain::explain(&args),
        Command::Serve(args) => with_runtime(serve(args)),
        Command::Send(args) => with_runtime(send::send(args)),
        Command::Knative(args) => knative(&args),
        Command::Load(args) => with_runtime(load_test(args)),
        Command::Top(args) => top::top(&args),
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
    if let Some(entry) = options.flowbridge_autoscale() {
        eprintln!(
            "flowbridge knative: in flowbridge's config, give this Flow's gateway `{entry}` \
             (scale-aware delivery, docs/delivery.md)"
        );
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
