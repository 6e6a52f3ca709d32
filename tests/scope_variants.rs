//! The bridge against the simulated variants of real scopes (frame ids that
//! do not count up, filler after the JPEG's end marker, a button port that
//! never answers), on loopback. Each run sends a known number of frames and
//! needs most of them out: a bridge that took only about one frame a second
//! would never get there.

mod common;

use std::time::Duration;

use common::{bridge, make_source_frames, simulator, split_mjpeg, write_mjpeg};
use jpeg_encoder::SamplingFactor;

/// Frames the simulated scope sends, and how many of them must come out.
const SENT: u64 = 60;
const NEEDED: u64 = 54;

/// Streams `SENT` frames of a five-frame file with the variant `flags` to a
/// bridge writing MJPEG, which must write `NEEDED` of them. Returns the
/// source frames and what the bridge wrote.
fn stream(ip: &str, flags: &[&str], bridge_flags: &[&str]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let sources = make_source_frames(5, 160, 120, SamplingFactor::F_2_1);
    let source_file = write_mjpeg(dir.path(), &sources);
    let out = dir.path().join("out.mjpeg");
    let sent = SENT.to_string();
    let mut sim_args = vec![
        "--file",
        source_file.to_str().unwrap(),
        "--fps",
        "15",
        "--frames",
        &sent,
    ];
    sim_args.extend_from_slice(flags);
    let _sim = simulator(ip, &sim_args);
    let output = format!("mjpeg:{}", out.display());
    let needed = NEEDED.to_string();
    let mut args = vec!["--output", &output, "--frames", &needed];
    args.extend_from_slice(bridge_flags);
    let mut bridge = bridge(ip, &args);
    let status = bridge.wait_for_exit(Duration::from_secs(90));
    let log = bridge.stderr();
    assert!(
        status.success(),
        "{flags:?}: the bridge did not get {NEEDED} of {SENT} frames\n{log}"
    );
    let written = split_mjpeg(&std::fs::read(&out).unwrap());
    assert_eq!(written.len() as u64, NEEDED, "{log}");
    for frame in &written {
        assert!(
            sources.contains(frame),
            "{flags:?}: a written frame is not one the scope sent\n{log}"
        );
    }
    (sources, written)
}

#[test]
fn constant_frame_id_streams_at_the_full_rate() {
    stream("127.74.0.1", &["--frame-ids", "constant:5"], &[]);
}

#[test]
fn frame_id_stepping_by_200_streams_at_the_full_rate() {
    // A step of 200 is -56 in wrap-around arithmetic: every frame looks
    // older than the one before.
    stream("127.74.0.2", &["--frame-ids", "step:200"], &[]);
}

#[test]
fn shuffled_frame_ids_stream_at_the_full_rate() {
    stream("127.74.0.3", &["--frame-ids", "shuffled"], &[]);
}

#[test]
fn filler_after_the_end_marker_is_cut_off_for_output_and_snapshots() {
    let ip = "127.74.0.4";
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    let (sources, written) = stream(
        ip,
        &[
            "--filler",
            "1000",
            "--frame-ids",
            "constant",
            "--press-every",
            "1",
        ],
        &["--snapshot-dir", snaps.to_str().unwrap()],
    );
    // The written frames are the JPEGs without their filler.
    assert!(written.iter().all(|f| f.ends_with(&[0xFF, 0xD9])));
    let snapshots: Vec<_> = std::fs::read_dir(&snaps)
        .expect("snapshots were saved")
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!snapshots.is_empty());
    for snapshot in &snapshots {
        assert!(snapshot.ends_with(&[0xFF, 0xD9]));
        assert!(
            sources.contains(snapshot),
            "a snapshot is not a frame the scope sent, cut at its end marker"
        );
    }
}

#[test]
fn a_silent_button_port_does_not_stop_the_video() {
    stream(
        "127.74.0.5",
        &["--silent-button", "--frame-ids", "constant"],
        &[],
    );
}
