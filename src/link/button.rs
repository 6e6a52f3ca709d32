//! The command port: poll the snapshot button, report presses.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use super::{BUTTON_SILENCE, LinkConfig};
use crate::scope::button::ButtonTracker;
use crate::scope::health::{Health, HealthMonitor};
use crate::scope::protocol::ButtonAnswer;
use crate::stats::{Stats, bump};

pub struct ButtonLink<'a, F: FnMut(u32)> {
    pub config: &'a LinkConfig,
    pub socket: UdpSocket,
    pub tracker: ButtonTracker,
    pub stats: &'a Stats,
    /// Called with the number of new presses.
    pub on_press: F,
}

impl<F: FnMut(u32)> ButtonLink<'_, F> {
    /// Polls until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut poll = interval(self.config.button_poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut health = HealthMonitor::new(BUTTON_SILENCE);
        let mut never_answered = NeverAnswered::new(Instant::now());
        let mut send_failed = false;
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = poll.tick() => {
                    self.on_tick(&mut health);
                    if never_answered.on_tick(health.state(), Instant::now()) {
                        warn!(
                            "the scope has not answered a button poll at {} in {} s: its \
                             snapshot button does nothing (some models do not answer; video \
                             is not affected). Still polling.",
                            self.config.control,
                            BUTTON_SILENCE.as_secs()
                        );
                    }
                    self.poll(&mut send_failed).await;
                }
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.on_datagram(&buf[..len], from, &mut health),
                    Err(e) => debug!("button socket receive error: {e}"),
                },
            }
        }
    }

    async fn poll(&mut self, send_failed: &mut bool) {
        let request = self.tracker.next_request();
        let result = self
            .socket
            .send_to(&request.to_bytes(), self.config.control)
            .await;
        match result {
            Err(e) if !*send_failed => {
                *send_failed = true;
                debug!("cannot poll the button at {}: {e}", self.config.control);
            }
            Ok(_) => *send_failed = false,
            Err(_) => {}
        }
    }

    fn on_tick(&mut self, health: &mut HealthMonitor) {
        if health.on_tick(Instant::now()) == Some(Health::Silent) {
            warn!("the scope stopped answering button polls; the next answer starts a new count");
            self.tracker.link_lost();
        }
    }

    fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr, health: &mut HealthMonitor) {
        if from != self.config.control {
            bump(&self.stats.foreign);
            debug!("ignoring a packet from {from} on the button socket");
            return;
        }
        let answer = match ButtonAnswer::parse(datagram) {
            Ok(answer) => answer,
            Err(e) => {
                bump(&self.stats.malformed);
                debug!("ignoring a malformed button answer: {e}");
                return;
            }
        };
        let was = health.state();
        if health.on_packet(Instant::now()).is_some() {
            if was == Health::Waiting {
                info!("the scope answers button polls");
            } else {
                info!("the scope answers button polls again");
            }
        }
        let presses = self.tracker.on_answer(answer);
        if presses > 0 {
            self.stats
                .presses
                .fetch_add(u64::from(presses), std::sync::atomic::Ordering::Relaxed);
            info!(
                "snapshot button pressed{}",
                if presses > 1 {
                    format!(" {presses} times")
                } else {
                    String::new()
                }
            );
            (self.on_press)(presses);
        }
    }
}

/// Says once that the button port never answered: a scope model whose button port is
/// silent still streams video, and its button then does nothing.
#[derive(Debug)]
struct NeverAnswered {
    since: Instant,
    said: bool,
}

impl NeverAnswered {
    fn new(now: Instant) -> Self {
        NeverAnswered {
            since: now,
            said: false,
        }
    }

    /// True once, when nothing has answered for [`BUTTON_SILENCE`] since the start.
    fn on_tick(&mut self, state: Health, now: Instant) -> bool {
        if self.said || state != Health::Waiting || now - self.since < BUTTON_SILENCE {
            return false;
        }
        self.said = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_that_never_answers_is_reported_once() {
        let t0 = Instant::now();
        let mut n = NeverAnswered::new(t0);
        assert!(!n.on_tick(Health::Waiting, t0 + BUTTON_SILENCE / 2));
        assert!(n.on_tick(Health::Waiting, t0 + BUTTON_SILENCE));
        for i in 1..100 {
            assert!(!n.on_tick(Health::Waiting, t0 + BUTTON_SILENCE * i));
        }
        let mut answered = NeverAnswered::new(t0);
        assert!(!answered.on_tick(Health::Alive, t0 + BUTTON_SILENCE * 2));
        assert!(!answered.on_tick(Health::Silent, t0 + BUTTON_SILENCE * 3));
    }
}
