//! The bridge against a scope played by the test itself: what goes over
//! the wire (heartbeat cadence, button polls, the stop packet) and what
//! the bridge accepts (only its scope's packets).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use scopecam::scope::protocol::video::fragment_frame;
use scopecam::scope::protocol::{ButtonRequest, VideoCommand};

fn bind(addr: &str) -> UdpSocket {
    let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s
}

/// Collects (arrival time, command) on the video port until `until` says stop.
fn record_commands(
    video: &UdpSocket,
    limit: Duration,
    mut until: impl FnMut(&[(Instant, VideoCommand, SocketAddr)]) -> bool,
) -> Vec<(Instant, VideoCommand, SocketAddr)> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && !until(&seen) {
        if let Ok((n, from)) = video.recv_from(&mut buf) {
            if let Ok(cmd) = VideoCommand::parse(&buf[..n]) {
                seen.push((Instant::now(), cmd, from));
            }
        }
    }
    seen
}

#[test]
fn heartbeats_every_half_second_and_stop_on_sigterm() {
    let ip = "127.72.0.1";
    let video = bind(&format!("{ip}:8030"));
    let control = bind(&format!("{ip}:50000"));
    let mut bridge = bridge(ip, &[]);

    let beats = record_commands(&video, Duration::from_secs(10), |s| s.len() >= 7);
    assert!(beats.len() >= 7, "only {} heartbeats in 10 s", beats.len());
    assert!(beats.iter().all(|(_, c, _)| *c == VideoCommand::Heartbeat));
    let gaps: Vec<f64> = beats
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64())
        .collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        (0.4..=0.6).contains(&median),
        "median heartbeat gap {median:.3} s: {gaps:?}"
    );

    // The button is polled too, with a counter that goes up by one.
    let mut buf = [0u8; 64];
    let mut counters = Vec::new();
    while counters.len() < 5 {
        if let Ok((n, _)) = control.recv_from(&mut buf) {
            counters.push(
                ButtonRequest::parse(&buf[..n])
                    .expect("a SETCMD button poll")
                    .counter,
            );
        }
    }
    assert!(
        counters.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{counters:?}"
    );

    bridge.terminate();
    let after = record_commands(&video, Duration::from_secs(5), |s| {
        s.iter().any(|(_, c, _)| *c == VideoCommand::Stop)
    });
    assert!(
        after.iter().any(|(_, c, _)| *c == VideoCommand::Stop),
        "no stop packet after SIGTERM"
    );
    let status = bridge.wait_for_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        bridge.stderr()
    );
}

#[test]
fn only_packets_from_the_scopes_address_and_port_are_accepted() {
    let ip = "127.72.0.2";
    let video = bind(&format!("{ip}:8030"));
    let _control = bind(&format!("{ip}:50000"));
    let foreign_port = bind(&format!("{ip}:8031"));
    let foreign_host = bind("127.72.0.99:8030");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mjpeg");
    let mut bridge = bridge(
        ip,
        &[
            "--output",
            &format!("mjpeg:{}", out.display()),
            "--frames",
            "3",
        ],
    );

    let beats = record_commands(&video, Duration::from_secs(10), |s| !s.is_empty());
    let client = beats.first().expect("a heartbeat").2;
    let genuine: Vec<Vec<u8>> = make_source_frames(3, 64, 48, jpeg_encoder::SamplingFactor::F_2_1);
    let intruder = make_source_frames(5, 64, 48, jpeg_encoder::SamplingFactor::F_2_1)
        .pop()
        .unwrap();
    for (id, frame) in genuine.iter().enumerate() {
        // Foreign senders first, with the same frame id, to try to poison reassembly.
        for datagram in fragment_frame(&intruder, id as u8, 300) {
            foreign_port.send_to(&datagram, client).unwrap();
            foreign_host.send_to(&datagram, client).unwrap();
        }
        video
            .send_to(b"\x66garbage that is not a fragment", client)
            .unwrap();
        for datagram in fragment_frame(frame, id as u8, 300) {
            video.send_to(&datagram, client).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = bridge.wait_for_exit(Duration::from_secs(20));
    let log = bridge.stderr();
    assert!(status.success(), "{log}");
    let written = split_mjpeg(&std::fs::read(&out).unwrap());
    assert_eq!(
        written, genuine,
        "exactly the scope's frames, in order\n{log}"
    );
    assert!(log.contains("ignoring packets from"), "{log}");
}

#[test]
fn bad_flags_and_config_values_exit_2_with_one_line() {
    for args in [
        vec!["run", "--video-port", "99999"],
        vec!["run", "--bogus"],
        vec!["run", "--config", "/dev/null", "--scope", "not-an-ip"],
        vec!["run", "--config", "/dev/null", "--output", "png:/tmp/x"],
        vec!["run", "--config", "/nonexistent/config.toml"],
    ] {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
    }
    let out = std::process::Command::new(BIN)
        .args(["run", "--config", "/dev/null"])
        .env("SCOPECAM_VIDEO_PORT", "eighty")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("video_port"), "{err}");
}

#[test]
fn run_says_in_one_line_when_nothing_is_written() {
    let run = |output: Option<&str>| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([
            "run",
            "--config",
            "/dev/null",
            "--simulate",
            "--frames",
            "2",
        ]);
        if let Some(output) = output {
            cmd.args(["--output", output]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{output:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let log = run(None);
    let hints = log.matches("nothing is decoded or written").count();
    assert_eq!(hints, 1, "the null output is named once:\n{log}");
    assert!(log.contains("--output v4l2"), "{log}");
    let log = run(Some("y4m:/dev/null"));
    assert!(!log.contains("nothing is decoded or written"), "{log}");
}

/// A noisy picture whose JPEG is large (about 500 KB at 608x448, quality 90).
fn large_jpeg(seed: u32) -> Vec<u8> {
    let (w, h) = (608u16, 448u16);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let rgb: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
        .map(|_| {
            // xorshift32: noise defeats the compression, as a detailed scene would.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

#[test]
fn a_burst_of_large_frames_while_the_bridge_cannot_run_is_not_lost() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let ip = "127.81.0.1";
    let video = bind(&format!("{ip}:8030"));
    let _control = bind(&format!("{ip}:50000"));
    let mut bridge = bridge(ip, &["--output", "null"]);
    let beats = record_commands(&video, Duration::from_secs(10), |s| !s.is_empty());
    let client = beats.first().expect("a heartbeat").2;

    // The scope sends at its link's rate while the bridge gets no CPU at all: stopped.
    let frames: Vec<Vec<u8>> = (0..6).map(large_jpeg).collect();
    for frame in &frames {
        assert!(
            (400_000..700_000).contains(&frame.len()),
            "{} bytes",
            frame.len()
        );
    }
    let pid = Pid::from_raw(bridge.child.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    for (id, frame) in frames.iter().enumerate() {
        for fragment in fragment_frame(frame, id as u8, 1450) {
            video.send_to(&fragment, client).unwrap();
        }
    }
    kill(pid, Signal::SIGCONT).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    bridge.terminate();
    assert!(bridge.wait_for_exit(Duration::from_secs(10)).success());
    let log = bridge.stderr();
    let (written, skipped, dropped) = final_counts(&log);
    // Every frame is reassembled; the frame path may skip all but the newest.
    assert_eq!(
        (written + skipped, dropped),
        (6, 0),
        "complete and lost frames; log:\n{log}"
    );
}
