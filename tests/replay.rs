//! The committed captures (tests/fixtures/captures/, made by make.sh there from the
//! simulator's variants) replayed to a bridge on loopback with `scopecam simulate
//! --replay`: every frame of the capture comes out, decodes to the simulator's pattern,
//! and the button presses recorded in it become snapshots. Nothing leaves the machine.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use scopecam::capture::{Capture, Direction, Port, read_capture};
use scopecam::scope::protocol::{ButtonAnswer, Fragment, FragmentKind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/captures")
        .join(format!("{name}.pcapng"))
}

fn load(name: &str) -> Capture {
    let file = std::fs::File::open(fixture(name)).expect("the fixture exists");
    read_capture(file).expect("a scopecam capture")
}

/// Frames in the capture: one fragment flagged last each.
fn frames_in(capture: &Capture) -> u64 {
    capture
        .of(Direction::FromScope, Port::Video)
        .filter(|r| Fragment::parse(&r.payload).is_ok_and(|f| f.header.kind == FragmentKind::Last))
        .count() as u64
}

/// Presses in the captured button counter: its last value minus its first.
fn presses_in(capture: &Capture) -> u64 {
    let counters: Vec<u16> = capture
        .of(Direction::FromScope, Port::Control)
        .filter_map(|r| ButtonAnswer::parse(&r.payload).ok())
        .map(|a| a.presses)
        .collect();
    match (counters.first(), counters.last()) {
        (Some(first), Some(last)) => u64::from(last.wrapping_sub(*first)),
        _ => 0,
    }
}

/// How far a decoded 160x120 RGB frame is from the nearest phase of the test pattern
/// (mean absolute difference per channel).
fn distance_to_pattern(rgb: &[u8]) -> f64 {
    (0..scopecam::simulator::PATTERN_PERIOD)
        .map(|n| {
            let reference = scopecam::simulator::render_rgb(160, 120, n);
            let sum: u64 = rgb
                .iter()
                .zip(&reference)
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            sum as f64 / rgb.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn replay_to_a_bridge(name: &str, ip: &str) {
    let capture = load(name);
    let frames = frames_in(&capture);
    let presses = presses_in(&capture);
    let length = capture.records.last().unwrap().at;
    assert!(frames >= 10, "{name}: only {frames} frames captured");

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.mjpeg");
    let snapshots = dir.path().join("snapshots");
    let path = fixture(name);
    let replay = path.to_str().unwrap();
    let _scope = Proc::spawn("replay", &["simulate", "--replay", replay, "--bind", ip]);
    std::thread::sleep(Duration::from_millis(300));
    let sink = format!("mjpeg:{}", output.display());
    let args = [
        "run",
        "--config",
        "/dev/null",
        "--scope",
        ip,
        "--output",
        &sink,
        "--snapshot-dir",
        snapshots.to_str().unwrap(),
    ];
    // Every captured press is to be saved: the captures press faster than the
    // snapshot interval a bridge keeps by default.
    let mut bridge = Proc::spawn_with("bridge", &args, |cmd| {
        cmd.env("SCOPECAM_SUMMARY_INTERVAL_S", "1");
        cmd.env("SCOPECAM_SNAPSHOT_MIN_INTERVAL_MS", "0");
    });
    // The whole capture plays, then a little more for the last poll's answer.
    let until = Instant::now() + length + Duration::from_millis(1500);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    bridge.terminate();
    assert!(bridge.wait_for_exit(Duration::from_secs(10)).success());
    let log = bridge.stderr();

    let (written, skipped, dropped) = final_counts(&log);
    assert_eq!(
        (written + skipped, dropped),
        (frames, 0),
        "{name}: frames out and dropped; log:\n{log}"
    );
    let jpegs = split_mjpeg(&std::fs::read(&output).unwrap());
    assert_eq!(jpegs.len() as u64, written, "{name}");
    for (i, jpeg) in jpegs.iter().enumerate() {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
        let rgb = decoder
            .decode()
            .unwrap_or_else(|e| panic!("{name}: frame {i}: {e}"));
        let info = decoder.info().unwrap();
        assert_eq!((info.width, info.height), (160, 120), "{name}: frame {i}");
        if i == 0 {
            let distance = distance_to_pattern(&rgb);
            assert!(distance < 12.0, "{name}: {distance} from the pattern");
        }
    }
    let saved = std::fs::read_dir(&snapshots).map_or(0, |d| d.count() as u64);
    assert_eq!(saved, presses, "{name}: snapshots; log:\n{log}");
    let silent_lines = log.matches("has not answered a button poll").count();
    if capture.of(Direction::FromScope, Port::Control).count() == 0 {
        assert_eq!(silent_lines, 1, "{name}: said once; log:\n{log}");
    } else {
        assert!(presses >= 1, "{name}: the capture has button presses");
        assert_eq!(silent_lines, 0, "{name}: log:\n{log}");
    }
}

#[test]
fn replay_as_the_protocol_write_up() {
    replay_to_a_bridge("protocol", "127.83.0.1");
}

#[test]
fn replay_constant_frame_ids() {
    replay_to_a_bridge("constant-id", "127.83.0.2");
}

#[test]
fn replay_frame_ids_in_steps() {
    replay_to_a_bridge("id-steps", "127.83.0.3");
}

#[test]
fn replay_filler_after_the_end_marker() {
    replay_to_a_bridge("trailing-filler", "127.83.0.4");
}

#[test]
fn replay_a_silent_button_port() {
    replay_to_a_bridge("silent-button", "127.83.0.5");
}

#[test]
fn replay_refuses_what_is_not_a_whole_scopecam_capture() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("protocol")).unwrap();
    let cut = dir.path().join("cut.pcapng");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a capture\n").unwrap();
    for (file, says) in [
        (&cut, "the capture is damaged at block"),
        (&text, "not a pcapng file"),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["simulate", "--bind", "127.83.0.9", "--replay"])
            .arg(file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}
