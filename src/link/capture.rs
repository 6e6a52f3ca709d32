//! `scopecam capture`: talk to the scope as the bridge does (video heartbeats, button
//! polls) for a bounded time and write every datagram to and from it, both ports,
//! into a capture file ([`crate::capture`]).
//!
//! Its own client rather than a tap on a running bridge: the recording then needs no
//! privileges, no bridge and no camera, and shows exactly what one ordinary client
//! exchanges with the scope. Only the scope's datagrams are written (anything from
//! another address is counted and dropped). Ends at the time limit, before a datagram
//! would take the file past the size limit, or on a signal; the stop packet is sent
//! (and written) in every case, and the file is flushed whole.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::debug;

use super::MAX_DATAGRAM;
use super::measure::{VideoMeasurement, VideoMeter};
use super::socket::{SocketError, open_udp, open_video_udp};
use crate::capture::{CaptureError, CaptureWriter, Direction, Metadata, Port};
use crate::scope::protocol::{ButtonAnswer, ButtonRequest, VideoCommand};
use crate::scope::reassembly::ReassemblyLimits;

/// Whom to record, how, and for how long.
#[derive(Debug, Clone)]
pub struct CaptureTarget {
    pub scope: Ipv4Addr,
    pub video_port: u16,
    pub control_port: u16,
    pub interface: Option<String>,
    pub heartbeat: Duration,
    pub poll: Duration,
    /// Sizes the video socket's receive buffer, as the bridge's.
    pub max_frame_bytes: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop before the file would grow past this many bytes.
    pub max_bytes: u64,
}

/// Why the recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    TimeLimit,
    SizeLimit,
    Signal,
}

/// What was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureSummary {
    pub ended: Ended,
    pub recorded_for: Duration,
    /// Datagrams written: sent to the scope, and received from its video and control ports.
    pub sent: u64,
    pub video_received: u64,
    pub control_received: u64,
    /// Datagrams from other addresses, not written.
    pub foreign: u64,
    pub file_bytes: u64,
    /// The video as `scopecam probe` measures it.
    pub video: VideoMeasurement,
    /// Button answers that matched a poll.
    pub button_answers: u64,
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(transparent)]
    File(#[from] CaptureError),
}

/// The capture, its limits and counters, fed one datagram at a time.
struct Recorder<W: Write> {
    file: CaptureWriter<W>,
    max_bytes: u64,
    full: bool,
    sent: u64,
    video_received: u64,
    control_received: u64,
    foreign: u64,
}

impl<W: Write> Recorder<W> {
    /// Writes one datagram unless it would pass the size limit (then `full` is set).
    fn write(
        &mut self,
        direction: Direction,
        port: Port,
        client: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), CaptureError> {
        let size = CaptureWriter::<W>::block_size(payload.len());
        if self.file.bytes() + size > self.max_bytes {
            self.full = true;
            return Ok(());
        }
        self.file
            .write(SystemTime::now(), direction, port, client, payload)?;
        match (direction, port) {
            (Direction::ToScope, _) => self.sent += 1,
            (Direction::FromScope, Port::Video) => self.video_received += 1,
            (Direction::FromScope, Port::Control) => self.control_received += 1,
        }
        Ok(())
    }
}

