//! `scopecam run`: load settings, start the bridge, exit with a clear code.

use std::sync::Arc;

use tokio::sync::watch;

use super::exit::{Failure, Outcome};
use super::{RunArgs, Started, config_file, start};
use crate::bridge;
use crate::config::{self, Overrides, Settings};
use crate::output::sinks::SinkSpec;
use crate::simulator::{Simulator, SimulatorConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tracing::info;

pub fn run(args: RunArgs) -> Outcome {
    let file = config_file(args.config);
    let overrides = Overrides {
        scope: args.scope,
        video_port: args.video_port,
        control_port: args.control_port,
        interface: args.interface,
        output: args.output,
        snapshot_dir: args.snapshot_dir,
    };
    let Started {
        settings,
        rt,
        shutdown,
    } = start(config::load(&file, &config::process_env(), &overrides))?;
    if settings.output == SinkSpec::Null {
        info!(
            "output is null: nothing is decoded or written; `--output v4l2` makes the \
             camera (or y4m:-, mjpeg:PATH)"
        );
    }
    let bridged = if args.simulate {
        rt.block_on(bridge_simulated_scope(settings, args.frames, shutdown))
    } else {
        rt.block_on(bridge::run(&settings, args.frames, shutdown))
            .map_err(Into::into)
    };
    bridged.map(|_| 0).map_err(|e| Failure::runtime(e.as_ref()))
}

/// `run --simulate`: a simulated scope on loopback ports the kernel picks,
/// and the bridge pointed at it; both stop together.
async fn bridge_simulated_scope(
    mut settings: Settings,
    frames: Option<u64>,
    shutdown: Arc<watch::Sender<bool>>,
) -> Result<bridge::BridgeReport, Box<dyn std::error::Error>> {
    let simulator = Simulator::bind(SimulatorConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        video_port: 0,
        control_port: 0,
        press_every: Some(Duration::from_secs(5)),
        // Match the rate the y4m header announces, so a recording plays at speed.
        fps: f64::from(settings.fps_hint),
        ..SimulatorConfig::default()
    })
    .await?;
    settings.scope = Ipv4Addr::LOCALHOST;
    settings.video_port = simulator.local_video_addr().port();
    settings.control_port = simulator.local_control_addr().port();
    info!(
        "simulated scope on {} (video) and {} (button)",
        simulator.local_video_addr(),
        simulator.local_control_addr()
    );
    // The scope outlives the bridge, so it sees the bridge's stop packet.
    let (stop_scope, scope_stopped) = tokio::sync::oneshot::channel::<()>();
    let scope = tokio::spawn(simulator.run(async move {
        let _ = scope_stopped.await;
    }));
    let report = bridge::run(&settings, frames, shutdown).await;
    let _ = stop_scope.send(());
    let _ = scope.await;
    Ok(report?)
}
