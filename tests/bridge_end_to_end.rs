//! Simulator + bridge as separate processes over loopback, with faults on:
//! the pictures that come out must be the pictures that went in.

mod common;

use std::time::Duration;

use common::*;
use jpeg_encoder::SamplingFactor;

/// For each output frame, the source frame it matches best and how well.
fn match_frames(outputs: &[Planes], references: &[Planes]) -> Vec<(usize, f64, f64)> {
    outputs
        .iter()
        .map(|out| {
            let mut scores: Vec<(usize, f64)> = references
                .iter()
                .enumerate()
                .map(|(i, r)| (i, psnr(out, r)))
                .collect();
            scores.sort_by(|a, b| b.1.total_cmp(&a.1));
            (scores[0].0, scores[0].1, scores[1].1)
        })
        .collect()
}

fn run_y4m_case(ip: &str, sampling: SamplingFactor, width: u16, height: u16, faults: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let sources = make_source_frames(8, width, height, sampling);
    let source_file = write_mjpeg(dir.path(), &sources);
    let out = dir.path().join("out.y4m");
    let mut args = vec![
        "--file",
        source_file.to_str().unwrap(),
        "--fps",
        "25",
        "--seed",
        "7",
    ];
    args.extend_from_slice(faults);
    let _sim = simulator(ip, &args);
    let mut bridge = bridge(
        ip,
        &[
            "--output",
            &format!("y4m:{}", out.display()),
            "--frames",
            "24",
        ],
    );
    let status = bridge.wait_for_exit(Duration::from_secs(60));
    let log = bridge.stderr();
    assert!(status.success(), "bridge failed: {status}\n{log}");

    let (header, frames) = parse_y4m(&std::fs::read(&out).unwrap());
    assert!(header.contains("C422"), "{header}");
    assert!(header.contains("XCOLORRANGE=LIMITED"), "{header}");
    assert_eq!(frames.len(), 24, "--frames 24 must write exactly 24 frames");
    let references: Vec<Planes> = sources.iter().map(|j| reference_planes(j)).collect();
    for (n, (index, best, second)) in match_frames(&frames, &references).into_iter().enumerate() {
        assert!(
            best > 38.0,
            "output frame {n} matches source {index} at only {best:.1} dB\n{log}"
        );
        assert!(
            best > second + 6.0,
            "output frame {n} is ambiguous ({best:.1} vs {second:.1} dB)"
        );
    }
}

#[test]
fn faulty_link_still_delivers_exact_pictures_422() {
    run_y4m_case(
        "127.71.0.1",
        SamplingFactor::F_2_1,
        320,
        240,
        &[
            "--loss",
            "0.02",
            "--duplicate",
            "0.1",
            "--reorder",
            "0.1",
            "--garbage",
            "0.1",
            "--fragment-size",
            "700",
        ],
    );
}

#[test]
fn faulty_link_still_delivers_exact_pictures_420_odd_size() {
    run_y4m_case(
        "127.71.0.2",
        SamplingFactor::F_2_2,
        161,
        121,
        &[
            "--loss",
            "0.01",
            "--duplicate",
            "0.05",
            "--reorder",
            "0.05",
            "--garbage",
            "0.05",
        ],
    );
}

#[test]
fn mjpeg_output_is_the_scopes_bytes_unchanged() {
    let ip = "127.71.0.3";
    let dir = tempfile::tempdir().unwrap();
    let sources = make_source_frames(5, 200, 150, SamplingFactor::F_2_1);
    let source_file = write_mjpeg(dir.path(), &sources);
    let out = dir.path().join("out.mjpeg");
    let _sim = simulator(
        ip,
        &[
            "--file",
            source_file.to_str().unwrap(),
            "--fps",
            "25",
            "--reorder",
            "0.2",
            "--duplicate",
            "0.2",
        ],
    );
    let mut bridge = bridge(
        ip,
        &[
            "--output",
            &format!("mjpeg:{}", out.display()),
            "--frames",
            "10",
        ],
    );
    let status = bridge.wait_for_exit(Duration::from_secs(60));
    assert!(status.success(), "{}", bridge.stderr());
    let written = split_mjpeg(&std::fs::read(&out).unwrap());
    assert_eq!(written.len(), 10);
    for frame in &written {
        assert!(
            sources.contains(frame),
            "a written frame is not one the scope sent"
        );
    }
}