/// The local IPv4 address the kernel would send to `scope` from (a connected UDP socket
/// sends nothing), so the headers in the file carry the client's real address.
fn local_address(interface: Option<&str>, scope: SocketAddr) -> Ipv4Addr {
    let socket = match open_udp(interface) {
        Ok(socket) => socket,
        Err(_) => return Ipv4Addr::UNSPECIFIED,
    };
    let std = match socket.into_std() {
        Ok(std) => std,
        Err(_) => return Ipv4Addr::UNSPECIFIED,
    };
    match std.connect(scope).and_then(|()| std.local_addr()) {
        Ok(SocketAddr::V4(local)) => *local.ip(),
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// Resolves once `shutdown` turns true (never, if its sender is gone). Its output
/// holds no lock guard, so the recording future stays `Send`.
async fn signalled(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The client side of a socket, as it appears in the file's headers.
fn client_of(socket: &UdpSocket, ip: Ipv4Addr) -> SocketAddrV4 {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    SocketAddrV4::new(ip, port)
}

/// Records the scope at `target` into `out` until a limit or `shutdown`; returns the
/// summary and the output (flushed).
pub async fn record<W: Write>(
    target: &CaptureTarget,
    out: W,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(CaptureSummary, W), RecordError> {
    let interface = target.interface.as_deref();
    let video_addr = SocketAddr::from((target.scope, target.video_port));
    let control_addr = SocketAddr::from((target.scope, target.control_port));
    let (video, _) = open_video_udp(interface, target.max_frame_bytes)?;
    let control = open_udp(interface)?;
    let local = local_address(interface, video_addr);
    let (video_client, control_client) = (client_of(&video, local), client_of(&control, local));
    let metadata = Metadata {
        scope: target.scope,
        video_port: target.video_port,
        control_port: target.control_port,
    };
    let mut rec = Recorder {
        file: CaptureWriter::new(out, metadata, interface)?,
        max_bytes: target.max_bytes,
        full: false,
        sent: 0,
        video_received: 0,
        control_received: 0,
        foreign: 0,
    };
    let started = Instant::now();
    let mut meter = VideoMeter::new(video_addr, ReassemblyLimits::default(), started);
    let mut beat = interval(target.heartbeat);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut poll = interval(target.poll);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut housekeeping = interval(Duration::from_millis(100));
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let end = tokio::time::sleep(target.duration);
    tokio::pin!(end);
    let mut counter: u16 = 0;
    let mut button_answers = 0;
    let mut video_buf = vec![0u8; MAX_DATAGRAM];
    let mut control_buf = vec![0u8; 2048];
    let ended = loop {
        if rec.full {
            break Ended::SizeLimit;
        }
        tokio::select! {
            biased;
            () = signalled(&mut shutdown) => break Ended::Signal,
            _ = &mut end => break Ended::TimeLimit,
            _ = beat.tick() => {
                let heartbeat = VideoCommand::Heartbeat.to_bytes();
                match video.send_to(&heartbeat, video_addr).await {
                    Ok(_) => rec.write(Direction::ToScope, Port::Video, video_client, &heartbeat)?,
                    Err(e) => debug!("heartbeat to {video_addr} not sent: {e}"),
                }
            }
            _ = poll.tick() => {
                let request = ButtonRequest { counter }.to_bytes();
                counter = counter.wrapping_add(1);
                match control.send_to(&request, control_addr).await {
                    Ok(_) => rec.write(Direction::ToScope, Port::Control, control_client, &request)?,
                    Err(e) => debug!("poll to {control_addr} not sent: {e}"),
                }
            }
            _ = housekeeping.tick() => meter.on_tick(Instant::now()),
            received = video.recv_from(&mut video_buf) => match received {
                Ok((len, from)) if from == video_addr => {
                    let datagram = &video_buf[..len];
                    rec.write(Direction::FromScope, Port::Video, video_client, datagram)?;
                    meter.on_datagram(datagram, from, Instant::now());
                }
                Ok(_) => rec.foreign += 1,
                Err(e) => debug!("video receive error: {e}"),
            },
            received = control.recv_from(&mut control_buf) => match received {
                Ok((len, from)) if from == control_addr => {
                    let datagram = &control_buf[..len];
                    rec.write(Direction::FromScope, Port::Control, control_client, datagram)?;
                    if ButtonAnswer::parse(datagram).is_ok() {
                        button_answers += 1;
                    }
                }
                Ok(_) => rec.foreign += 1,
                Err(e) => debug!("control receive error: {e}"),
            },
        }
    };
    let stop = VideoCommand::Stop.to_bytes();
    match video.send_to(&stop, video_addr).await {
        // Written even past the size limit: a capture should show how it ended.
        Ok(_) => {
            rec.max_bytes = u64::MAX;
            rec.write(Direction::ToScope, Port::Video, video_client, &stop)?;
        }
        Err(e) => debug!("stop packet to {video_addr} not sent: {e}"),
    }
    let now = Instant::now();
    let summary = CaptureSummary {
        ended,
        recorded_for: now - started,
        sent: rec.sent,
        video_received: rec.video_received,
        control_received: rec.control_received,
        foreign: rec.foreign,
        file_bytes: rec.file.bytes(),
        video: meter.report(now),
        button_answers,
    };
    Ok((summary, rec.file.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::read_capture;
    use crate::simulator::testing::Running;
    use crate::simulator::{FrameSource, SimulatorConfig, Subsampling};

    fn target(scope: &Running, duration: Duration, max_bytes: u64) -> CaptureTarget {
        CaptureTarget {
            scope: Ipv4Addr::LOCALHOST,
            video_port: scope.video.port(),
            control_port: scope.control.port(),
            interface: None,
            heartbeat: Duration::from_millis(500),
            poll: Duration::from_millis(100),
            max_frame_bytes: 1 << 20,
            duration,
            max_bytes,
        }
    }

    async fn small_scope() -> Running {
        Running::start(SimulatorConfig {
            video_port: 0,
            control_port: 0,
            source: FrameSource::Pattern {
                width: 160,
                height: 120,
                subsampling: Subsampling::S420,
                quality: 70,
            },
            fps: 10.0,
            ..SimulatorConfig::default()
        })
        .await
    }

    #[tokio::test]
    async fn records_both_ports_both_ways_and_stops_the_scope() {
        let scope = small_scope().await;
        let (_keep, never) = watch::channel(false);
        let t = target(&scope, Duration::from_millis(1200), 64 << 20);
        let (summary, file) = record(&t, Vec::new(), never).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = scope.shut_down().await;
        assert_eq!(summary.ended, Ended::TimeLimit);
        assert_eq!(stats.stops, 1, "{stats:?}");
        assert!(summary.video.frames >= 8, "{summary:?}");
        assert_eq!(summary.video.size, Some((160, 120)));
        assert!(summary.button_answers >= 5, "{summary:?}");
        assert_eq!(summary.file_bytes, file.len() as u64);

        let capture = read_capture(file.as_slice()).unwrap();
        let count = |d, p| capture.of(d, p).count() as u64;
        // The scope may send a frame or two between the end of the recording and the
        // stop packet's arrival; nothing it sent before is missing.
        let fragments = count(Direction::FromScope, Port::Video);
        assert!(
            fragments <= stats.fragments_sent && fragments + 6 >= stats.fragments_sent,
            "{fragments} of {}",
            stats.fragments_sent
        );
        assert_eq!(fragments, summary.video_received);
        assert_eq!(
            count(Direction::ToScope, Port::Video),
            stats.heartbeats + stats.stops
        );
        assert_eq!(count(Direction::ToScope, Port::Control), stats.button_polls);
        assert_eq!(
            count(Direction::FromScope, Port::Control),
            summary.button_answers
        );
        let last = capture.records.last().unwrap();
        assert_eq!(
            VideoCommand::parse(&last.payload),
            Ok(VideoCommand::Stop),
            "the stop packet ends the capture"
        );
        assert!(
            capture.records.windows(2).all(|w| w[0].at <= w[1].at),
            "in time order"
        );
        assert_eq!(*capture.records[0].client.ip(), Ipv4Addr::LOCALHOST);
    }

    #[tokio::test]
    async fn the_size_limit_ends_it_with_a_whole_file() {
        let scope = small_scope().await;
        let (_keep, never) = watch::channel(false);
        let limit = 20_000;
        let t = target(&scope, Duration::from_secs(20), limit);
        let started = Instant::now();
        let (summary, file) = record(&t, Vec::new(), never).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = scope.shut_down().await;
        assert_eq!(summary.ended, Ended::SizeLimit);
        assert_eq!(stats.stops, 1);
        // The stop packet's block may pass the limit, nothing else.
        let stop_block = CaptureWriter::<Vec<u8>>::block_size(24);
        assert!(file.len() as u64 <= limit + stop_block, "{}", file.len());
        assert!(file.len() as u64 > limit / 2, "{}", file.len());
        assert!(read_capture(file.as_slice()).is_ok());
    }

    #[tokio::test]
    async fn a_signal_ends_it_and_the_scope_is_stopped() {
        let scope = small_scope().await;
        let (shutdown, signalled) = watch::channel(false);
        let t = target(&scope, Duration::from_secs(20), 64 << 20);
        let task = tokio::spawn(async move { record(&t, Vec::new(), signalled).await });
        tokio::time::sleep(Duration::from_millis(400)).await;
        shutdown.send_replace(true);
        let (summary, file) = task.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = scope.shut_down().await;
        assert_eq!(summary.ended, Ended::Signal);
        assert!(summary.recorded_for < Duration::from_secs(5));
        assert_eq!(stats.stops, 1);
        assert!(read_capture(file.as_slice()).is_ok());
    }
}
