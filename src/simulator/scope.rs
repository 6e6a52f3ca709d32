//! The simulated scope's event loop: both ports, the frame clock, the
//! button clock and the idle timeout, in one task.
//!
//! One task with `select!` keeps the state (who is the client, are we
//! streaming, the button counter) in plain fields without locks, and lets
//! the caller's shutdown future be neither `Send` nor `'static`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval, interval_at, sleep_until};

use super::faults::{FaultInjector, Outgoing};
use super::frames::FrameStore;
use super::variants::with_filler;
use super::{SimulatorConfig, SimulatorStats};
use crate::scope::protocol::video::fragment_frame;
use crate::scope::protocol::{ButtonAnswer, ButtonRequest, VideoCommand};

/// Big enough for any command or poll; longer junk is truncated, which is fine.
const RECEIVE_BUFFER: usize = 2048;

pub(super) struct Scope {
    config: SimulatorConfig,
    video: UdpSocket,
    control: UdpSocket,
    frames: FrameStore,
    faults: FaultInjector,
    stats: SimulatorStats,
    /// Where frames go: the sender of the most recent heartbeat.
    client: Option<SocketAddr>,
    streaming: bool,
    last_heartbeat: Instant,
    /// Set once the frame limit has been logged, so it is logged once.
    limit_logged: bool,
    /// The video socket for the flood thread, until the flood starts.
    flood_socket: Option<std::net::UdpSocket>,
    flood: FloodHandle,
    /// Fell silent mid-frame (see `vanish_mid_frame_after`); deaf and mute.
    vanished: bool,
}

/// What the scope shares with its flood thread.
#[derive(Default, Clone)]
struct FloodHandle {
    sent: Arc<AtomicU64>,
    /// Ends the flood early when the scope shuts down or vanishes.
    cancelled: Arc<AtomicBool>,
}

impl Scope {
    pub(super) fn new(
        config: SimulatorConfig,
        video: UdpSocket,
        control: UdpSocket,
        frames: FrameStore,
        flood_socket: Option<std::net::UdpSocket>,
    ) -> Self {
        let faults = FaultInjector::new(config.faults, config.seed);
        Scope {
            config,
            video,
            control,
            frames,
            faults,
            stats: SimulatorStats::default(),
            client: None,
            streaming: false,
            last_heartbeat: Instant::now(),
            limit_logged: false,
            flood_socket,
            flood: FloodHandle::default(),
            vanished: false,
        }
    }

    pub(super) async fn run(mut self, shutdown: impl Future<Output = ()>) -> SimulatorStats {
        let mut shutdown = pin!(shutdown);
        let mut frame_clock = interval(self.config.frame_period());
        frame_clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut press_clock = self.config.press_every.map(|period| {
            let mut clock = interval_at(Instant::now() + period, period);
            clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
            clock
        });
        let mut video_buf = [0u8; RECEIVE_BUFFER];
        let mut control_buf = [0u8; RECEIVE_BUFFER];
        loop {
            let idle_deadline = self.last_heartbeat + self.config.idle_timeout;
            let may_send = self.streaming && !self.frame_limit_reached();
            tokio::select! {
                biased;
                // Commands already queued (a bridge's parting stop packet) are
                // handled before shutting down; clients send only a few a second.
                received = self.video.recv_from(&mut video_buf) => match received {
                    Ok((len, from)) => self.on_video_datagram(&video_buf[..len], from, &mut frame_clock),
                    Err(error) => tracing::debug!("video port receive error: {error}"),
                },
                () = &mut shutdown => break,
                received = self.control.recv_from(&mut control_buf) => match received {
                    Ok((len, from)) => self.on_control_datagram(&control_buf[..len], from).await,
                    Err(error) => tracing::debug!("control port receive error: {error}"),
                },
                () = next_tick(&mut press_clock) => self.press_button(),
                () = sleep_until(idle_deadline), if self.streaming => self.stop_for_idleness(),
                _ = frame_clock.tick(), if may_send => self.send_next_frame().await,
            }
        }
        self.finish()
    }