#[test]
fn button_presses_save_the_next_frames_original_bytes() {
    let ip = "127.71.0.4";
    let dir = tempfile::tempdir().unwrap();
    let sources = make_source_frames(4, 160, 120, SamplingFactor::F_2_2);
    let source_file = write_mjpeg(dir.path(), &sources);
    let snaps = dir.path().join("snaps");
    let _sim = simulator(
        ip,
        &[
            "--file",
            source_file.to_str().unwrap(),
            "--fps",
            "20",
            "--press-every",
            "0.5",
        ],
    );
    let started = std::time::Instant::now();
    let mut bridge = bridge(
        ip,
        &["--snapshot-dir", snaps.to_str().unwrap(), "--frames", "60"],
    );
    let status = bridge.wait_for_exit(Duration::from_secs(60));
    // On a loaded machine the (debug) simulator streams slower than 20 fps,
    // so the run takes longer and more presses fall into it.
    let most_presses = (started.elapsed().as_secs_f64() / 0.5).ceil() as usize + 2;
    let log = bridge.stderr();
    assert!(status.success(), "{log}");
    let mut names: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap_or_else(|e| panic!("no snapshot dir ({e})\n{log}"))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // 60 frames at 20 fps is about 3 s: presses every 0.5 s give about 6.
    assert!(
        (3..=most_presses.max(8)).contains(&names.len()),
        "{} snapshots: {names:?}\n{log}",
        names.len()
    );
    for name in &names {
        assert!(name.ends_with(".jpg"), "{name}");
        let bytes = std::fs::read(snaps.join(name)).unwrap();
        assert!(
            sources.contains(&bytes),
            "snapshot {name} is not a frame the scope sent byte for byte"
        );
    }
    assert!(log.contains("snapshot saved to"), "{log}");
}

#[test]
fn y4m_output_is_readable_by_ffmpeg() {
    let Some(ffmpeg) = which("ffmpeg") else {
        assert!(std::env::var_os("CI").is_none(), "CI must install ffmpeg");
        eprintln!("ffmpeg not installed: skipping");
        return;
    };
    let ip = "127.71.0.5";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let _sim = simulator(ip, &["--width", "320", "--height", "240", "--fps", "25"]);
    let mut bridge = bridge(
        ip,
        &[
            "--output",
            &format!("y4m:{}", out.display()),
            "--frames",
            "5",
        ],
    );
    assert!(
        bridge.wait_for_exit(Duration::from_secs(60)).success(),
        "{}",
        bridge.stderr()
    );
    let probe = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-i"])
        .arg(&out)
        .args(["-f", "rawvideo", "-pix_fmt", "yuyv422", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.success(), "{log}");
    assert_eq!(probe.stdout.len(), 320 * 240 * 2 * 5, "{log}");
    assert!(log.contains("yuv422p") && log.contains("320x240"), "{log}");
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

#[test]
fn bridge_rides_out_a_scope_that_disappears_and_comes_back() {
    let ip = "127.71.0.6";
    let dir = tempfile::tempdir().unwrap();
    let sources = make_source_frames(3, 96, 64, SamplingFactor::F_2_1);
    let source_file = write_mjpeg(dir.path(), &sources);
    let out = dir.path().join("out.mjpeg");
    let sim_args = ["--file", source_file.to_str().unwrap(), "--fps", "20"];
    let mut sim = simulator(ip, &sim_args);
    let mut bridge = bridge(
        ip,
        &[
            "--output",
            &format!("mjpeg:{}", out.display()),
            "--frames",
            "60",
        ],
    );
    // Unplug only once pictures flow, however slowly a loaded machine starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while split_mjpeg(&std::fs::read(&out).unwrap_or_default()).len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "no frames before the unplug"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sim.child.kill().unwrap(); // unplugged: no stop, no goodbye
    sim.child.wait().unwrap();
    // Twice the 2 s stall timeout, so the stall is seen even under load.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        bridge.child.try_wait().unwrap().is_none(),
        "the bridge must keep running without a scope"
    );
    let _sim = simulator(ip, &sim_args);
    let status = bridge.wait_for_exit(Duration::from_secs(60));
    let log = bridge.stderr();
    assert!(status.success(), "{log}");
    assert!(log.contains("no video from the scope"), "{log}");
    assert!(log.contains("video from the scope is back"), "{log}");
    let written = split_mjpeg(&std::fs::read(&out).unwrap());
    assert_eq!(written.len(), 60);
    assert!(written.iter().all(|f| sources.contains(f)));
}
