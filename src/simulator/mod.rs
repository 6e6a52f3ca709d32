//! A simulated borescope on UDP, for tests and for working without hardware.
//!
//! It speaks the protocol in docs/protocol.md from the scope's side: it streams
//! fragmented JPEGs from its video port to whoever sends heartbeats, stops
//! on a stop packet or when heartbeats cease, and answers button polls on its
//! control port with a press counter that does not start at zero. Faults
//! (loss, duplication, reordering, junk) can be injected with a seeded RNG so
//! that the bridge's robustness can be tested reproducibly.
//!
//! Use [`Simulator::bind`] when the real ports matter (tests bind port 0 and
//! ask [`Simulator::local_video_addr`]), or [`run`] for the one-call version.

mod faults;
mod frames;
mod pattern;
pub mod replay;
mod scope;
mod variants;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;

pub use faults::{FaultCounts, FaultInjector, Faults, GarbageKind, Outgoing};
pub use pattern::{
    COLOUR_BARS, MAX_PATTERN_DIMENSION, PATTERN_PERIOD, ParseSubsamplingError, Subsampling,
    encode_pattern_frame, render_rgb,
};
pub use variants::{FrameIds, MAX_FILLER, ParseFrameIdsError, with_filler};

use crate::scope::protocol::video::HEADER_LEN;
use crate::scope::protocol::{DEFAULT_CONTROL_PORT, DEFAULT_VIDEO_PORT};
use frames::FrameStore;

/// Largest fragment payload that still fits a UDP datagram with its header.
pub const MAX_FRAGMENT_PAYLOAD: usize = 65_507 - HEADER_LEN;
/// Highest frame rate accepted; beyond this the pacing is meaningless.
pub const MAX_FPS: f64 = 1000.0;

/// Where the simulated scope's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameSource {
    /// The moving test pattern (see [`encode_pattern_frame`]).
    Pattern {
        width: u32,
        height: u32,
        subsampling: Subsampling,
        quality: u8,
    },
    /// The JPEGs of a concatenated MJPEG file, looped forever.
    File(PathBuf),
}

impl Default for FrameSource {
    /// What a J103 is reported to send: 640x480, 4:2:2.
    fn default() -> Self {
        FrameSource::Pattern {
            width: 640,
            height: 480,
            subsampling: Subsampling::S422,
            quality: 85,
        }
    }
}

/// Everything the simulated scope can be told; one field per CLI flag.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    /// Address both ports are bound to.
    pub bind: IpAddr,
    /// Video port; 0 picks a free port (see [`Simulator::local_video_addr`]).
    pub video_port: u16,
    /// Control (button) port; 0 picks a free port.
    pub control_port: u16,
    pub source: FrameSource,
    /// Frames per second while streaming.
    pub fps: f64,
    /// Largest payload per fragment.
    pub fragment_payload: usize,
    /// Simulate a button press this often; `None` = never.
    pub press_every: Option<Duration>,
    /// The button counter at start. Not zero by default, because a real
    /// scope may have been pressed before the bridge started and the bridge
    /// must treat the first value it sees as a baseline.
    pub initial_presses: u16,
    pub faults: Faults,
    /// Stop streaming after this long without a heartbeat.
    pub idle_timeout: Duration,
    /// Seed for the fault RNG; the same seed gives the same faults.
    pub seed: u64,
    /// Send at most this many frames in total, then stay silent (for tests).
    pub max_frames: Option<u64>,
    /// Test pattern only: every this many frames, switch between the
    /// pattern's size and [`alternate_size`] of it, as a scope whose
    /// resolution is changed mid-stream.
    pub resize_every: Option<u64>,
    /// For this long after the first client connects, a second thread sends
    /// junk datagrams (see [`FaultInjector::flood_datagram`]) from the video
    /// port to the client as fast as the socket takes them.
    pub flood: Option<Duration>,
    /// After this many frames, send only the first half of the next frame's
    /// fragments, then fall silent on both ports for good, as a scope that
    /// is unplugged or loses power between two fragments.
    pub vanish_mid_frame_after: Option<u64>,
    /// The frame id in the fragment headers, as real scopes vary it.
    pub frame_ids: FrameIds,
    /// Bytes of filler after each JPEG's end marker, counted in the
    /// announced frame size, as some scopes send (see [`with_filler`]).
    pub filler: usize,
    /// Receive button polls but never answer them, as a scope without a
    /// working button port.
    pub silent_button: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            video_port: DEFAULT_VIDEO_PORT,
            control_port: DEFAULT_CONTROL_PORT,
            source: FrameSource::default(),
            fps: 15.0,
            fragment_payload: 1450,
            press_every: None,
            initial_presses: 1234,
            faults: Faults::default(),
            idle_timeout: Duration::from_secs(3),
            seed: 0,
            max_frames: None,
            resize_every: None,
            flood: None,
            vanish_mid_frame_after: None,
            frame_ids: FrameIds::Counting,
            filler: 0,
            silent_button: false,
        }
    }
}

