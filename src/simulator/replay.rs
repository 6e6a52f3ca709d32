//! `scopecam simulate --replay FILE`: a scope that plays a capture back.
//!
//! The capture's clock starts at its first datagram; the replay's at the first
//! heartbeat or poll a client sends it. From then on every video datagram the scope
//! sent is sent again at its original offset, to the client that heartbeats, while
//! heartbeats keep coming (as a real scope streams: none for `idle_timeout`, or a stop
//! packet, and the datagrams falling due meanwhile are skipped, not queued). A button
//! poll gets the answer the scope gave last at that point of the capture, with the
//! client's own request counter put in (the first answer before the capture had one;
//! none at all if the captured scope never answered). Datagrams the scope sent are
//! replayed byte for byte, whatever they hold: that is the point of replaying a model
//! that differs. At the end of the capture the video falls silent; the button keeps
//! answering with the last value.
//!
//! [`Timeline`] is the sans-IO part (what is due, what to answer); [`run_replay`]
//! owns the sockets.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::pin;
use std::time::Duration;

use anyhow::Context;
use tokio::time::{Instant, sleep_until};

use crate::capture::{Capture, Direction, Port, read_capture};
use crate::scope::protocol::{ButtonAnswer, ButtonRequest, VideoCommand};

/// Largest capture file read (a default capture is at most 64 MiB).
pub const MAX_REPLAY_BYTES: u64 = 1 << 30;

/// What the replayed scope sends, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Datagrams from the scope's video port, at their offset in the capture.
    pub video: Vec<(Duration, Vec<u8>)>,
    /// Datagrams from the scope's control port, at their offset.
    pub answers: Vec<(Duration, Vec<u8>)>,
}

impl Timeline {
    /// The scope's side of a capture; an error if the scope sent nothing at all.
    pub fn from_capture(capture: &Capture) -> anyhow::Result<Timeline> {
        let of = |port| {
            capture
                .of(Direction::FromScope, port)
                .map(|r| (r.at, r.payload.clone()))
                .collect::<Vec<_>>()
        };
        let timeline = Timeline {
            video: of(Port::Video),
            answers: of(Port::Control),
        };
        if timeline.video.is_empty() && timeline.answers.is_empty() {
            anyhow::bail!(
                "the capture holds nothing the scope sent ({} datagrams to it): nothing to replay",
                capture.records.len()
            );
        }
        Ok(timeline)
    }

    /// The answer to `request` at `elapsed` into the replay, if the scope answered.
    pub fn answer(&self, request: ButtonRequest, elapsed: Duration) -> Option<Vec<u8>> {
        let latest = self.answers.iter().rev().find(|(at, _)| *at <= elapsed);
        let (_, answer) = latest.or(self.answers.first())?;
        let mut answer = answer.clone();
        // A RETCMD gets the poll's counter, as the scope pairs them; anything else the
        // scope said is repeated as it was.
        if ButtonAnswer::parse(&answer).is_ok() {
            answer[6..8].copy_from_slice(&request.counter.to_le_bytes());
        }
        Some(answer)
    }
}

/// What the replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub video_sent: u64,
    /// Video datagrams that fell due while no client heartbeated.
    pub video_skipped: u64,
    pub heartbeats: u64,
    pub stops: u64,
    pub polls_answered: u64,
    pub polls_unanswered: u64,
    pub ignored: u64,
}

/// Reads the capture at `path` (refusing anything that is not a whole scopecam capture).
pub fn load(path: &Path) -> anyhow::Result<Timeline> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_REPLAY_BYTES {
        anyhow::bail!(
            "{} is {size} bytes, more than a capture can be ({MAX_REPLAY_BYTES})",
            path.display()
        );
    }
    let capture = read_capture(std::io::BufReader::new(file))
        .with_context(|| format!("cannot replay {}", path.display()))?;
    Timeline::from_capture(&capture).with_context(|| format!("cannot replay {}", path.display()))
}

