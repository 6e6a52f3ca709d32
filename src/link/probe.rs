//! Is there a borescope behind this interface? A read-only button poll answers that.
//!
//! Ordinary USB-Ethernet dongles share the scope's chip and USB id, so the service
//! asks before it touches anything: it sends the same SETCMD button query the button
//! link sends (read-only: it only reads the press counter) to the scope's control
//! port, re-sent every [`PROBE_RESEND`], and the first valid RETCMD from the scope's
//! address answers it. [`ProbeSession`] is the sans-IO part; [`probe_scope`] the socket.
//!
//! Also here, for `scopecam probe`: whether a bridge already runs on an interface
//! ([`bridge_state`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::time::{MissedTickBehavior, interval_at};
use tracing::debug;

use super::socket::{SocketError, open_udp};
use crate::protocol::{ButtonAnswer, ButtonRequest};
use crate::service::state::{pid_is_scopecam, read_state, state_path};

/// How often the poll is re-sent while nothing answers (UDP may drop it; the scope
/// may still be booting).
pub const PROBE_RESEND: Duration = Duration::from_millis(500);

/// How long to wait after a receive error before receiving again, so an error that
/// persists (the socket's device gone, say) cannot spin a core until the timeout.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Whom to ask, and through which interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The scope's control (button) port, e.g. 192.168.10.123:50000.
    pub scope: SocketAddr,
    /// Bind the socket to this interface (SO_BINDTODEVICE), so the question goes to
    /// the scope behind it and not to another 192.168.10.123.
    pub interface: Option<String>,
}

/// The scope answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReply {
    /// From the first poll sent to the answer.
    pub answered_after: Duration,
    /// The answer itself: `presses` is the scope's raw button counter.
    pub button: ButtonAnswer,
    /// Polls sent before the answer came (1 = the first one was answered).
    pub polls: u32,
}

/// Why the probe did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(
        "no borescope answers at {scope}{} ({polls} polls in {:.1} s){}",
        interface.as_deref().map(|i| format!(" on {i}")).unwrap_or_default(),
        waited.as_secs_f64(),
        last_send_error.as_deref().map(|e| format!("; sending failed: {e}")).unwrap_or_default()
    )]
    NoAnswer {
        scope: SocketAddr,
        interface: Option<String>,
        waited: Duration,
        polls: u32,
        /// Why the last poll could not be sent, if it could not (no address, no route).
        last_send_error: Option<String>,
    },
}

/// What [`ProbeSession::on_datagram`] made of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeInput {
    Answered(ProbeReply),
    /// From another address or port than the scope's.
    Foreign,
    /// From the scope, but not a RETCMD button answer.
    Malformed,
    /// A RETCMD for a request this session did not send.
    Stale,
}

/// Sans-IO: numbers the polls and recognises the answer to one of them.
#[derive(Debug, Clone)]
pub struct ProbeSession {
    scope: SocketAddr,
    next_counter: u16,
    polls: u32,
    started: Option<Instant>,
}

impl ProbeSession {
    pub fn new(scope: SocketAddr) -> Self {
        ProbeSession {
            scope,
            next_counter: 0,
            polls: 0,
            started: None,
        }
    }

    /// The next poll to send (counters count up from 0, as the button link's do).
    pub fn next_request(&mut self, now: Instant) -> ButtonRequest {
        self.started.get_or_insert(now);
        let request = ButtonRequest {
            counter: self.next_counter,
        };
        self.next_counter = self.next_counter.wrapping_add(1);
        self.polls += 1;
        request
    }

    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// Checks a datagram: only a RETCMD from the scope's address and port that answers
    /// one of our polls counts.
    pub fn on_datagram(&self, datagram: &[u8], from: SocketAddr, now: Instant) -> ProbeInput {
        if from != self.scope {
            return ProbeInput::Foreign;
        }
        let Ok(button) = ButtonAnswer::parse(datagram) else {
            return ProbeInput::Malformed;
        };
        // Counters sent so far are 0..polls (mod 2^16).
        let sent = self.polls.min(u32::from(u16::MAX) + 1);
        let age = u32::from(self.next_counter.wrapping_sub(button.request));
        if self.polls == 0 || age == 0 || age > sent {
            return ProbeInput::Stale;
        }
        ProbeInput::Answered(ProbeReply {
            answered_after: now.saturating_duration_since(self.started.unwrap_or(now)),
            button,
            polls: self.polls,
        })
    }
}

