//! End-to-end tests of the simulated scope over loopback UDP.
//! Everything binds 127.0.0.1 with port 0; nothing leaves this machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::testing::Running;
use super::*;
use crate::scope::protocol::{ButtonAnswer, ButtonRequest, Fragment, FragmentKind, VideoCommand};

const QUIET: Duration = Duration::from_millis(300);
const PATIENCE: Duration = Duration::from_secs(5);

fn loopback_config() -> SimulatorConfig {
    SimulatorConfig {
        video_port: 0,
        control_port: 0,
        source: small_pattern(),
        fps: 50.0,
        fragment_payload: 300,
        ..SimulatorConfig::default()
    }
}

fn small_pattern() -> FrameSource {
    FrameSource::Pattern {
        width: 96,
        height: 64,
        subsampling: Subsampling::S422,
        quality: 80,
    }
}

fn small_pattern_frame(number: u64) -> Vec<u8> {
    encode_pattern_frame(96, 64, Subsampling::S422, 80, number)
}

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    socket.send_to(bytes, to).await.unwrap();
}

/// The next datagram, or `None` after `wait` of silence.
async fn receive(socket: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 70_000];
    let (len, from) = timeout(wait, socket.recv_from(&mut buf)).await.ok()?.ok()?;
    buf.truncate(len);
    Some((buf, from))
}

/// Every datagram until QUIET of silence; the first may take PATIENCE (a
/// loaded machine can be slow to start the stream).
async fn receive_until_quiet(socket: &UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut received = Vec::new();
    let mut wait = PATIENCE;
    while let Some(datagram) = receive(socket, wait).await {
        received.push(datagram);
        wait = QUIET;
    }
    received
}

/// Reads until `wait` passes without a datagram; returns how many arrived.
async fn drain(socket: &UdpSocket, wait: Duration) -> usize {
    let mut count = 0;
    while receive(socket, wait).await.is_some() {
        count += 1;
    }
    count
}

/// Collects fragments until `frames` frames have had their last fragment,
/// then joins each frame's payloads in index order.
async fn receive_frames(socket: &UdpSocket, frames: usize) -> BTreeMap<u8, Vec<u8>> {
    let mut pieces: BTreeMap<u8, BTreeMap<u16, Vec<u8>>> = BTreeMap::new();
    let mut finished = 0;
    while finished < frames {
        let (datagram, _) = receive(socket, PATIENCE).await.expect("fragments arrive");
        let fragment = Fragment::parse(&datagram).expect("a clean fragment");
        let header = fragment.header;
        pieces
            .entry(header.frame_id)
            .or_default()
            .insert(header.index, fragment.payload.to_vec());
        if header.kind == FragmentKind::Last {
            finished += 1;
        }
    }
    pieces
        .into_iter()
        .map(|(id, parts)| (id, parts.into_values().flatten().collect()))
        .collect()
}

/// Sends a button poll and expects QUIET of silence.
async fn assert_no_answer_to_a_poll(socket: &UdpSocket, control: SocketAddr) {
    send(socket, &ButtonRequest { counter: 1 }.to_bytes(), control).await;
    assert!(
        receive(socket, QUIET).await.is_none(),
        "a poll was answered"
    );
}

async fn poll_button(socket: &UdpSocket, control: SocketAddr, counter: u16) -> ButtonAnswer {
    send(socket, &ButtonRequest { counter }.to_bytes(), control).await;
    let (answer, _) = receive(socket, PATIENCE).await.expect("an answer");
    ButtonAnswer::parse(&answer).expect("a RETCMD answer")
}

#[tokio::test]
async fn nothing_is_sent_before_a_heartbeat() {
    let scope = Running::start(loopback_config()).await;
    let socket = client().await;
    send(&socket, b"hello scope", scope.video).await;
    send(&socket, &VideoCommand::Stop.to_bytes(), scope.video).await;
    assert!(receive(&socket, QUIET).await.is_none());
    let stats = scope.shut_down().await;
    assert_eq!(stats.frames_sent, 0);
    assert_eq!(stats.ignored_datagrams, 1);
    assert_eq!(stats.stops, 1);
}

