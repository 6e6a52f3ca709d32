//! Is there a borescope behind this interface? A read-only button poll answers that,
//! and for scopes whose button port stays silent, the video heartbeat does.
//!
//! Ordinary USB-Ethernet dongles share the scope's chip and USB id, so the service
//! asks before it touches anything: it sends the same SETCMD button query the button
//! link sends (read-only: it only reads the press counter) to the scope's control
//! port, re-sent every [`PROBE_RESEND`], and the first valid RETCMD from the scope's
//! address answers it. Some models do not answer button polls at all, yet stream
//! video: when the first poll is unanswered after [`VIDEO_PROBE_AFTER`](crate::scope::probe::VIDEO_PROBE_AFTER), the probe
//! also sends the video heartbeat (every [`PROBE_RESEND`]) and a valid fragment from
//! the scope's video port answers it too. Whenever a heartbeat went out, the stop
//! packet follows when the probe ends, however it ends (answer, timeout, or the
//! probe future dropped by a signal), so the scope does not stream at a socket
//! nobody reads. [`ProbeSession`] (in `scope::probe`) is the sans-IO part; [`probe_scope`]
//! the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::time::{MissedTickBehavior, interval_at};
use tracing::debug;

use super::socket::{SocketError, open_udp};
use crate::scope::probe::{PROBE_RESEND, ProbeInput, ProbeReply, ProbeSession};
use crate::scope::protocol::VideoCommand;

/// How long to wait after a receive error before receiving again, so an error that
/// persists (the socket's device gone, say) cannot spin a core until the timeout.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Whom to ask, and through which interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The scope's control (button) port, e.g. 192.168.10.123:50000.
    pub control: SocketAddr,
    /// The scope's video port, e.g. 192.168.10.123:8030.
    pub video: SocketAddr,
    /// Whether the video heartbeat may join the polls. `false` while a bridge streams
    /// from the scope: the probe's stop packet would take the stream away from it.
    pub ask_video: bool,
    /// Bind the socket to this interface (SO_BINDTODEVICE), so the question goes to
    /// the scope behind it and not to another 192.168.10.123.
    pub interface: Option<String>,
}

/// Why the probe did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(
        "no borescope answers at {control}{}{} ({polls} polls, {heartbeats} heartbeats in {:.1} s){}",
        video.map(|v| format!(" or {}", v.port())).unwrap_or_default(),
        interface.as_deref().map(|i| format!(" on {i}")).unwrap_or_default(),
        waited.as_secs_f64(),
        last_send_error.as_deref().map(|e| format!("; sending failed: {e}")).unwrap_or_default()
    )]
    NoAnswer {
        control: SocketAddr,
        /// The video port, when it was asked too.
        video: Option<SocketAddr>,
        interface: Option<String>,
        waited: Duration,
        polls: u32,
        heartbeats: u32,
        /// Why the last poll could not be sent, if it could not (no address, no route).
        last_send_error: Option<String>,
    },
}

/// Asks the scope at `target` whether it is there, for at most `timeout`.
///
/// Read-only: the SETCMD button query, and after [`VIDEO_PROBE_AFTER`](crate::scope::probe::VIDEO_PROBE_AFTER) without an
/// answer the video heartbeat, always followed by the stop packet. Re-sent every
/// [`PROBE_RESEND`]; send errors (no address yet, no route) are retried until the
/// timeout and then reported.
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
    /// Sends without waiting (for the stop packet from a destructor).
    fn try_send_to(&self, datagram: &[u8], to: SocketAddr) -> std::io::Result<usize>;
}

impl ProbeSocket for tokio::net::UdpSocket {
    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        tokio::net::UdpSocket::send_to(self, datagram, to).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        tokio::net::UdpSocket::recv_from(self, buf).await
    }
    fn try_send_to(&self, datagram: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        tokio::net::UdpSocket::try_send_to(self, datagram, to)
    }
}

/// Sends the stop packet when dropped if a heartbeat went out: on an answer, on the
/// timeout, and when the probe future is dropped mid-way (a signal in a `select!`).
struct StopOnDrop<'a, S: ProbeSocket> {
    socket: &'a S,
    video: SocketAddr,
    armed: bool,
}

impl<S: ProbeSocket> Drop for StopOnDrop<'_, S> {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self
                .socket
                .try_send_to(&VideoCommand::Stop.to_bytes(), self.video)
            {
                debug!("stop packet to {} not sent: {e}", self.video);
            }
        }
    }
}

