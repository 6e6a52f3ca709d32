//! A short look at the scope's video for `scopecam probe`: heartbeat the video port
//! for a couple of seconds, reassemble what comes back, and report the frame size
//! (from the JPEG header, no decoding) and the frame rate. Sends the stop packet at
//! the end, also when stopped early by a signal, so the scope does not keep streaming
//! at a socket nobody reads.
//!
//! [`VideoMeter`] is the sans-IO part (fed datagrams and clock readings);
//! [`measure_video`] owns the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::time::{MissedTickBehavior, interval};
use tracing::debug;

use super::MAX_DATAGRAM;
use super::socket::{SocketError, open_udp};
use crate::scope::protocol::{Fragment, VideoCommand};
use crate::scope::reassembly::{Reassembler, ReassemblyLimits};

/// Distinct frame sizes remembered; a scope sends one, a few more say "unstable".
const MAX_SIZES: usize = 8;

/// What the scope's video looked like.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoMeasurement {
    /// How long heartbeats were sent and fragments gathered.
    pub listened: Duration,
    /// Complete frames reassembled.
    pub frames: u64,
    /// From the first heartbeat to the first complete frame.
    pub first_frame_after: Option<Duration>,
    /// Frames per second between the first and the last complete frame (needs two).
    pub fps: Option<f64>,
    /// The most common frame size, from the JPEG headers.
    pub size: Option<(u32, u32)>,
    /// Every size seen with its count, most common first (at most 8 sizes).
    pub sizes: Vec<((u32, u32), u64)>,
    /// Mean JPEG size of the complete frames, in bytes.
    pub mean_frame_bytes: Option<u64>,
    /// Frames the reassembler gave up on (lost fragments, garbage).
    pub dropped: u64,
    /// Datagrams from the scope that were not fragments.
    pub malformed: u64,
    /// Datagrams from anyone but the scope's video port.
    pub foreign: u64,
}

/// Sans-IO: counts frames, sizes and timing from the datagrams it is fed.
#[derive(Debug)]
pub struct VideoMeter {
    scope: SocketAddr,
    reassembler: Reassembler,
    started: Instant,
    first_frame: Option<Instant>,
    last_frame: Option<Instant>,
    frames: u64,
    frame_bytes: u64,
    sizes: Vec<((u32, u32), u64)>,
    malformed: u64,
    foreign: u64,
}

impl VideoMeter {
    pub fn new(scope: SocketAddr, limits: ReassemblyLimits, started: Instant) -> Self {
        VideoMeter {
            scope,
            reassembler: Reassembler::new(limits),
            started,
            first_frame: None,
            last_frame: None,
            frames: 0,
            frame_bytes: 0,
            sizes: Vec::new(),
            malformed: 0,
            foreign: 0,
        }
    }

    /// One datagram received on the video socket.
    pub fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        if from != self.scope {
            self.foreign += 1;
            return;
        }
        let Ok(fragment) = Fragment::parse(datagram) else {
            self.malformed += 1;
            return;
        };
        let Some(frame) = self.reassembler.push(&fragment, now) else {
            return;
        };
        self.frames += 1;
        self.frame_bytes += frame.jpeg.len() as u64;
        self.first_frame.get_or_insert(now);
        self.last_frame = Some(now);
        if let Some(size) = crate::jpeg::dimensions(&frame.jpeg) {
            if let Some((_, count)) = self.sizes.iter_mut().find(|(s, _)| *s == size) {
                *count += 1;
            } else if self.sizes.len() < MAX_SIZES {
                self.sizes.push((size, 1));
            }
        }
        self.reassembler.recycle(frame.jpeg);
    }

    /// Housekeeping: frames incomplete for too long are dropped.
    pub fn on_tick(&mut self, now: Instant) {
        self.reassembler.expire(now);
    }

    /// The figures so far; `now` ends the listening time.
    pub fn report(&self, now: Instant) -> VideoMeasurement {
        let mut sizes = self.sizes.clone();
        sizes.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
        let fps = match (self.first_frame, self.last_frame) {
            (Some(first), Some(last)) if self.frames >= 2 && last > first => {
                Some((self.frames - 1) as f64 / (last - first).as_secs_f64())
            }
            _ => None,
        };
        VideoMeasurement {
            listened: now.saturating_duration_since(self.started),
            frames: self.frames,
            first_frame_after: self.first_frame.map(|t| t - self.started),
            fps,
            size: sizes.first().map(|(s, _)| *s),
            sizes,
            mean_frame_bytes: self.frame_bytes.checked_div(self.frames),
            dropped: self.reassembler.drops().total(),
            malformed: self.malformed,
            foreign: self.foreign,
        }
    }
}

