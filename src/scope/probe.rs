//! Is there a borescope? The probe as a state machine (sans-IO): it numbers the button
//! polls, decides when the video heartbeat joins them, and recognises the answer to
//! either. `link::probe` drives it with a socket and a clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::protocol::{ButtonAnswer, ButtonRequest, Fragment};

/// How often the poll (and, later, the heartbeat) is re-sent while nothing answers
/// (UDP may drop it; the scope may still be booting).
pub const PROBE_RESEND: Duration = Duration::from_millis(500);

/// How long the button poll has alone before the video heartbeat joins it: one resend
/// interval (the heartbeat goes with the second poll and every later one). A scope that
/// answers polls does so within milliseconds, so its video is never touched.
pub const VIDEO_PROBE_AFTER: Duration = PROBE_RESEND;

/// Which question the scope answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAnswer {
    /// A RETCMD to a button poll; `presses` is the scope's raw button counter.
    Button(ButtonAnswer),
    /// A video fragment after a heartbeat, while the button port stayed silent.
    Video { frame_id: u8 },
}

/// The scope answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReply {
    /// From the first poll sent to the answer.
    pub answered_after: Duration,
    pub answer: ProbeAnswer,
    /// Polls sent before the answer came (1 = the first one was answered).
    pub polls: u32,
    /// Video heartbeats sent (0 when the button answered first).
    pub heartbeats: u32,
}

/// What [`ProbeSession::on_datagram`] made of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeInput {
    Answered(ProbeReply),
    /// From another address or port than the scope's two.
    Foreign,
    /// From the scope, but neither a RETCMD button answer nor a video fragment.
    Malformed,
    /// A RETCMD for a request this session did not send, or a fragment although no
    /// heartbeat was sent.
    Stale,
}

/// What to send next, from [`ProbeSession::on_tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSend {
    pub poll: ButtonRequest,
    /// Also send a heartbeat to the video port.
    pub heartbeat: bool,
}

/// Sans-IO: numbers the polls, decides when the heartbeat joins them, and recognises
/// the answer to either.
#[derive(Debug, Clone)]
pub struct ProbeSession {
    control: SocketAddr,
    /// `None`: the video port is not to be asked (a bridge streams from it).
    video: Option<SocketAddr>,
    next_counter: u16,
    polls: u32,
    heartbeats: u32,
    started: Option<Instant>,
}

impl ProbeSession {
    pub fn new(control: SocketAddr, video: Option<SocketAddr>) -> Self {
        ProbeSession {
            control,
            video,
            next_counter: 0,
            polls: 0,
            heartbeats: 0,
            started: None,
        }
    }

    /// The next poll to send (counters count up from 0, as the button link's do), and
    /// whether a heartbeat goes with it: from the second poll on, since the caller
    /// ticks every [`PROBE_RESEND`] (= [`VIDEO_PROBE_AFTER`]).
    pub fn on_tick(&mut self, now: Instant) -> ProbeSend {
        self.started.get_or_insert(now);
        let poll = ButtonRequest {
            counter: self.next_counter,
        };
        self.next_counter = self.next_counter.wrapping_add(1);
        let heartbeat = self.video.is_some() && self.polls > 0;
        self.polls += 1;
        if heartbeat {
            self.heartbeats += 1;
        }
        ProbeSend { poll, heartbeat }
    }

    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// Heartbeats sent so far: when not 0, the scope must get the stop packet.
    pub fn heartbeats(&self) -> u32 {
        self.heartbeats
    }