/// [`probe_scope`] on an open socket.
async fn probe_on(
    socket: &impl ProbeSocket,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<ProbeReply, ProbeError> {
    let mut session = ProbeSession::new(target.control, target.ask_video.then_some(target.video));
    let mut stop = StopOnDrop {
        socket,
        video: target.video,
        armed: false,
    };
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut resend = interval_at(started, PROBE_RESEND);
    resend.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_send_error = None;
    let mut buf = vec![0u8; super::MAX_DATAGRAM];
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = resend.tick() => {
                let send = session.on_tick(Instant::now());
                let mut datagrams = vec![(send.poll.to_bytes().to_vec(), target.control)];
                if send.heartbeat {
                    stop.armed = true;
                    datagrams.push((VideoCommand::Heartbeat.to_bytes().to_vec(), target.video));
                }
                for (datagram, to) in datagrams {
                    match socket.send_to(&datagram, to).await {
                        Ok(_) => last_send_error = None,
                        Err(e) => {
                            debug!("probe datagram to {to} not sent: {e}");
                            last_send_error = Some(e.to_string());
                        }
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
        control: target.control,
        video: target.ask_video.then_some(target.video),
        interface: target.interface.clone(),
        waited: timeout,
        polls: session.polls(),
        heartbeats: session.heartbeats(),
        last_send_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::probe::{ProbeAnswer, VIDEO_PROBE_AFTER};
    use crate::scope::protocol::ButtonRequest;
    use crate::simulator::testing::Running;

    fn fragment(frame_id: u8) -> Vec<u8> {
        crate::scope::protocol::video::fragment_frame(&[0xFF, 0xD8, 0xFF, 0xD9], frame_id, 1450)
            .remove(0)
    }

    fn control() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    fn video() -> SocketAddr {
        "127.0.0.1:8030".parse().unwrap()
    }

    #[tokio::test]
    async fn simulator_answers_the_probe_by_button_and_its_video_is_not_touched() {
        let scope = Running::on_free_ports().await;
        let target = ProbeTarget {
            control: scope.control,
            video: scope.video,
            ask_video: true,
            interface: None,
        };
        let reply = probe_scope(&target, Duration::from_secs(3)).await.unwrap();
        assert_eq!((reply.polls, reply.heartbeats), (1, 0));
        assert!(matches!(reply.answer, ProbeAnswer::Button(_)));
        assert!(reply.answered_after < Duration::from_secs(1));
        let stats = scope.shut_down().await;
        assert_eq!((stats.heartbeats, stats.stops), (0, 0), "{stats:?}");
    }

    /// A scope whose button port is bound but silent and whose video port answers each
    /// heartbeat with one fragment; counts heartbeats and stop packets.
    struct VideoOnlyScope {
        video: SocketAddr,
        control: SocketAddr,
        task: tokio::task::JoinHandle<(u32, u32)>,
        quit: tokio::sync::oneshot::Sender<()>,
    }

    impl VideoOnlyScope {
        async fn start() -> Self {
            let video = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let control = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (quit, mut quitting) = tokio::sync::oneshot::channel();
            let addrs = (video.local_addr().unwrap(), control.local_addr().unwrap());
            let task = tokio::spawn(async move {
                let _silent = control;
                let (mut heartbeats, mut stops) = (0, 0);
                let mut buf = [0u8; 256];
                loop {
                    tokio::select! {
                        biased;
                        received = video.recv_from(&mut buf) => {
                            let (len, from) = received.unwrap();
                            match VideoCommand::parse(&buf[..len]) {
                                Ok(VideoCommand::Heartbeat) => {
                                    heartbeats += 1;
                                    video.send_to(&fragment(7), from).await.unwrap();
                                }
                                Ok(VideoCommand::Stop) => stops += 1,
                                Err(_) => {}
                            }
                        }
                        _ = &mut quitting => return (heartbeats, stops),
                    }
                }
            });
            VideoOnlyScope {
                video: addrs.0,
                control: addrs.1,
                task,
                quit,
            }
        }

        /// (heartbeats, stops) seen, after the datagrams in flight have landed.
        async fn finish(self) -> (u32, u32) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = self.quit.send(());
            self.task.await.unwrap()
        }
    }

    #[tokio::test]
    async fn a_scope_with_a_silent_button_port_answers_by_video_and_is_stopped() {
        let scope = VideoOnlyScope::start().await;
        let target = ProbeTarget {
            control: scope.control,
            video: scope.video,
            ask_video: true,
            interface: None,
        };
        let reply = probe_scope(&target, Duration::from_secs(3)).await.unwrap();
        assert_eq!(reply.answer, ProbeAnswer::Video { frame_id: 7 });
        assert_eq!((reply.polls, reply.heartbeats), (2, 1));
        assert!(reply.answered_after >= VIDEO_PROBE_AFTER - Duration::from_millis(5));
        assert_eq!(scope.finish().await, (1, 1), "one heartbeat, then the stop");
    }

    #[tokio::test]
    async fn a_probe_dropped_mid_way_still_stops_the_video() {
        // The video port swallows heartbeats without answering: the probe is still
        // waiting when it is cut short, as a signal's `select!` cuts it.
        let video = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = ProbeTarget {
            control: "127.0.0.1:9".parse().unwrap(),
            video: video.local_addr().unwrap(),
            ask_video: true,
            interface: None,
        };
        let cut = tokio::time::timeout(
            Duration::from_millis(800),
            probe_scope(&target, Duration::from_secs(20)),
        )
        .await;
        assert!(cut.is_err(), "still probing when cut short");
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while let Ok(Ok((len, _))) =
            tokio::time::timeout(Duration::from_millis(200), video.recv_from(&mut buf)).await
        {
            got.push(VideoCommand::parse(&buf[..len]).unwrap());
        }
        assert_eq!(got, vec![VideoCommand::Heartbeat, VideoCommand::Stop]);
    }

    #[tokio::test]
    async fn silence_is_no_answer_within_the_timeout_and_the_video_is_stopped() {
        // Bound sockets that never answer: the probe must give up on time.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let silent_video = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = ProbeTarget {
            control: silent.local_addr().unwrap(),
            video: silent_video.local_addr().unwrap(),
            ask_video: true,
            interface: None,
        };
        let started = Instant::now();
        let err = probe_scope(&target, Duration::from_millis(1200))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1200) && elapsed < Duration::from_secs(3));
        let ProbeError::NoAnswer {
            polls, heartbeats, ..
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!((polls, heartbeats), (3, 2), "at 0, 0.5 and 1.0 s");
        let mut buf = [0u8; 64];
        let (len, _) = silent.recv_from(&mut buf).await.unwrap();
        assert!(
            ButtonRequest::parse(&buf[..len]).is_ok(),
            "the poll is the button query"
        );
        let mut commands = Vec::new();
        for _ in 0..3 {
            let (len, _) = silent_video.recv_from(&mut buf).await.unwrap();
            commands.push(VideoCommand::parse(&buf[..len]).unwrap());
        }
        assert_eq!(
            commands,
            [
                VideoCommand::Heartbeat,
                VideoCommand::Heartbeat,
                VideoCommand::Stop
            ]
        );
    }

    #[tokio::test]
    async fn without_video_only_the_button_is_asked_and_nothing_reaches_the_video_port() {
        // As while a bridge streams from the scope: a silent button must not bring the
        // heartbeat and its stop packet.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let video = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = ProbeTarget {
            control: silent.local_addr().unwrap(),
            video: video.local_addr().unwrap(),
            ask_video: false,
            interface: None,
        };
        let err = probe_scope(&target, Duration::from_millis(1200))
            .await
            .unwrap_err();
        let ProbeError::NoAnswer {
            polls,
            heartbeats,
            video: asked,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*polls, *heartbeats, *asked), (3, 0, None));
        assert!(!err.to_string().contains(" or "), "{err}");
        let mut buf = [0u8; 64];
        let nothing =
            tokio::time::timeout(Duration::from_millis(300), video.recv_from(&mut buf)).await;
        assert!(nothing.is_err(), "a datagram reached the video port");
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
        fn try_send_to(&self, datagram: &[u8], _: SocketAddr) -> std::io::Result<usize> {
            Ok(datagram.len())
        }
    }

    #[tokio::test]
    async fn persistent_receive_errors_do_not_spin() {
        let broken = Broken {
            receives: std::cell::Cell::new(0),
        };
        let target = ProbeTarget {
            control: control(),
            video: video(),
            ask_video: true,
            interface: None,
        };
        let started = Instant::now();
        let err = probe_on(&broken, &target, Duration::from_millis(600))
            .await
            .unwrap_err();
        // Polls at 0 and 0.5 s; a late timer on a loaded machine may leave one.
        assert!(
            matches!(err, ProbeError::NoAnswer { polls: 1..=2, .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let receives = broken.receives.get();
        assert!(
            (2..=30).contains(&receives),
            "{receives} receives in 0.6 s: the loop spins"
        );
    }
}
