//! The simulated scope's event loop: both ports, the frame clock, the
//! button clock and the idle timeout, in one task.
//!
//! One task with `select!` keeps the state (who is the client, are we
//! streaming, the button counter) in plain fields without locks, and lets
//! the caller's shutdown future be neither `Send` nor `'static`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;

use tokio::net::UdpSocket;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval, interval_at, sleep_until};

use super::faults::{FaultInjector, Outgoing};
use super::frames::FrameStore;
use super::{SimulatorConfig, SimulatorStats};
use crate::protocol::video::fragment_frame;
use crate::protocol::{ButtonAnswer, ButtonRequest, VideoCommand};

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
}

impl Scope {
    pub(super) fn new(
        config: SimulatorConfig,
        video: UdpSocket,
        control: UdpSocket,
        frames: FrameStore,
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
        let Some(jpeg) = self.frames.frame(number).await else {
            tracing::warn!("frame {number} could not be produced, skipped");
            return;
        };
        let fragments = fragment_frame(&jpeg, frame_id(number), self.config.fragment_payload);
        for outgoing in self.faults.apply(fragments) {
            if let Outgoing::Fragment(_) = outgoing {
                self.stats.fragments_sent += 1;
            }
            if let Err(error) = self.video.send_to(outgoing.bytes(), client).await {
                self.stats.send_errors += 1;
                tracing::debug!("cannot send to {client}: {error}");
            }
        }
        self.stats.frames_sent += 1;
        self.log_frame_limit_once();
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
        tracing::info!("simulated scope shut down: {:?}", self.stats);
        self.stats
    }
}

/// The frame id in the fragment header: the frame number, wrapping at 255.
pub(super) fn frame_id(frame_number: u64) -> u8 {
    (frame_number % 256) as u8
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