/// Plays `timeline` from `video` and `control` (bound sockets) until `shutdown`.
pub async fn run_replay(
    timeline: Timeline,
    video: tokio::net::UdpSocket,
    control: tokio::net::UdpSocket,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> ReplayStats {
    let mut shutdown = pin!(shutdown);
    let mut stats = ReplayStats::default();
    let mut origin: Option<Instant> = None;
    let mut client: Option<SocketAddr> = None;
    let mut streaming_until: Option<Instant> = None;
    let mut next = 0;
    let mut finished_logged = false;
    let mut video_buf = [0u8; 2048];
    let mut control_buf = [0u8; 2048];
    tracing::info!(
        "replaying {} video and {} button datagrams",
        timeline.video.len(),
        timeline.answers.len()
    );
    loop {
        let due = match (origin, timeline.video.get(next)) {
            (Some(origin), Some((at, _))) => Some(origin + *at),
            _ => None,
        };
        if due.is_none() && origin.is_some() && !finished_logged {
            finished_logged = true;
            tracing::info!("replay finished: {stats:?}");
        }
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            received = video.recv_from(&mut video_buf) => {
                let Ok((len, from)) = received else { continue };
                let now = Instant::now();
                match VideoCommand::parse(&video_buf[..len]) {
                    Ok(VideoCommand::Heartbeat) => {
                        stats.heartbeats += 1;
                        origin.get_or_insert(now);
                        if client != Some(from) {
                            tracing::info!("client {from} heartbeats: replaying to it");
                        }
                        client = Some(from);
                        streaming_until = Some(now + idle_timeout);
                    }
                    Ok(VideoCommand::Stop) => {
                        stats.stops += 1;
                        streaming_until = None;
                    }
                    Err(_) => stats.ignored += 1,
                }
            }
            received = control.recv_from(&mut control_buf) => {
                let Ok((len, from)) = received else { continue };
                let Ok(request) = ButtonRequest::parse(&control_buf[..len]) else {
                    stats.ignored += 1;
                    continue;
                };
                let now = Instant::now();
                let elapsed = now - *origin.get_or_insert(now);
                match timeline.answer(request, elapsed) {
                    Some(answer) => {
                        stats.polls_answered += 1;
                        let _ = control.send_to(&answer, from).await;
                    }
                    None => stats.polls_unanswered += 1,
                }
            }
            () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                // Everything due by now goes out back to back, as the scope sent it.
                let (Some(origin), now) = (origin, Instant::now()) else { continue };
                while let Some((at, datagram)) = timeline.video.get(next) {
                    if origin + *at > now {
                        break;
                    }
                    next += 1;
                    match (client, streaming_until) {
                        (Some(to), Some(until)) if now < until => {
                            stats.video_sent += 1;
                            let _ = video.send_to(datagram, to).await;
                        }
                        _ => stats.video_skipped += 1,
                    }
                }
            }
        }
    }
    tracing::info!("replay stopped: {stats:?}");
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(request: u16, presses: u16) -> Vec<u8> {
        let mut bytes = ButtonAnswer { request, presses }.to_bytes().to_vec();
        bytes[14..18].copy_from_slice(b"ABCD");
        bytes
    }

    #[test]
    fn polls_get_the_answer_of_their_moment_with_their_own_counter() {
        let ms = Duration::from_millis;
        let timeline = Timeline {
            video: vec![],
            answers: vec![(ms(100), answer(7, 10)), (ms(900), answer(15, 12))],
        };
        let parse = |bytes: Vec<u8>| ButtonAnswer::parse(&bytes).unwrap();
        let early = timeline
            .answer(ButtonRequest { counter: 3 }, ms(0))
            .unwrap();
        assert_eq!(
            parse(early.clone()),
            ButtonAnswer {
                request: 3,
                presses: 10
            }
        );
        assert_eq!(&early[14..18], b"ABCD", "the unknown bytes are the scope's");
        let mid = timeline
            .answer(ButtonRequest { counter: 4 }, ms(500))
            .unwrap();
        assert_eq!(parse(mid).presses, 10);
        let late = timeline
            .answer(ButtonRequest { counter: 900 }, ms(5000))
            .unwrap();
        assert_eq!(
            parse(late),
            ButtonAnswer {
                request: 900,
                presses: 12
            }
        );
        let silent = Timeline {
            video: vec![(ms(1), vec![0x66])],
            answers: vec![],
        };
        assert_eq!(silent.answer(ButtonRequest { counter: 1 }, ms(10)), None);
        // Whatever else the scope answered is repeated as it was.
        let odd = Timeline {
            video: vec![],
            answers: vec![(ms(0), b"OTHER".to_vec())],
        };
        assert_eq!(
            odd.answer(ButtonRequest { counter: 1 }, ms(10)),
            Some(b"OTHER".to_vec())
        );
    }
}
