//! Wires the pieces into one running bridge:
//! video link -> mailbox -> frame path (decode, sink, snapshots), with the
//! button link feeding snapshot requests and a periodic summary.

pub mod frame_path;
pub mod idle;
pub mod mailbox;

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Settings;
use crate::link::LinkConfig;
use crate::link::button::ButtonLink;
use crate::link::socket::{SocketError, open_udp, open_video_udp, rmem_max, small_buffer_line};
use crate::link::video::VideoLink;
use crate::output::key::{KeyCode, KeyOutput, NullKey};
use crate::output::open_key;
use crate::output::sinks::{self, SinkError, SinkOptions, SinkSpec, V4l2Target};
use crate::output::snapshot::SnapshotWriter;
use crate::picture::decode::Decoder;
use crate::picture::{Framer, Geometry, Placement};
use crate::scope::button::ButtonTracker;
use crate::scope::reassembly::{Reassembler, ReassemblyLimits};
use crate::stats::{Stats, Summary, Totals, bump};
use frame_path::{ArrivedFrame, Camera, FramePath, PathEnd, SnapshotRequests};
use idle::IdleSchedule;
use mailbox::Mailbox;

/// Why the bridge could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot open the output: {0}")]
    OpenOutput(#[source] SinkError),
    #[error("writing the output failed: {0}")]
    WriteOutput(#[source] SinkError),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("the frame path thread failed unexpectedly")]
    FramePathPanicked,
}

/// What a running bridge tells whoever started it (the systemd service): readiness,
/// liveness of the frame path, and where its counters are. Every method has a do-nothing
/// default; `first_write` and `tick` run on the frame path thread and must be quick.
pub trait BridgeObserver: Send + Sync {
    /// The output is open and the link tasks are about to start.
    fn started(&self, _started: &BridgeStarted) {}
    /// The output is ready for apps: a camera's first frame (a "no signal" placeholder
    /// or a scope picture) was written, or, for a file or null output, it is open.
    fn first_write(&self) {}
    /// The frame path loop turned (at least every 200 ms while it is healthy).
    fn tick(&self, _now: Instant) {}
}

/// The observer of a plain `scopecam run`: nobody is listening.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullObserver;

impl BridgeObserver for NullObserver {}

/// What the bridge opened, for [`BridgeObserver::started`].
#[derive(Debug, Clone)]
pub struct BridgeStarted {
    /// The output as the log names it, e.g. "mjpeg to /tmp/x.mjpeg".
    pub output: String,
    /// The camera node apps open, for camera outputs.
    pub device: Option<PathBuf>,
    /// The live counters.
    pub stats: Arc<Stats>,
}

/// How a bridge run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeReport {
    pub end: PathEnd,
    pub totals: Totals,
}

impl LinkConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        LinkConfig {
            video: SocketAddr::V4(SocketAddrV4::new(settings.scope, settings.video_port)),
            control: SocketAddr::V4(SocketAddrV4::new(settings.scope, settings.control_port)),
            interface: settings.interface.clone(),
            heartbeat_interval: settings.heartbeat_interval,
            button_poll_interval: settings.button_poll_interval,
            stall_timeout: settings.stall_timeout,
        }
    }
}

/// The output to open: a plain `v4l2` output takes the `device` setting when one is given.
fn output_spec(settings: &Settings) -> SinkSpec {
    match (&settings.output, &settings.device) {
        (SinkSpec::V4l2(V4l2Target::Auto), Some(device)) => {
            SinkSpec::V4l2(V4l2Target::Device(device.clone()))
        }
        (spec, _) => spec.clone(),
    }
}

fn sink_options(settings: &Settings) -> SinkOptions {
    SinkOptions {
        fps_hint: settings.fps_hint,
        width: settings.width,
        height: settings.height,
        fps: settings.fps_hint,
        card_label: settings.card_label.clone(),
        create_device: settings.create_device,
        format: settings.format,
    }
}

/// Runs one bridge until `shutdown` is set to true (by a signal), the frame
/// limit is reached or the output is closed. Always sends the stop packet.
pub async fn run(
    settings: &Settings,
    frame_limit: Option<u64>,
    shutdown: Arc<watch::Sender<bool>>,
) -> Result<BridgeReport, BridgeError> {
    run_observed(settings, frame_limit, shutdown, Arc::new(NullObserver)).await
}

