//! Talking to systemd (`Type=notify`): READY=1 once the first frame is out, STATUS= on
//! changes, WATCHDOG=1 from the frame path loop.
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every message is a no-op, so the same
//! code runs from a terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::{debug, info};

use crate::bridge::{BridgeObserver, BridgeStarted};

/// When to feed the watchdog: at most every half of systemd's timeout, the pace
/// sd_watchdog_enabled(3) recommends. Sans-IO: fed with the clock.
#[derive(Debug, Clone)]
pub struct WatchdogPacer {
    every: Duration,
    last: Option<Instant>,
}

impl WatchdogPacer {
    /// A pacer for systemd's watchdog timeout (`WATCHDOG_USEC`).
    pub fn new(timeout: Duration) -> Self {
        WatchdogPacer {
            every: timeout / 2,
            last: None,
        }
    }

    /// Whether a WATCHDOG=1 is due at `now` (and, if so, counts it as sent).
    pub fn due(&mut self, now: Instant) -> bool {
        match self.last {
            Some(at) if now.saturating_duration_since(at) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// The service's link to systemd, and the bridge's observer.
#[derive(Debug)]
pub struct Notifier {
    watchdog: Option<Mutex<WatchdogPacer>>,
    ready: AtomicBool,
    /// The last STATUS= sent (also re-sent with READY=1).
    status: Mutex<String>,
    started: OnceLock<BridgeStarted>,
    failed: AtomicBool,
}

impl Notifier {
    /// Reads `WATCHDOG_USEC`/`WATCHDOG_PID` (systemd's watchdog for this process, if any).
    pub fn from_env() -> Self {
        let watchdog = sd_notify::watchdog_enabled();
        if let Some(timeout) = watchdog {
            debug!(
                "systemd watchdog: {:.1} s, fed every {:.1} s from the frame path",
                timeout.as_secs_f64(),
                timeout.as_secs_f64() / 2.0
            );
        }
        Notifier {
            watchdog: watchdog.map(|t| Mutex::new(WatchdogPacer::new(t))),
            ready: AtomicBool::new(false),
            status: Mutex::new(String::new()),
            started: OnceLock::new(),
            failed: AtomicBool::new(false),
        }
    }

    /// What the bridge opened, once it has.
    pub fn bridge(&self) -> Option<&BridgeStarted> {
        self.started.get()
    }

    /// Whether READY=1 was sent.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Sends STATUS=`line` if it differs from the last one; logs it once.
    pub fn status(&self, line: &str) {
        {
            let mut last = self.status.lock().unwrap_or_else(|p| p.into_inner());
            if *last == line {
                return;
            }
            line.clone_into(&mut last);
        }
        debug!("status: {line}");
        self.send(&[NotifyState::Status(line)]);
    }

    /// The service ends without ever bridging (not a scope, unplugged): READY=1 first,
    /// so systemd sees a clean start and stop, not a notify service that died before
    /// it was ready (which it would count as a failure and restart).
    pub fn finish_without_bridge(&self, line: &str) {
        // Two datagrams: systemd (252) reads STOPPING=1 *instead of* READY=1 when
        // both come in one, and a unit still starting then fails with "protocol".
        self.send(&[NotifyState::Ready, NotifyState::Status(line)]);
        self.send(&[NotifyState::Stopping]);
        // systemd may see the process exit before it reads the datagram above and
        // then fails the unit with "protocol" all the same (seen on systemd 252).
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            if let Err(e) = notify_barrier(BARRIER_TIMEOUT) {
                tracing::debug!("systemd did not confirm the notifications: {e}");
            }
        }
    }

    /// The service is shutting down.
    pub fn stopping(&self, line: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(line)]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            // Once: a broken socket would fail the same way at every watchdog tick.
            if !self.failed.swap(true, Ordering::Relaxed) {
                tracing::warn!("cannot notify systemd ($NOTIFY_SOCKET): {e}");
            }
        }
    }
}

/// How long a quiet exit waits for systemd to confirm it read READY=1.
const BARRIER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `sd_notify_barrier(3)`, which the sd-notify crate lacks: sends BARRIER=1 with
/// the write end of a pipe, and waits until systemd, having processed every
/// earlier message, closes its copy (the read end then reports a hang-up).
fn notify_barrier(timeout: std::time::Duration) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let (read, write) = nix::unistd::pipe()?;
    sd_notify::notify_with_fds(&[NotifyState::Custom("BARRIER=1")], &[write.as_fd()])?;
    drop(write);
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(read.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::from(millis))? {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer to BARRIER=1",
        )),
        _ => Ok(()),
    }
}

impl BridgeObserver for Notifier {
    fn started(&self, started: &BridgeStarted) {
        // Sent with READY=1 unless the state file's first sample says more by then.
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) =
            format!("bridge started: {}", started.output);
        let _ = self.started.set(started.clone());
    }

    fn first_write(&self) {
        if self.ready.swap(true, Ordering::Relaxed) {
            return;
        }
        let status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        info!("first frame written; ready");
        if status.is_empty() {
            self.send(&[NotifyState::Ready]);
        } else {
            self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        }
    }

    fn tick(&self, now: Instant) {
        let Some(pacer) = &self.watchdog else {
            return;
        };
        let due = pacer.lock().unwrap_or_else(|p| p.into_inner()).due(now);
        if due {
            self.send(&[NotifyState::Watchdog]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn watchdog_is_fed_at_half_the_timeout_not_at_every_tick() {
        let t0 = Instant::now();
        let mut pacer = WatchdogPacer::new(10_000 * MS);
        assert!(pacer.due(t0), "the first tick feeds it");
        let fed: Vec<u32> = (1..=100)
            .map(|i| t0 + i * 200 * MS)
            .filter(|&now| pacer.due(now))
            .map(|now| (now - t0).as_millis() as u32)
            .collect();
        assert_eq!(fed, vec![5000, 10_000, 15_000, 20_000]);
    }

    #[test]
    fn a_late_tick_feeds_at_once() {
        let t0 = Instant::now();
        let mut pacer = WatchdogPacer::new(2000 * MS);
        assert!(pacer.due(t0));
        assert!(!pacer.due(t0 + 999 * MS));
        assert!(pacer.due(t0 + 4000 * MS));
        assert!(!pacer.due(t0 + 4500 * MS));
    }
}