/// Asks the scope at `target` whether it is there, for at most `timeout`.
///
/// Read-only: the SETCMD button query. Re-sent every [`PROBE_RESEND`]; send errors
/// (no address yet, no route) are retried until the timeout and then reported.
pub async fn probe_scope(
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<ProbeReply, ProbeError> {
    let socket = open_udp(target.interface.as_deref())?;
    probe_on(&socket, target, timeout).await
}

/// The datagram socket [`probe_on`] talks through (a tokio socket; a fake in tests).
trait ProbeSocket {
    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> std::io::Result<usize>;
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)>;
}

impl ProbeSocket for tokio::net::UdpSocket {
    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        tokio::net::UdpSocket::send_to(self, datagram, to).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        tokio::net::UdpSocket::recv_from(self, buf).await
    }
}

/// [`probe_scope`] on an open socket.
async fn probe_on(
    socket: &impl ProbeSocket,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<ProbeReply, ProbeError> {
    let mut session = ProbeSession::new(target.scope);
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut resend = interval_at(started, PROBE_RESEND);
    resend.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_send_error = None;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = resend.tick() => {
                let request = session.next_request(Instant::now());
                match socket.send_to(&request.to_bytes(), target.scope).await {
                    Ok(_) => last_send_error = None,
                    Err(e) => {
                        debug!("probe poll to {} not sent: {e}", target.scope);
                        last_send_error = Some(e.to_string());
                    }
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => match session.on_datagram(&buf[..len], from, Instant::now()) {
                    ProbeInput::Answered(reply) => return Ok(reply),
                    other => debug!("probe ignores a datagram from {from}: {other:?}"),
                },
                // ICMP "port unreachable" from an earlier poll surfaces here on Linux;
                // keep polling, the scope may still be starting. Pause first, so an
                // error that persists does not make this loop spin.
                Err(e) => {
                    debug!("probe receive error: {e}");
                    let pause = tokio::time::Instant::now() + RECEIVE_ERROR_PAUSE;
                    tokio::time::sleep_until(pause.min(deadline)).await;
                }
            },
        }
    }
    Err(ProbeError::NoAnswer {
        scope: target.scope,
        interface: target.interface.clone(),
        waited: timeout,
        polls: session.polls(),
        last_send_error,
    })
}

/// Whether a bridge runs on an interface, from its state file `DIR/IFACE.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeState {
    /// No state file.
    NotRunning,
    /// A state file whose process is alive.
    Running { pid: u32, file: PathBuf },
    /// A state file left behind by a process that is gone (or unreadable).
    Stale { pid: Option<u32>, file: PathBuf },
}