#[tokio::test]
async fn heartbeat_starts_a_stream_of_consecutive_pattern_frames() {
    let config = SimulatorConfig {
        max_frames: Some(4),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let frames = receive_frames(&socket, 4).await;
    assert_eq!(frames.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    for (id, jpeg) in &frames {
        assert_eq!(jpeg, &small_pattern_frame(u64::from(*id)), "frame {id}");
    }
    assert!(receive(&socket, QUIET).await.is_none(), "frame limit holds");
    let stats = scope.shut_down().await;
    assert_eq!(stats.frames_sent, 4);
    assert_eq!(stats.heartbeats, 1);
}

#[tokio::test]
async fn fragments_come_from_the_video_port_to_the_latest_heartbeat_sender() {
    let scope = Running::start(loopback_config()).await;
    let first = client().await;
    let second = client().await;
    send(&first, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let (_, from) = receive(&first, PATIENCE).await.expect("streaming");
    assert_eq!(from, scope.video);
    send(&second, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    assert!(receive(&second, PATIENCE).await.is_some());
    drain(&first, Duration::from_millis(100)).await;
    assert!(receive(&first, QUIET).await.is_none(), "old client dropped");
    scope.shut_down().await;
}

#[tokio::test]
async fn stop_packet_stops_the_stream_and_heartbeat_resumes_it() {
    let scope = Running::start(loopback_config()).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    assert!(receive(&socket, PATIENCE).await.is_some());
    send(&socket, &VideoCommand::Stop.to_bytes(), scope.video).await;
    drain(&socket, QUIET).await;
    assert!(receive(&socket, QUIET).await.is_none());
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    assert!(receive(&socket, PATIENCE).await.is_some(), "resumed");
    let stats = scope.shut_down().await;
    assert_eq!(stats.stops, 1);
    assert_eq!(stats.heartbeats, 2);
    assert_eq!(stats.idle_timeouts, 0);
}

#[tokio::test]
async fn stream_stops_when_heartbeats_cease() {
    let config = SimulatorConfig {
        idle_timeout: Duration::from_millis(400),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    let started = tokio::time::Instant::now();
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let received = drain(&socket, Duration::from_millis(200)).await;
    let silent_after = started.elapsed();
    assert!(received > 0);
    assert!(
        silent_after >= Duration::from_millis(350),
        "{silent_after:?}"
    );
    assert!(silent_after < Duration::from_secs(2), "{silent_after:?}");
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    assert!(receive(&socket, PATIENCE).await.is_some(), "resumed");
    let stats = scope.shut_down().await;
    assert_eq!(stats.idle_timeouts, 1);
    assert_eq!(stats.stops, 0);
}

#[tokio::test]
async fn button_answers_echo_the_request_and_report_the_counter() {
    let scope = Running::start(loopback_config()).await;
    let socket = client().await;
    let first = poll_button(&socket, scope.control, 7).await;
    assert_eq!(
        first,
        ButtonAnswer {
            request: 7,
            presses: 1234
        }
    );
    send(&socket, b"SETCMD but not really", scope.control).await;
    let second = poll_button(&socket, scope.control, 8).await;
    assert_eq!(second.request, 8, "junk got no answer");
    assert_eq!(second.presses, 1234, "no presses configured");
    let stats = scope.shut_down().await;
    assert_eq!(stats.button_polls, 2);
    assert_eq!(stats.ignored_datagrams, 1);
}

#[tokio::test]
async fn simulated_presses_increase_the_counter_and_wrap() {
    let config = SimulatorConfig {
        press_every: Some(Duration::from_millis(40)),
        initial_presses: u16::MAX,
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let answer = poll_button(&socket, scope.control, 1).await;
    let stats = scope.shut_down().await;
    assert!(stats.presses >= 2, "{stats:?}");
    assert!(answer.presses >= 1 && answer.presses < 100, "{answer:?}");
}

#[tokio::test]
async fn certain_loss_sends_nothing_but_counts_frames() {
    let config = SimulatorConfig {
        faults: Faults {
            loss: 1.0,
            ..Faults::default()
        },
        max_frames: Some(3),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    assert!(receive(&socket, QUIET).await.is_none());
    let stats = scope.shut_down().await;
    assert_eq!(stats.frames_sent, 3);
    assert_eq!(stats.fragments_sent, 0);
    assert!(stats.fragments_lost >= 3);
}

#[tokio::test]
async fn garbage_arrives_from_the_video_port_between_intact_fragments() {
    let config = SimulatorConfig {
        faults: Faults {
            garbage: 0.5,
            ..Faults::default()
        },
        seed: 99,
        max_frames: Some(3),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    // Relabelled junk can reuse a genuine (frame id, index), so keep every candidate.
    let mut candidates: BTreeMap<(u8, u16), Vec<Vec<u8>>> = BTreeMap::new();
    let mut junk = 0;
    for (datagram, from) in receive_until_quiet(&socket).await {
        assert_eq!(from, scope.video);
        match Fragment::parse(&datagram) {
            Ok(f) => candidates
                .entry((f.header.frame_id, f.header.index))
                .or_default()
                .push(f.payload.to_vec()),
            _ => junk += 1,
        }
    }
    let stats = scope.shut_down().await;
    assert!(junk > 0);
    assert!(stats.garbage_sent as usize >= junk);
    for id in 0..3u8 {
        let genuine = fragment_payloads(&small_pattern_frame(u64::from(id)), 300);
        for (index, payload) in genuine.iter().enumerate() {
            let got = candidates
                .get(&(id, index as u16))
                .cloned()
                .unwrap_or_default();
            assert!(got.contains(payload), "frame {id} fragment {index}");
        }
    }
}

fn fragment_payloads(jpeg: &[u8], size: usize) -> Vec<Vec<u8>> {
    jpeg.chunks(size).map(<[u8]>::to_vec).collect()
}

#[tokio::test]
async fn file_source_loops_over_the_jpegs_in_the_file() {
    let jpegs: Vec<Vec<u8>> = (0..3).map(small_pattern_frame).collect();
    let mut contents = b"junk".to_vec();
    for jpeg in &jpegs {
        contents.extend_from_slice(jpeg);
        contents.extend_from_slice(b"\0\0");
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &contents).unwrap();
    let config = SimulatorConfig {
        source: FrameSource::File(file.path().to_path_buf()),
        max_frames: Some(5),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let frames = receive_frames(&socket, 5).await;
    for (id, jpeg) in frames {
        assert_eq!(jpeg, jpegs[usize::from(id) % 3], "frame {id}");
    }
    scope.shut_down().await;
}

#[tokio::test]
async fn file_without_a_jpeg_is_an_error_naming_it() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"no pictures here").unwrap();
    let config = SimulatorConfig {
        source: FrameSource::File(file.path().to_path_buf()),
        ..loopback_config()
    };
    let error = Simulator::bind(config).await.unwrap_err().to_string();
    assert!(
        error.contains(&file.path().display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn busy_port_is_an_error_naming_the_address() {
    let squatter = client().await;
    let busy = squatter.local_addr().unwrap();
    let config = SimulatorConfig {
        control_port: busy.port(),
        ..loopback_config()
    };
    let error = format!("{:#}", Simulator::bind(config).await.unwrap_err());
    assert!(error.contains(&busy.to_string()), "{error}");
    assert!(error.contains("control"), "{error}");
}

#[test]
fn invalid_settings_are_rejected_before_binding() {
    let base = SimulatorConfig::default();
    assert_eq!(base.validate(), Ok(()));
    let bad = [
        SimulatorConfig {
            fps: 0.0,
            ..base.clone()
        },
        SimulatorConfig {
            fps: f64::NAN,
            ..base.clone()
        },
        SimulatorConfig {
            fragment_payload: 0,
            ..base.clone()
        },
        SimulatorConfig {
            fragment_payload: 70_000,
            ..base.clone()
        },
        SimulatorConfig {
            source: FrameSource::Pattern {
                width: 0,
                height: 480,
                subsampling: Subsampling::S420,
                quality: 85,
            },
            ..base.clone()
        },
        SimulatorConfig {
            faults: Faults {
                reorder: -0.1,
                ..Faults::default()
            },
            ..base.clone()
        },
        SimulatorConfig {
            press_every: Some(Duration::ZERO),
            ..base.clone()
        },
        SimulatorConfig {
            idle_timeout: Duration::ZERO,
            ..base.clone()
        },
    ];
    for config in bad {
        assert!(config.validate().is_err(), "{config:?}");
    }
}

#[tokio::test]
async fn vanishing_sends_half_a_frame_then_answers_nothing() {
    let config = SimulatorConfig {
        vanish_mid_frame_after: Some(2),
        ..loopback_config()
    };
    let fragment_count = small_pattern_frame(2).len().div_ceil(300);
    assert!(fragment_count >= 2, "the test needs a multi-fragment frame");
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let mut of_frame_2 = 0;
    for (datagram, _) in receive_until_quiet(&socket).await {
        let header = Fragment::parse(&datagram).unwrap().header;
        assert!(header.frame_id <= 2, "{header:?}");
        if header.frame_id == 2 {
            of_frame_2 += 1;
            assert_ne!(header.kind, FragmentKind::Last);
        }
    }
    assert_eq!(of_frame_2, fragment_count.div_ceil(2));
    // Deaf and mute from now on: no stream, no button answers.
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    assert_no_answer_to_a_poll(&socket, scope.control).await;
    let stats = scope.shut_down().await;
    assert_eq!(stats.frames_sent, 3);
}

#[tokio::test]
async fn interleaved_pairs_mix_two_frames_and_deliver_both() {
    let config = SimulatorConfig {
        faults: Faults {
            interleave: 1.0,
            ..Faults::default()
        },
        max_frames: Some(4),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let mut ids = Vec::new();
    let mut pieces: BTreeMap<u8, BTreeMap<u16, Vec<u8>>> = BTreeMap::new();
    for (datagram, _) in receive_until_quiet(&socket).await {
        let fragment = Fragment::parse(&datagram).unwrap();
        ids.push(fragment.header.frame_id);
        pieces
            .entry(fragment.header.frame_id)
            .or_default()
            .insert(fragment.header.index, fragment.payload.to_vec());
    }
    assert_eq!(&ids[..4], &[0, 1, 0, 1], "alternating: {ids:?}");
    for (id, parts) in pieces {
        let jpeg: Vec<u8> = parts.into_values().flatten().collect();
        assert_eq!(jpeg, small_pattern_frame(u64::from(id)), "frame {id}");
    }
    let stats = scope.shut_down().await;
    assert_eq!((stats.frames_sent, stats.frames_interleaved), (4, 2));
}

#[tokio::test]
async fn flood_sends_unparseable_junk_from_the_video_port_then_stops() {
    let config = SimulatorConfig {
        flood: Some(Duration::from_millis(200)),
        max_frames: Some(0),
        ..loopback_config()
    };
    let scope = Running::start(config).await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let mut junk = 0;
    while let Some((datagram, from)) = receive(&socket, QUIET).await {
        assert_eq!(from, scope.video);
        assert!(Fragment::parse(&datagram).is_err());
        junk += 1;
    }
    assert!(junk >= 100, "only {junk} junk datagrams arrived");
    let stats = scope.shut_down().await;
    assert!(stats.flood_sent >= junk, "{stats:?}");
}

#[test]
fn resizing_needs_the_test_pattern() {
    let file = SimulatorConfig {
        source: FrameSource::File("x.mjpeg".into()),
        resize_every: Some(5),
        ..SimulatorConfig::default()
    };
    assert_eq!(file.validate(), Err(ConfigError::Resize(5)));
    let zero = SimulatorConfig {
        resize_every: Some(0),
        ..SimulatorConfig::default()
    };
    assert!(zero.validate().is_err());
}

#[tokio::test]
async fn constant_ids_and_filler_as_some_real_scopes_send_them() {
    let scope = Running::start(SimulatorConfig {
        frame_ids: FrameIds::Constant(42),
        filler: 100,
        max_frames: Some(3),
        ..loopback_config()
    })
    .await;
    let socket = client().await;
    send(&socket, &VideoCommand::Heartbeat.to_bytes(), scope.video).await;
    let mut frames = Vec::new();
    let mut current = Vec::new();
    while frames.len() < 3 {
        let (datagram, _) = receive(&socket, PATIENCE).await.expect("fragments arrive");
        let fragment = Fragment::parse(&datagram).expect("a clean fragment");
        assert_eq!(fragment.header.frame_id, 42);
        current.extend_from_slice(fragment.payload);
        if fragment.header.kind == FragmentKind::Last {
            // The announced size counts the filler.
            assert_eq!(current.len(), fragment.header.frame_size as usize);
            frames.push(std::mem::take(&mut current));
        }
    }
    for (number, frame) in frames.iter().enumerate() {
        let jpeg = small_pattern_frame(number as u64);
        assert_eq!(frame, &with_filler(&jpeg, 100), "frame {number}");
        assert_eq!(crate::jpeg::end_of_image(frame), Ok(jpeg.len()));
    }
    scope.shut_down().await;
}

#[tokio::test]
async fn a_silent_button_port_answers_no_poll() {
    let scope = Running::start(SimulatorConfig {
        silent_button: true,
        ..loopback_config()
    })
    .await;
    let socket = client().await;
    assert_no_answer_to_a_poll(&socket, scope.control).await;
    let stats = scope.shut_down().await;
    assert_eq!((stats.button_polls, stats.button_polls_unanswered), (0, 1));
}
