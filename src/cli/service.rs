//! `scopecam service IFACE`: the systemd service's entry point (see [`crate::service`]).

use tracing::{info, warn};

use super::exit::{self, Failure};
use super::{ServiceArgs, Started, config_file, start};
use crate::config::{self, Mode, Overrides};
use crate::service::{self, Outcome};

pub fn service(args: ServiceArgs) -> exit::Outcome {
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
    } = start(loaded)?;
    match rt.block_on(service::serve(settings, &args.interface, shutdown)) {
        // Exit 0 either way: systemd must not restart a service for a dongle that is no
        // scope, or for a scope that was unplugged.
        Ok(Outcome::Unplugged(line) | Outcome::NotAScope(line) | Outcome::NotAScopeLink(line)) => {
            info!("{line}");
            Ok(0)
        }
        Ok(Outcome::NoAddress(line)) => {
            warn!("{line}");
            Ok(0)
        }
        Ok(Outcome::Interrupted | Outcome::Bridged(_)) => Ok(0),
        Err(e) => Err(Failure::runtime(&e)),
    }
}
