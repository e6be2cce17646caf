//! `llm-router`: reads the environment, reports every configuration problem at once (exit 2), then
//! serves until SIGINT/SIGTERM.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use llm_router::settings::{help_text, Settings};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("-h" | "--help") => {
            print!("{}", help_text());
            return ExitCode::SUCCESS;
        }
        Some("keys") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            return llm_router::keys_cli::main(&args);
        }
        Some("batch") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            return llm_router::batch::main(&args);
        }
        Some("-V" | "--version") => {
            println!("llm-router {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("llm-router: unknown argument {other:?}; configuration is read from LLM_ROUTER_* variables (see --help)");
            return ExitCode::from(2);
        }
        None => {}
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("llm-router: configuration error, not starting:");
            for e in &errors {
                eprintln!("  {e}");
            }
            return ExitCode::from(2);
        }
    };
    let _log_guard = llm_router::telemetry::init_logging(&settings.log);
    let listener = match std::net::TcpListener::bind((settings.host.as_str(), settings.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "llm-router: cannot listen on {}:{}: {e}",
                settings.host, settings.port
            );
            return ExitCode::from(1);
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let server = llm_router::run(listener, settings).await?;
        server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-router: {e}");
            ExitCode::from(1)
        }
    }
}
