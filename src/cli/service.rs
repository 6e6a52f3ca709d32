//! `scopecam service IFACE`: the systemd service's entry point (see [`crate::service`]).

use std::process::ExitCode;
use tracing::{info, warn};

use super::run::error_chain;
use super::{EXIT_FAILURE, ServiceArgs, Started, config_file, start};
use crate::config::{self, Mode, Overrides};
use crate::service::{self, Outcome};

pub fn service(args: ServiceArgs) -> ExitCode {
    let overrides = Overrides {
        interface: Some(args.interface.clone()),
        ..Overrides::default()
    };
    let loaded = config::load_for(
        Mode::Service,
        &config_file(args.config),
        &config::process_env(),
        &overrides,
    );
    let Started {
        settings,
        rt,
        shutdown,
    } = match start(loaded) {
        Ok(started) => started,
        Err(code) => return code,
    };
    match rt.block_on(service::serve(settings, &args.interface, shutdown)) {
        // Exit 0 either way: systemd must not restart a service for a dongle that is no
        // scope, or for a scope that was unplugged.
        Ok(Outcome::Unplugged(line) | Outcome::NotAScope(line) | Outcome::NotAScopeLink(line)) => {
            info!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Outcome::NoAddress(line)) => {
            warn!("{line}");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Interrupted | Outcome::Bridged(_)) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scopecam: {}", error_chain(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