/// Reads `dir/IFACE.json` and checks its `pid` with the rule `scopecam status` uses
/// ([`pid_is_scopecam`]; `proc` is normally `/proc`). A running bridge the caller cannot
/// see in /proc (hidepid) still counts as running: kill(pid, 0) answers EPERM.
pub fn bridge_state(dir: &Path, interface: &str, proc: &Path) -> BridgeState {
    let file = state_path(dir, interface);
    let pid = match read_state(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BridgeState::NotRunning,
        Err(_) => None,
        Ok(state) => Some(state.pid).filter(|&pid| pid > 0),
    };
    match pid {
        Some(pid) if pid_is_scopecam(pid, proc) => BridgeState::Running { pid, file },
        pid => BridgeState::Stale { pid, file },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::testing::Running;

    fn scope() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    fn answer(request: u16) -> [u8; crate::protocol::control::ANSWER_LEN] {
        ButtonAnswer {
            request,
            presses: 9,
        }
        .to_bytes()
    }

    #[test]
    fn answer_to_a_sent_poll_wins() {
        let t0 = Instant::now();
        let mut s = ProbeSession::new(scope());
        assert_eq!(s.next_request(t0).counter, 0);
        assert_eq!(s.next_request(t0).counter, 1);
        let later = t0 + Duration::from_millis(700);
        // The answer to the first poll is as good as any.
        let ProbeInput::Answered(reply) = s.on_datagram(&answer(0), scope(), later) else {
            panic!("not answered")
        };
        assert_eq!(reply.button.presses, 9);
        assert_eq!(reply.polls, 2);
        assert_eq!(reply.answered_after, Duration::from_millis(700));
    }

    #[test]
    fn foreign_garbage_and_unasked_answers_are_ignored() {
        let t0 = Instant::now();
        let mut s = ProbeSession::new(scope());
        assert_eq!(
            s.on_datagram(&answer(0), scope(), t0),
            ProbeInput::Stale,
            "nothing sent yet"
        );
        s.next_request(t0);
        let other: SocketAddr = "127.0.0.1:50001".parse().unwrap();
        assert_eq!(s.on_datagram(&answer(0), other, t0), ProbeInput::Foreign);
        assert_eq!(s.on_datagram(b"RETCMD", scope(), t0), ProbeInput::Malformed);
        assert_eq!(
            s.on_datagram(&[0xff; 20], scope(), t0),
            ProbeInput::Malformed
        );
        assert_eq!(s.on_datagram(&answer(5), scope(), t0), ProbeInput::Stale);
        assert_eq!(
            s.on_datagram(&answer(u16::MAX), scope(), t0),
            ProbeInput::Stale
        );
    }

    #[test]
    fn counters_wrap() {
        let t0 = Instant::now();
        let mut s = ProbeSession::new(scope());
        for _ in 0..65_540 {
            s.next_request(t0);
        }
        assert!(matches!(
            s.on_datagram(&answer(3), scope(), t0),
            ProbeInput::Answered(_)
        ));
        assert!(matches!(
            s.on_datagram(&answer(60_000), scope(), t0),
            ProbeInput::Answered(_)
        ));
    }

    #[tokio::test]
    async fn simulator_answers_the_probe() {
        let scope = Running::on_free_ports().await;
        let target = ProbeTarget {
            scope: scope.control,
            interface: None,
        };
        let reply = probe_scope(&target, Duration::from_secs(3)).await.unwrap();
        assert_eq!(reply.polls, 1);
        assert!(reply.answered_after < Duration::from_secs(1));
        scope.shut_down().await;
    }

    #[tokio::test]
    async fn silence_is_no_answer_within_the_timeout() {
        // A bound socket that never answers: the probe must give up on time.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = ProbeTarget {
            scope: silent.local_addr().unwrap(),
            interface: None,
        };
        let started = Instant::now();
        let err = probe_scope(&target, Duration::from_millis(1200))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1200) && elapsed < Duration::from_secs(3));
        let ProbeError::NoAnswer { polls, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(polls, 3, "at 0, 0.5 and 1.0 s");
        let mut buf = [0u8; 64];
        let (len, _) = silent.recv_from(&mut buf).await.unwrap();
        assert!(
            ButtonRequest::parse(&buf[..len]).is_ok(),
            "the poll is the button query"
        );
    }

    /// Sends fine; every receive fails at once.
    struct Broken {
        receives: std::cell::Cell<u32>,
    }

    impl ProbeSocket for Broken {
        async fn send_to(&self, datagram: &[u8], _: SocketAddr) -> std::io::Result<usize> {
            Ok(datagram.len())
        }
        async fn recv_from(&self, _: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
            self.receives.set(self.receives.get() + 1);
            // Back to the runtime, as a real socket's error does, so timers can fire.
            tokio::task::yield_now().await;
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
        }
    }

    #[tokio::test]
    async fn persistent_receive_errors_do_not_spin() {
        let broken = Broken {
            receives: std::cell::Cell::new(0),
        };
        let target = ProbeTarget {
            scope: scope(),
            interface: None,
        };
        let started = Instant::now();
        let err = probe_on(&broken, &target, Duration::from_millis(600))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProbeError::NoAnswer { polls: 2, .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let receives = broken.receives.get();
        assert!(
            (2..=30).contains(&receives),
            "{receives} receives in 0.6 s: the loop spins"
        );
    }

    #[test]
    fn bridge_state_from_files() {
        let dir = tempfile::tempdir().unwrap();
        // An empty /proc, as under hidepid: the bridge's pid is not visible there.
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        let me = std::process::id();
        assert_eq!(
            bridge_state(dir.path(), "enx1", &proc),
            BridgeState::NotRunning
        );
        let file = dir.path().join("enx1.json");
        std::fs::write(&file, format!(r#"{{"interface":"enx1","pid":{me}}}"#)).unwrap();
        assert_eq!(
            bridge_state(dir.path(), "enx1", &proc),
            BridgeState::Running {
                pid: me,
                file: file.clone()
            },
            "alive (kill answers) though /proc/PID is hidden"
        );
        // The same file, but /proc shows the pid belongs to another program.
        std::fs::create_dir_all(proc.join(me.to_string())).unwrap();
        std::fs::write(proc.join(me.to_string()).join("comm"), "bash\n").unwrap();
        assert_eq!(
            bridge_state(dir.path(), "enx1", &proc),
            BridgeState::Stale {
                pid: Some(me),
                file: file.clone()
            }
        );
        std::fs::write(&file, r#"{"interface":"enx1","pid":2147483632}"#).unwrap();
        assert_eq!(
            bridge_state(dir.path(), "enx1", &proc),
            BridgeState::Stale {
                pid: Some(2_147_483_632),
                file: file.clone()
            }
        );
        std::fs::write(&file, "not json").unwrap();
        assert_eq!(
            bridge_state(dir.path(), "enx1", &proc),
            BridgeState::Stale { pid: None, file }
        );
    }
}
