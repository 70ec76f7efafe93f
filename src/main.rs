//! mcp-prometheus: an MCP server in front of Prometheus and Grafana Mimir.

mod allocator;
mod app;
mod cli;
mod config;
mod mcp;
mod oauth;
mod passthrough;
mod promtime;
mod serve;
mod stack;
mod telemetry;
mod tenancy;
mod tools;
mod upstream;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, ServeArgs};
use crate::config::Config;

fn main() -> ExitCode {
    allocator::purge_freed_memory_soon();
    // rustls needs one process-wide provider before any TLS config is made.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("a TLS crypto provider was already installed");
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("mcp-prometheus {}", cli::VERSION);
            ExitCode::SUCCESS
        }
        Command::Tools => print_tools(),
        Command::CheckConfig { config } => check_config(&config),
        Command::Serve(args) => serve(args),
    }
}

/// Prints `[{name, title, description}]` of every built-in tool, unprefixed,
/// in `tools/list` order: the MCP Bundle manifest is generated from it.
fn print_tools() -> ExitCode {
    let tools: Vec<serde_json::Value> = tools::registry::tool_list("")
        .into_iter()
        .map(|tool| {
            serde_json::json!({
                "name": tool.name,
                "title": tool.title,
                "description": tool.description,
            })
        })
        .collect();
    // A closed pipe (`| head`) is a failure to report, not a panic.
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer_pretty(&mut out, &tools) {
        Ok(()) if writeln!(out).is_ok() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cannot print the tools: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Validates the config and builds every stack from it, as `serve` would.
fn check_config(path: &std::path::Path) -> ExitCode {
    let checked = Config::load(Some(path))
        .map_err(|e| e.to_string())
        .and_then(|config| {
            stack::check(&config).map_err(|e| e.to_string())?;
            Ok(config)
        });
    match checked {
        Ok(config) => {
            print!("{}", config.to_redacted_toml());
            eprintln!("config is valid");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut config = match Config::load_unvalidated(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if let Some(transport) = args.transport {
        config.server.transport = transport;
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(listen) = args.observability_listen {
        config.observability.listen = Some(listen);
    }
    if args.enable_oauth {
        config.oauth.enabled = true;
    }
    if !args.static_tenants.is_empty() {
        config.layers.tenancy.enabled = true;
        config.layers.tenancy.mode = config::TenancyMode::Static;
        config.layers.tenancy.tenants = args.static_tenants.clone();
    }
    if let Some(mode) = &args.tenancy_mode {
        match serde_json::from_value::<config::TenancyMode>(serde_json::Value::String(mode.clone()))
        {
            Ok(mode) => {
                let tenancy = &mut config.layers.tenancy;
                tenancy.enabled = true;
                // The Go server's "static" mode also covered a group map.
                tenancy.mode = if mode == config::TenancyMode::Static
                    && tenancy.tenants.is_empty()
                    && !tenancy.groups.is_empty()
                {
                    config::TenancyMode::GroupMap
                } else {
                    mode
                };
            }
            Err(_) => {
                eprintln!(
                    "--tenancy-mode {mode:?}: send none, static, group-map or grafana-organization"
                );
                return ExitCode::from(2);
            }
        }
    }
    config.normalize();
    if let Err(error) = config.validate() {
        eprintln!("{error}");
        return ExitCode::from(2);
    }
    let exporter = telemetry::otel::Exporter::from_config(&config.layers.trace.otlp_endpoint);
    telemetry::logging::init(&config.observability, exporter.as_ref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let span_hook = exporter.as_ref().map(telemetry::otel::Exporter::span_hook);
        let app = match app::App::build(config, span_hook).await {
            Ok(app) => app,
            Err(error) => {
                // The same words check-config prints, whatever the log format.
                eprintln!("{error}");
                tracing::error!(%error, "cannot build the server");
                return ExitCode::from(2);
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(serve::shutdown_signal(shutdown.clone()));
        let code = match serve::run(app, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "stopped");
                ExitCode::FAILURE
            }
        };
        if let Some(exporter) = &exporter {
            exporter.shutdown();
        }
        code
    })
}