    fn on_video_datagram(&mut self, datagram: &[u8], from: SocketAddr, frame_clock: &mut Interval) {
        if self.vanished {
            return;
        }
        match VideoCommand::parse(datagram) {
            Ok(VideoCommand::Heartbeat) => self.on_heartbeat(from, frame_clock),
            Ok(VideoCommand::Stop) => self.on_stop(from),
            Err(error) => {
                self.stats.ignored_datagrams += 1;
                tracing::debug!(
                    "ignoring {}-byte datagram on the video port from {from}: {error}",
                    datagram.len()
                );
            }
        }
    }

    fn on_heartbeat(&mut self, from: SocketAddr, frame_clock: &mut Interval) {
        self.stats.heartbeats += 1;
        self.last_heartbeat = Instant::now();
        if self.streaming && self.client == Some(from) {
            return;
        }
        tracing::info!(
            "client {from} connected, streaming {} at {} fps",
            self.frames.describe(),
            self.config.fps
        );
        self.client = Some(from);
        self.streaming = true;
        frame_clock.reset_immediately();
        self.start_flood_once(from);
    }

    /// Starts the flood thread for the first client, if a flood is configured.
    fn start_flood_once(&mut self, client: SocketAddr) {
        let (Some(socket), Some(length)) = (self.flood_socket.take(), self.config.flood) else {
            return;
        };
        let flood = self.flood.clone();
        let injector = FaultInjector::new(Default::default(), self.config.seed ^ 0xF100D);
        let model = fragment_frame(&[0x5A; 3000], 0, self.config.fragment_payload)[0].clone();
        let spawned = std::thread::Builder::new()
            .name("scope-flood".into())
            .spawn(move || run_flood(socket, client, length, injector, &model, &flood));
        if let Err(error) = spawned {
            tracing::warn!("cannot start the flood: {error}");
        }
    }

    fn on_stop(&mut self, from: SocketAddr) {
        self.stats.stops += 1;
        if self.streaming {
            tracing::info!("stop received from {from}, streaming stopped");
        } else {
            tracing::debug!("stop received from {from} while not streaming");
        }
        self.streaming = false;
    }

    fn stop_for_idleness(&mut self) {
        self.stats.idle_timeouts += 1;
        self.streaming = false;
        tracing::info!(
            "no heartbeat for {:?}, streaming stopped",
            self.config.idle_timeout
        );
    }

    async fn on_control_datagram(&mut self, datagram: &[u8], from: SocketAddr) {
        if self.vanished {
            return;
        }
        let request = match ButtonRequest::parse(datagram) {
            Ok(request) => request,
            Err(error) => {
                self.stats.ignored_datagrams += 1;
                tracing::debug!(
                    "ignoring {}-byte datagram on the control port from {from}: {error}",
                    datagram.len()
                );
                return;
            }
        };
        if self.config.silent_button {
            self.stats.button_polls_unanswered += 1;
            return;
        }
        self.stats.button_polls += 1;
        let answer = ButtonAnswer {
            request: request.counter,
            presses: self.button_counter(),
        };
        if let Err(error) = self.control.send_to(&answer.to_bytes(), from).await {
            self.stats.send_errors += 1;
            tracing::debug!("cannot answer the button poll from {from}: {error}");
        }
    }

    /// What the scope reports: the start value plus every press, wrapping.
    fn button_counter(&self) -> u16 {
        self.config
            .initial_presses
            .wrapping_add(self.stats.presses as u16)
    }

    fn press_button(&mut self) {
        self.stats.presses += 1;
        tracing::debug!("button pressed, counter now {}", self.button_counter());
    }

    fn frame_limit_reached(&self) -> bool {
        self.config
            .max_frames
            .is_some_and(|limit| self.stats.frames_sent >= limit)
    }