/// A setting the simulator cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("frame rate {0} is not a number between 0 (exclusive) and {MAX_FPS}")]
    Fps(f64),
    #[error("fragment payload {0} is not between 1 and {MAX_FRAGMENT_PAYLOAD} bytes")]
    FragmentPayload(usize),
    #[error(
        "pattern size {width}x{height} is not within 1x1 and {MAX_PATTERN_DIMENSION}x{MAX_PATTERN_DIMENSION}"
    )]
    PatternSize { width: u32, height: u32 },
    #[error("pattern quality {0} is not between 1 and 100")]
    Quality(u8),
    #[error("fault settings: {0}")]
    Faults(String),
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    #[error("resizing every {0} frames needs the test pattern (and more than 0 frames)")]
    Resize(u64),
    #[error("{0} bytes of filler is more than the {MAX_FILLER} allowed")]
    Filler(usize),
}

impl SimulatorConfig {
    /// Checks every setting, so that a bad flag is reported before anything
    /// is bound (and so that nothing later can panic on it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.fps > 0.0 && self.fps <= MAX_FPS) {
            return Err(ConfigError::Fps(self.fps));
        }
        if !(1..=MAX_FRAGMENT_PAYLOAD).contains(&self.fragment_payload) {
            return Err(ConfigError::FragmentPayload(self.fragment_payload));
        }
        if let FrameSource::Pattern {
            width,
            height,
            quality,
            ..
        } = self.source
        {
            let valid = 1..=MAX_PATTERN_DIMENSION;
            if !valid.contains(&width) || !valid.contains(&height) {
                return Err(ConfigError::PatternSize { width, height });
            }
            if !(1..=100).contains(&quality) {
                return Err(ConfigError::Quality(quality));
            }
        }
        self.faults.validate().map_err(ConfigError::Faults)?;
        if self.press_every == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration("the button press interval"));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("the idle timeout"));
        }
        if self.flood == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration("the flood"));
        }
        if self.filler > MAX_FILLER {
            return Err(ConfigError::Filler(self.filler));
        }
        if let Some(every) = self.resize_every {
            if every == 0 || !matches!(self.source, FrameSource::Pattern { .. }) {
                return Err(ConfigError::Resize(every));
            }
        }
        Ok(())
    }

    /// Time between frames; only meaningful for a validated config.
    fn frame_period(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / self.fps).unwrap_or(Duration::from_secs(1))
    }
}

/// What the simulated scope did, returned when it shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimulatorStats {
    /// Frames sent (including ones whose fragments were all "lost").
    pub frames_sent: u64,
    /// Genuine fragment datagrams sent, duplicates included.
    pub fragments_sent: u64,
    pub heartbeats: u64,
    pub stops: u64,
    /// Times streaming stopped because heartbeats ceased.
    pub idle_timeouts: u64,
    /// Valid button polls answered.
    pub button_polls: u64,
    /// Valid button polls left unanswered (`silent_button`).
    pub button_polls_unanswered: u64,
    /// Simulated button presses.
    pub presses: u64,
    /// Datagrams on either port that were neither a command nor a poll.
    pub ignored_datagrams: u64,
    pub fragments_lost: u64,
    pub fragments_duplicated: u64,
    pub fragments_reordered: u64,
    pub garbage_sent: u64,
    /// Pairs of frames whose fragments were sent interleaved.
    pub frames_interleaved: u64,
    /// Junk datagrams the flood thread sent.
    pub flood_sent: u64,
    /// Datagrams the OS refused to send.
    pub send_errors: u64,
}