/// [`run`], telling `observer` about readiness and every turn of the frame path.
pub async fn run_observed(
    settings: &Settings,
    frame_limit: Option<u64>,
    shutdown: Arc<watch::Sender<bool>>,
    observer: Arc<dyn BridgeObserver>,
) -> Result<BridgeReport, BridgeError> {
    let link = LinkConfig::from_settings(settings);
    let sink = sinks::open(&output_spec(settings), &sink_options(settings))
        .map_err(BridgeError::OpenOutput)?;
    let (video_socket, buffer) =
        open_video_udp(link.interface.as_deref(), settings.max_frame_bytes)?;
    if !buffer.holds_a_frame() {
        let ceiling = rmem_max(std::path::Path::new("/proc/sys"));
        warn!(
            "{}",
            small_buffer_line(&buffer, settings.max_frame_bytes, ceiling)
        );
    }
    let button_socket = open_udp(link.interface.as_deref())?;
    info!(output = %sink.describe(), "bridge started");

    let stats = Arc::new(Stats::default());
    observer.started(&BridgeStarted {
        output: sink.describe(),
        device: sink.device().map(PathBuf::from),
        stats: stats.clone(),
    });
    let mailbox = Arc::new(Mailbox::new());
    let snapshot_requests = Arc::new(SnapshotRequests::default());
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();

    let camera = sink.fixed_geometry().map(|(width, height)| {
        Camera::new(
            Framer::new(Placement {
                rotation: settings.rotation,
                mirror: settings.mirror,
                output: Geometry { width, height },
            }),
            IdleSchedule::new(settings.no_signal_fps, settings.hold_last_frame),
            sink.needs_yuyv(),
        )
    });
    let snapshots = SnapshotWriter::new(settings.resolved_snapshot_dir(), settings.snapshot_limits);
    let stale = snapshots.remove_stale_parts();
    if stale > 0 {
        info!(
            "removed {stale} unfinished snapshot file(s) a stopped bridge left in {}",
            snapshots.dir().display()
        );
    }
    let frame_path = FramePath {
        sink,
        decoder: Decoder::new(),
        camera,
        snapshots,
        snapshot_requests: snapshot_requests.clone(),
        snapshot_log: Default::default(),
        logged_refusals: Vec::new(),
        stats: stats.clone(),
        frame_limit,
        recycle: recycle_tx,
        observer,
    };
    let frame_thread = {
        let mailbox = mailbox.clone();
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("frame-path".into())
            .spawn(move || {
                // Whatever ends the frame path, a panic included, ends the bridge.
                let _stop_bridge = StopOnDrop(shutdown);
                frame_path.run(&mailbox)
            })
            .map_err(|_| BridgeError::FramePathPanicked)?
    };

    let video = VideoLink {
        config: &link,
        socket: video_socket,
        reassembler: Reassembler::new(ReassemblyLimits {
            max_frame_bytes: settings.max_frame_bytes,
            frame_timeout: settings.frame_timeout,
            ..ReassemblyLimits::default()
        }),
        on_frame: |frame, completed_at| {
            let older = mailbox.put(ArrivedFrame {
                frame,
                completed_at,
            })?;
            bump(&stats.frames_skipped);
            Some(older.frame.jpeg)
        },
        recycled: recycle_rx,
        stats: &stats,
    };
    let mut key = open_key_or_warn(settings.key);
    let mut key_failed = false;
    let button = ButtonLink {
        config: &link,
        socket: button_socket,
        tracker: ButtonTracker::new(),
        stats: &stats,
        on_press: |presses| {
            snapshot_requests.add(presses);
            if let Err(e) = key.press(presses) {
                if !std::mem::replace(&mut key_failed, true) {
                    warn!("{e}");
                }
            }
        },
    };
    tokio::join!(
        video.run(shutdown.subscribe()),
        button.run(shutdown.subscribe()),
        summarize(&stats, settings.summary_interval, shutdown.subscribe()),
    );

    mailbox.close();
    let end = frame_thread
        .join()
        .map_err(|_| BridgeError::FramePathPanicked)?
        .map_err(BridgeError::WriteOutput)?;
    let totals = stats.snapshot();
    let summary = Summary {
        now: &totals,
        before: &Totals::default(),
        interval: None,
    };
    info!("stopped: {summary}");
    Ok(BridgeReport { end, totals })
}

/// Sets the shutdown flag when dropped, so even a panicking frame path stops
/// the link tasks instead of leaving them heartbeating for nothing.
struct StopOnDrop(Arc<watch::Sender<bool>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// The configured key, or no key (with one warning) when uinput is out of
/// reach: the button still takes snapshots and the video goes on.
fn open_key_or_warn(key: Option<KeyCode>) -> Box<dyn KeyOutput> {
    match open_key(key) {
        Ok(key) => {
            info!("button presses {}", key.describe());
            key
        }
        Err(e) => {
            warn!("{e}; the button will only take snapshots");
            Box::new(NullKey)
        }
    }
}

/// Logs one summary line every `every` until shutdown.
async fn summarize(stats: &Stats, every: Option<Duration>, mut shutdown: watch::Receiver<bool>) {
    let Some(every) = every else {
        let _ = shutdown.wait_for(|stop| *stop).await;
        return;
    };
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut before = stats.snapshot();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticker.tick() => {
                let now = stats.snapshot();
                info!("{}", Summary { now: &now, before: &before, interval: Some(every) });
                before = now;
            }
        }
    }
}