/// Heartbeats the scope's video port (`scope`) every `heartbeat` for `duration` (or
/// until `shutdown` turns true), measures what comes back, then sends the stop packet.
pub async fn measure_video(
    scope: SocketAddr,
    interface: Option<&str>,
    duration: Duration,
    heartbeat: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<VideoMeasurement, SocketError> {
    let socket = open_udp(interface)?;
    let mut meter = VideoMeter::new(scope, ReassemblyLimits::default(), Instant::now());
    let mut beat = interval(heartbeat);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut housekeeping = interval(Duration::from_millis(100));
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let end = tokio::time::sleep(duration);
    tokio::pin!(end);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            _ = &mut end => break,
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = beat.tick() => {
                if let Err(e) = socket.send_to(&VideoCommand::Heartbeat.to_bytes(), scope).await {
                    debug!("heartbeat to {scope} not sent: {e}");
                }
            }
            _ = housekeeping.tick() => meter.on_tick(Instant::now()),
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => meter.on_datagram(&buf[..len], from, Instant::now()),
                Err(e) => debug!("video receive error: {e}"),
            },
        }
    }
    let report = meter.report(Instant::now());
    if let Err(e) = socket.send_to(&VideoCommand::Stop.to_bytes(), scope).await {
        debug!("stop packet to {scope} not sent: {e}");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::protocol::{FragmentHeader, FragmentKind, video::FORMAT_MJPEG};

    fn jpeg(width: u16, height: u16) -> Vec<u8> {
        // SOI, a baseline SOF0 with one component, EOI: enough for jpeg::dimensions.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
        j.extend_from_slice(&height.to_be_bytes());
        j.extend_from_slice(&width.to_be_bytes());
        j.extend_from_slice(&[0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9]);
        j
    }

    fn datagram(frame_id: u8, jpeg: &[u8]) -> Vec<u8> {
        let header = FragmentHeader {
            kind: FragmentKind::Last,
            format: FORMAT_MJPEG,
            frame_id,
            frame_size: jpeg.len() as u32,
            index: 0,
            payload_len: jpeg.len() as u16,
        };
        let mut d = header.to_bytes().to_vec();
        d.extend_from_slice(jpeg);
        d
    }

    #[test]
    fn counts_frames_sizes_and_rate() {
        let scope: SocketAddr = "127.0.0.1:8030".parse().unwrap();
        let t0 = Instant::now();
        let mut m = VideoMeter::new(scope, ReassemblyLimits::default(), t0);
        let step = Duration::from_millis(100);
        for i in 0..11u8 {
            let (w, h) = if i == 5 { (320, 240) } else { (640, 480) };
            let at = t0 + Duration::from_millis(250) + step * u32::from(i);
            m.on_datagram(&datagram(i, &jpeg(w, h)), scope, at);
        }
        m.on_datagram(b"garbage", scope, t0);
        m.on_datagram(
            &datagram(99, &jpeg(8, 8)),
            "127.0.0.1:9".parse().unwrap(),
            t0,
        );
        let r = m.report(t0 + Duration::from_secs(2));
        assert_eq!(r.frames, 11);
        assert_eq!(r.size, Some((640, 480)));
        assert_eq!(r.sizes, vec![((640, 480), 10), ((320, 240), 1)]);
        assert!((r.fps.unwrap() - 10.0).abs() < 0.01, "{:?}", r.fps);
        assert_eq!(r.first_frame_after, Some(Duration::from_millis(250)));
        assert_eq!((r.malformed, r.foreign), (1, 1));
        assert_eq!(r.listened, Duration::from_secs(2));
    }

    #[test]
    fn nothing_received_reports_nothing() {
        let t0 = Instant::now();
        let m = VideoMeter::new(
            "127.0.0.1:8030".parse().unwrap(),
            ReassemblyLimits::default(),
            t0,
        );
        let r = m.report(t0);
        assert_eq!(
            (r.frames, r.fps, r.size, r.mean_frame_bytes),
            (0, None, None, None)
        );
    }

    #[tokio::test]
    async fn measures_the_simulator_and_stops_it() {
        use crate::simulator::testing::Running;
        use crate::simulator::{FrameSource, SimulatorConfig, Subsampling};
        let scope = Running::start(SimulatorConfig {
            video_port: 0,
            control_port: 0,
            source: FrameSource::Pattern {
                width: 320,
                height: 240,
                subsampling: Subsampling::S420,
                quality: 80,
            },
            fps: 20.0,
            ..SimulatorConfig::default()
        })
        .await;
        let video = scope.video;
        let (_keep, never) = tokio::sync::watch::channel(false);
        let r = measure_video(
            video,
            None,
            Duration::from_millis(1500),
            Duration::from_millis(500),
            never,
        )
        .await
        .unwrap();
        // Give the simulator a moment to handle the stop packet before shutting it down.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = scope.shut_down().await;
        assert_eq!(r.size, Some((320, 240)));
        assert!(r.frames >= 10, "{r:?}");
        let fps = r.fps.unwrap();
        assert!((12.0..=28.0).contains(&fps), "{fps}");
        assert_eq!(stats.stops, 1, "{stats:?}");
    }

    #[tokio::test]
    async fn a_signal_ends_the_look_early_and_still_stops_the_scope() {
        let scope = crate::simulator::testing::Running::on_free_ports().await;
        let video = scope.video;
        let (shutdown, signalled) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            shutdown.send_replace(true);
            // Keep the sender until the look is over.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let started = Instant::now();
        let r = measure_video(
            video,
            None,
            Duration::from_secs(20),
            Duration::from_millis(500),
            signalled,
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "{r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = scope.shut_down().await;
        assert_eq!(stats.stops, 1, "the stop packet was sent: {stats:?}");
    }
}
