//! `scopecam simulate`: a protocol-faithful fake scope.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::info;

use super::exit::{Failure, Outcome};
use super::{SimulateArgs, init_logging, runtime_with_signals};
use crate::simulator::{self, Faults, FrameSource, SimulatorConfig, Subsampling};

pub fn simulate(args: SimulateArgs) -> Outcome {
    if let Some(path) = &args.replay {
        return replay(&args, path);
    }
    let subsampling = args.subsampling.parse::<Subsampling>().map_err(|_| {
        Failure::Usage(format!(
            "bad value for --subsampling: '{}' (expected 444, 422, 420 or gray)",
            args.subsampling
        ))
    })?;
    let config = SimulatorConfig {
        bind: args.bind,
        video_port: args.video_port,
        control_port: args.control_port,
        source: match args.file {
            Some(path) => FrameSource::File(path),
            None => FrameSource::Pattern {
                width: args.width,
                height: args.height,
                subsampling,
                quality: args.quality,
            },
        },
        fps: args.fps,
        fragment_payload: usize::from(args.fragment_size),
        press_every: args.press_every.map(Duration::from_secs_f64),
        faults: Faults {
            loss: args.loss,
            duplicate: args.duplicate,
            reorder: args.reorder,
            garbage: args.garbage,
            interleave: args.interleave,
        },
        idle_timeout: Duration::from_secs_f64(args.idle_timeout),
        seed: args.seed,
        max_frames: args.frames,
        resize_every: args.resize_every,
        flood: args.flood.map(Duration::from_secs_f64),
        vanish_mid_frame_after: args.vanish_mid_frame,
        frame_ids: args.frame_ids,
        filler: args.filler as usize,
        silent_button: args.silent_button,
        ..SimulatorConfig::default()
    };
    init_logging("info");
    let shutdown = Arc::new(watch::channel(false).0);
    let rt = runtime_with_signals(shutdown.clone())?;
    let mut stop = shutdown.subscribe();
    let result = rt.block_on(simulator::run(config, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    match result {
        Ok(stats) => {
            info!("simulator stopped: {stats:?}");
            Ok(0)
        }
        Err(e) => Err(Failure::runtime(e.as_ref())),
    }
}

/// `--replay FILE`: the capture's scope on the given address and ports.
fn replay(args: &SimulateArgs, path: &std::path::Path) -> Outcome {
    init_logging("info");
    let timeline = simulator::replay::load(path).map_err(|e| Failure::runtime(e.as_ref()))?;
    let shutdown = Arc::new(watch::channel(false).0);
    let rt = runtime_with_signals(shutdown.clone())?;
    let mut stop = shutdown.subscribe();
    let result = rt.block_on(simulator::replay(
        args.bind,
        args.video_port,
        args.control_port,
        timeline,
        Duration::from_secs_f64(args.idle_timeout),
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    ));
    result.map(|_| 0).map_err(|e| Failure::runtime(e.as_ref()))
}