    /// Checks a datagram: a RETCMD from the scope's control port that answers one of
    /// our polls counts, and so does a fragment from its video port once a heartbeat
    /// went out.
    pub fn on_datagram(&self, datagram: &[u8], from: SocketAddr, now: Instant) -> ProbeInput {
        let answer = if from == self.control {
            let Ok(button) = ButtonAnswer::parse(datagram) else {
                return ProbeInput::Malformed;
            };
            // Counters sent so far are 0..polls (mod 2^16).
            let sent = self.polls.min(u32::from(u16::MAX) + 1);
            let age = u32::from(self.next_counter.wrapping_sub(button.request));
            if self.polls == 0 || age == 0 || age > sent {
                return ProbeInput::Stale;
            }
            ProbeAnswer::Button(button)
        } else if Some(from) == self.video {
            let Ok(fragment) = Fragment::parse(datagram) else {
                return ProbeInput::Malformed;
            };
            if self.heartbeats == 0 {
                return ProbeInput::Stale;
            }
            ProbeAnswer::Video {
                frame_id: fragment.header.frame_id,
            }
        } else {
            return ProbeInput::Foreign;
        };
        ProbeInput::Answered(ProbeReply {
            answered_after: now.saturating_duration_since(self.started.unwrap_or(now)),
            answer,
            polls: self.polls,
            heartbeats: self.heartbeats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    fn video() -> SocketAddr {
        "127.0.0.1:8030".parse().unwrap()
    }

    fn session() -> ProbeSession {
        ProbeSession::new(control(), Some(video()))
    }

    fn answer(request: u16) -> [u8; crate::scope::protocol::control::ANSWER_LEN] {
        ButtonAnswer {
            request,
            presses: 9,
        }
        .to_bytes()
    }

    fn fragment(frame_id: u8) -> Vec<u8> {
        crate::scope::protocol::video::fragment_frame(&[0xFF, 0xD8, 0xFF, 0xD9], frame_id, 1450)
            .remove(0)
    }

    #[test]
    fn answer_to_a_sent_poll_wins() {
        let t0 = Instant::now();
        let mut s = session();
        assert_eq!(s.on_tick(t0).poll.counter, 0);
        assert_eq!(s.on_tick(t0).poll.counter, 1);
        let later = t0 + Duration::from_millis(700);
        // The answer to the first poll is as good as any.
        let ProbeInput::Answered(reply) = s.on_datagram(&answer(0), control(), later) else {
            panic!("not answered")
        };
        assert_eq!(
            reply.answer,
            ProbeAnswer::Button(ButtonAnswer {
                request: 0,
                presses: 9
            })
        );
        assert_eq!((reply.polls, reply.heartbeats), (2, 1));
        assert_eq!(reply.answered_after, Duration::from_millis(700));
    }

    #[test]
    fn the_heartbeat_joins_after_the_first_unanswered_poll() {
        let t0 = Instant::now();
        let mut s = session();
        assert!(!s.on_tick(t0).heartbeat, "the button alone first");
        assert_eq!(
            s.on_datagram(&fragment(3), video(), t0),
            ProbeInput::Stale,
            "no heartbeat sent: a fragment is no answer"
        );
        let next = s.on_tick(t0 + VIDEO_PROBE_AFTER);
        assert!(next.heartbeat);
        assert_eq!(s.heartbeats(), 1);
        let at = t0 + Duration::from_millis(620);
        let ProbeInput::Answered(reply) = s.on_datagram(&fragment(3), video(), at) else {
            panic!("not answered")
        };
        assert_eq!(reply.answer, ProbeAnswer::Video { frame_id: 3 });
        assert_eq!((reply.polls, reply.heartbeats), (2, 1));
        assert_eq!(
            s.on_datagram(b"\x66 not a fragment", video(), at),
            ProbeInput::Malformed
        );
        assert_eq!(
            s.on_datagram(&answer(0), video(), at),
            ProbeInput::Malformed,
            "a RETCMD from the video port is not a fragment"
        );
        assert_eq!(
            s.on_datagram(&fragment(3), control(), at),
            ProbeInput::Malformed,
            "a fragment from the control port is not a RETCMD"
        );
    }

    #[test]
    fn a_session_without_video_never_sends_the_heartbeat() {
        let t0 = Instant::now();
        let mut s = ProbeSession::new(control(), None);
        for _ in 0..5 {
            assert!(!s.on_tick(t0 + VIDEO_PROBE_AFTER).heartbeat);
        }
        assert_eq!(s.heartbeats(), 0);
        assert_eq!(
            s.on_datagram(&fragment(3), video(), t0),
            ProbeInput::Foreign
        );
        assert!(matches!(
            s.on_datagram(&answer(4), control(), t0),
            ProbeInput::Answered(_)
        ));
    }

    #[test]
    fn foreign_garbage_and_unasked_answers_are_ignored() {
        let t0 = Instant::now();
        let mut s = session();
        assert_eq!(
            s.on_datagram(&answer(0), control(), t0),
            ProbeInput::Stale,
            "nothing sent yet"
        );
        s.on_tick(t0);
        let other: SocketAddr = "127.0.0.1:50001".parse().unwrap();
        assert_eq!(s.on_datagram(&answer(0), other, t0), ProbeInput::Foreign);
        assert_eq!(s.on_datagram(&fragment(0), other, t0), ProbeInput::Foreign);
        assert_eq!(
            s.on_datagram(b"RETCMD", control(), t0),
            ProbeInput::Malformed
        );
        assert_eq!(
            s.on_datagram(&[0xff; 20], control(), t0),
            ProbeInput::Malformed
        );
        assert_eq!(s.on_datagram(&answer(5), control(), t0), ProbeInput::Stale);
        assert_eq!(
            s.on_datagram(&answer(u16::MAX), control(), t0),
            ProbeInput::Stale
        );
    }

    #[test]
    fn counters_wrap() {
        let t0 = Instant::now();
        let mut s = session();
        for _ in 0..65_540 {
            s.on_tick(t0);
        }
        assert!(matches!(
            s.on_datagram(&answer(3), control(), t0),
            ProbeInput::Answered(_)
        ));
        assert!(matches!(
            s.on_datagram(&answer(60_000), control(), t0),
            ProbeInput::Answered(_)
        ));
    }
}