/// A simulated scope with both ports bound, ready to [`run`](Simulator::run).
#[derive(Debug)]
pub struct Simulator {
    config: SimulatorConfig,
    video: UdpSocket,
    control: UdpSocket,
    video_addr: SocketAddr,
    control_addr: SocketAddr,
    frames: FrameStore,
    /// A second handle on the video socket for the flood thread, if any.
    flood_socket: Option<std::net::UdpSocket>,
}

impl Simulator {
    /// Validates the config, loads the frame source and binds both ports.
    /// Errors name the address that could not be bound or the file that
    /// could not be used.
    pub async fn bind(config: SimulatorConfig) -> anyhow::Result<Simulator> {
        config.validate()?;
        let frames = FrameStore::load(&config.source, config.resize_every)?;
        let (video, video_addr) = bind_udp(config.bind, config.video_port, "video").await?;
        let (control, control_addr) = bind_udp(config.bind, config.control_port, "control").await?;
        // The flood must come from the scope's own address and port, or a
        // bridge would drop it unread as foreign; hence a clone of the socket.
        let flood_socket = match config.flood {
            Some(_) => Some(clone_socket(&video).context("cannot share the video socket")?),
            None => None,
        };
        Ok(Simulator {
            config,
            video,
            control,
            video_addr,
            control_addr,
            frames,
            flood_socket,
        })
    }

    /// The bound video address (the real port if `video_port` was 0).
    pub fn local_video_addr(&self) -> SocketAddr {
        self.video_addr
    }

    /// The bound control address (the real port if `control_port` was 0).
    pub fn local_control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// Serves both ports until `shutdown` resolves, then returns the stats.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<SimulatorStats> {
        tracing::info!(
            "simulated scope ready: video {}, control {}, {}",
            self.video_addr,
            self.control_addr,
            self.frames.describe()
        );
        let scope = scope::Scope::new(
            self.config,
            self.video,
            self.control,
            self.frames,
            self.flood_socket,
        );
        Ok(scope.run(shutdown).await)
    }
}

/// Binds the ports and runs the simulated scope until `shutdown` resolves.
pub async fn run(
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<SimulatorStats> {
    Simulator::bind(config).await?.run(shutdown).await
}

/// Binds `bind` with the two ports and plays `timeline` back (see [`replay`]) until
/// `shutdown` resolves.
pub async fn replay(
    bind: IpAddr,
    video_port: u16,
    control_port: u16,
    timeline: replay::Timeline,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<replay::ReplayStats> {
    let (video, video_addr) = bind_udp(bind, video_port, "video").await?;
    let (control, control_addr) = bind_udp(bind, control_port, "control").await?;
    tracing::info!("replaying scope ready: video {video_addr}, control {control_addr}");
    Ok(replay::run_replay(timeline, video, control, idle_timeout, shutdown).await)
}

/// The size the test pattern switches to with
/// [`SimulatorConfig::resize_every`]: half of each side, rounded down to an
/// even number, at least 8.
pub fn alternate_size(width: u32, height: u32) -> (u32, u32) {
    let half = |side: u32| ((side / 2) & !1).max(8);
    (half(width), half(height))
}

/// A second std handle on the same socket (the same file description, so
/// it is non-blocking too).
fn clone_socket(socket: &UdpSocket) -> std::io::Result<std::net::UdpSocket> {
    use std::os::fd::AsFd;
    Ok(std::net::UdpSocket::from(
        socket.as_fd().try_clone_to_owned()?,
    ))
}

async fn bind_udp(ip: IpAddr, port: u16, what: &str) -> anyhow::Result<(UdpSocket, SocketAddr)> {
    let wanted = SocketAddr::new(ip, port);
    let socket = UdpSocket::bind(wanted)
        .await
        .with_context(|| format!("cannot bind the simulated scope's {what} port {wanted}"))?;
    let bound = socket
        .local_addr()
        .with_context(|| format!("cannot read the address of the {what} socket"))?;
    Ok((socket, bound))
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