    /// Sends the next frame's fragments back to back, with faults applied.
    async fn send_next_frame(&mut self) {
        let Some(client) = self.client else {
            return;
        };
        let number = self.stats.frames_sent;
        let Some(fragments) = self.fragments_of(number).await else {
            return;
        };
        let vanish_now = self.config.vanish_mid_frame_after == Some(number);
        let (outgoing, sent_frames) = if vanish_now {
            let count = fragments.len();
            let half: Vec<Vec<u8>> = fragments.into_iter().take(count.div_ceil(2)).collect();
            tracing::info!(
                "vanishing mid-frame: sent {} of the {count} fragments of frame {number}, \
                 silent from now on",
                half.len()
            );
            self.vanished = true;
            self.streaming = false;
            self.flood.cancelled.store(true, Ordering::Relaxed);
            (self.faults.apply(half), 1)
        } else if self.may_interleave(number) && self.faults.interleave_next() {
            let Some(next) = self.fragments_of(number + 1).await else {
                return;
            };
            self.stats.frames_interleaved += 1;
            (self.faults.apply_interleaved(fragments, next), 2)
        } else {
            (self.faults.apply(fragments), 1)
        };
        for outgoing in outgoing {
            if let Outgoing::Fragment(_) = outgoing {
                self.stats.fragments_sent += 1;
            }
            if let Err(error) = self.video.send_to(outgoing.bytes(), client).await {
                self.stats.send_errors += 1;
                tracing::debug!("cannot send to {client}: {error}");
            }
        }
        self.stats.frames_sent += sent_frames;
        self.log_frame_limit_once();
    }

    /// The fragments of frame `number`; `None` (logged) if it could not be made.
    async fn fragments_of(&self, number: u64) -> Option<Vec<Vec<u8>>> {
        let Some(jpeg) = self.frames.frame(number).await else {
            tracing::warn!("frame {number} could not be produced, skipped");
            return None;
        };
        let id = self.config.frame_ids.id(number, self.config.seed);
        let payload = self.config.fragment_payload;
        Some(match self.config.filler {
            0 => fragment_frame(&jpeg, id, payload),
            filler => fragment_frame(&with_filler(&jpeg, filler), id, payload),
        })
    }

    /// A pair starting at `number` may be sent only if both frames are
    /// ordinary: within the frame limit and not the one to vanish in.
    fn may_interleave(&self, number: u64) -> bool {
        let within_limit = self
            .config
            .max_frames
            .is_none_or(|limit| number + 2 <= limit);
        let vanishing = self
            .config
            .vanish_mid_frame_after
            .is_some_and(|at| at == number + 1);
        within_limit && !vanishing
    }

    fn log_frame_limit_once(&mut self) {
        if self.frame_limit_reached() && !self.limit_logged {
            self.limit_logged = true;
            tracing::info!(
                "sent {} frames, the configured limit; sending no more",
                self.stats.frames_sent
            );
        }
    }

    fn finish(mut self) -> SimulatorStats {
        let counts = self.faults.counts();
        self.stats.fragments_lost = counts.lost;
        self.stats.fragments_duplicated = counts.duplicated;
        self.stats.fragments_reordered = counts.reordered;
        self.stats.garbage_sent = counts.garbage;
        self.flood.cancelled.store(true, Ordering::Relaxed);
        self.stats.flood_sent = self.flood.sent.load(Ordering::Relaxed);
        tracing::info!("simulated scope shut down: {:?}", self.stats);
        self.stats
    }
}

/// Sends junk to `client` as fast as the socket takes it, for `length` or
/// until cancelled, then logs how much. A pool of junk is made first so
/// that the loop does nothing but send.
fn run_flood(
    socket: std::net::UdpSocket,
    client: SocketAddr,
    length: Duration,
    mut injector: FaultInjector,
    model: &[u8],
    flood: &FloodHandle,
) {
    let pool: Vec<Vec<u8>> = (0..256).map(|_| injector.flood_datagram(model)).collect();
    tracing::info!("flood started: junk to {client} for {length:?}");
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    loop {
        for datagram in &pool {
            match socket.send_to(datagram, client) {
                Ok(_) => sent += 1,
                // The socket is non-blocking (it is shared with the runtime).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                // E.g. refused: the client is gone for now; keep going.
                Err(_) => {}
            }
        }
        flood.sent.store(sent, Ordering::Relaxed);
        if started.elapsed() >= length || flood.cancelled.load(Ordering::Relaxed) {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "flood over: {sent} junk datagrams in {secs:.1} s ({:.0}/s)",
        sent as f64 / secs.max(1e-3)
    );
}

/// Waits for the next tick of an optional clock; never resolves without one.
async fn next_tick(clock: &mut Option<Interval>) {
    match clock {
        Some(clock) => {
            clock.tick().await;
        }
        None => std::future::pending().await,
    }
}
