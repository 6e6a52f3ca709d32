//! The video port: heartbeats out, fragments in, complete frames onward.

use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use super::{LinkConfig, MAX_DATAGRAM};
use crate::scope::health::{Health, HealthMonitor};
use crate::scope::protocol::{Fragment, VideoCommand};
use crate::scope::reassembly::{CompleteFrame, Reassembler};
use crate::stats::{Stats, bump};

/// How often in-flight frames are checked for expiry and the link for stalls.
const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_millis(100);

/// Everything the video task needs, bundled so the call site stays readable.
pub struct VideoLink<'a, F: FnMut(CompleteFrame, Instant) -> Option<Vec<u8>>> {
    pub config: &'a LinkConfig,
    pub socket: UdpSocket,
    pub reassembler: Reassembler,
    /// Gets every complete frame and the moment it was completed; may hand back the
    /// buffer of an older frame it dropped instead (a newer one replaced it), for reuse.
    pub on_frame: F,
    /// Buffers of frames the frame path is done with, for reuse.
    pub recycled: Receiver<Vec<u8>>,
    pub stats: &'a Stats,
}

/// Logs a kind of bad packet loudly the first time only; the summary counts the rest.
#[derive(Default)]
struct FirstTime {
    foreign: bool,
    malformed: bool,
    send_failed: bool,
}

impl<F: FnMut(CompleteFrame, Instant) -> Option<Vec<u8>>> VideoLink<'_, F> {
    /// Runs until `shutdown` turns true, then sends the stop packet.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut heartbeat = interval(self.config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut housekeeping = interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut health = HealthMonitor::new(self.config.stall_timeout);
        let mut first = FirstTime::default();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        info!(scope = %self.config.video, "waiting for video from the scope");
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = heartbeat.tick() => self.send(VideoCommand::Heartbeat, &mut first).await,
                _ = housekeeping.tick() => self.housekeeping(&mut health),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.on_datagram(&buf[..len], from, &mut health, &mut first),
                    Err(e) => {
                        debug!("video socket receive error: {e}");
                        tokio::time::sleep(HOUSEKEEPING).await;
                    }
                },
            }
        }
        self.send(VideoCommand::Stop, &mut first).await;
        info!("sent stop to the scope");
    }

    async fn send(&self, command: VideoCommand, first: &mut FirstTime) {
        match self
            .socket
            .send_to(&command.to_bytes(), self.config.video)
            .await
        {
            Ok(_) if first.send_failed => {
                first.send_failed = false;
                info!("the scope's address is reachable again");
            }
            Ok(_) => {}
            Err(e) if !first.send_failed => {
                first.send_failed = true;
                warn!(
                    "cannot send to the scope at {}: {e}; is it plugged in and \
                     does its interface have an address? Retrying.",
                    self.config.video
                );
            }
            Err(e) => debug!("send to scope failed again: {e}"),
        }
    }

    fn housekeeping(&mut self, health: &mut HealthMonitor) {
        let now = Instant::now();
        self.reassembler.expire(now);
        self.stats.set_reassembly_drops(self.reassembler.drops());
        if health.on_tick(now) == Some(Health::Silent) {
            warn!(
                "no video from the scope for {:.1} s; still sending heartbeats",
                self.config.stall_timeout.as_secs_f64()
            );
        }
        while let Ok(buffer) = self.recycled.try_recv() {
            self.reassembler.recycle(buffer);
        }
    }

    fn on_datagram(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        health: &mut HealthMonitor,
        first: &mut FirstTime,
    ) {
        if from != self.config.video {
            bump(&self.stats.foreign);
            if !std::mem::replace(&mut first.foreign, true) {
                warn!(
                    "ignoring packets from {from}: only the scope at {} is accepted",
                    self.config.video
                );
            }
            return;
        }
        bump(&self.stats.datagrams);
        let fragment = match Fragment::parse(datagram) {
            Ok(fragment) => fragment,
            Err(e) => {
                bump(&self.stats.malformed);
                if !std::mem::replace(&mut first.malformed, true) {
                    warn!(
                        "ignoring a malformed packet from the scope ({e}); further ones are counted in the summary"
                    );
                } else {
                    debug!("malformed video packet: {e}");
                }
                return;
            }
        };
        let now = Instant::now();
        let was = health.state();
        if health.on_packet(now).is_some() {
            if was == Health::Waiting {
                info!("the scope is streaming");
            } else {
                // It may have rebooted and restarted its frame ids.
                self.reassembler.reset_stream();
                info!("video from the scope is back");
            }
        }
        if let Some(frame) = self.reassembler.push(&fragment, now) {
            bump(&self.stats.frames_complete);
            if let Some(buffer) = (self.on_frame)(frame, Instant::now()) {
                self.reassembler.recycle(buffer);
            }
        }
    }
}
