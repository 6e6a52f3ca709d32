//! Chaos: the simulated scope (or someone else on the wire) misbehaves in one
//! way per test, simulator and bridge running as separate processes over
//! loopback (127.73.0.x; nothing leaves this machine), and the bridge must
//! ride it out.
//!
//! Besides its own checks, every test asserts, through [`Scenario::finish`]:
//! - the bridge is still running when the test ends it, exits 0 on SIGTERM,
//!   never panics, and prints a final summary whose frame count is the
//!   number of frames in the output;
//! - only valid frames reach the output: every MJPEG frame is byte for byte
//!   a JPEG the scope sent, every y4m picture matches a source frame decoded
//!   independently (jpeg-decoder, float BT.601) at [`MIN_PSNR_DB`] or better;
//! - peak resident memory (VmHWM) stays under [`MEMORY_LIMIT_MIB`];
//! - nothing lands in the snapshot directory but what the test's presses allow.
//!
//! The hostile-peer tests (large, progressive, spoofed, button flood) also bound the
//! bridge's CPU time (from /proc, a budget of work rather than a wall-clock limit).
//!
//! Time limits are generous on purpose (the machine is shared, the bridge is
//! a debug build): they catch hangs and stalls, not slowness.

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::chaos::*;
use common::*;
use jpeg_encoder::SamplingFactor;
use scopecam::scope::protocol::video::fragment_frame;
use scopecam::scope::protocol::{ButtonAnswer, ButtonRequest};
use scopecam::simulator::{Subsampling, alternate_size, encode_pattern_frame};

/// A 96x64 picture needs about 6 MB in a debug build; 64 MiB means a leak
/// or a buffer sized by the wire, not noise.
const MEMORY_LIMIT_MIB: u64 = 64;
/// Output pictures must match a source this well. The reference goes through RGB, which
/// clips what JPEG's ringing pushes beyond the RGB cube at the test pattern's saturated
/// edges, and smooths chroma as it upsamples it; the bridge hands out a 4:2:2 or 4:2:0
/// JPEG's own samples. On the pattern's small pictures the two differ by 34.7 dB at worst
/// (48x32), while any other picture of the pattern scores about 17 dB.
const MIN_PSNR_DB: f64 = 32.0;
/// After a fault ends, a fresh frame must be out within this long.
const RECOVERY: Duration = Duration::from_secs(3);
/// Upper bound for anything that should take seconds; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(40);
/// CPU the (debug) bridge may spend on starting and on its idle loop, and on each frame it
/// is sent, whatever that frame holds. Decoding one 4096x4096 or progressive 1080p frame
/// costs far more than the per-frame share; refusing it from its header costs little.
const CPU_BASE: Duration = Duration::from_millis(1000);
const CPU_PER_FRAME: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq)]
enum Output {
    Mjpeg,
    Y4m,
}

/// One test's source frames, output file and processes.
struct Scenario {
    ip: &'static str,
    _dir: tempfile::TempDir,
    /// The bridge's snapshot directory.
    snaps: PathBuf,
    sources: Vec<Vec<u8>>,
    source_file: PathBuf,
    out: PathBuf,
    output: Output,
}

impl Scenario {
    /// `frames` distinct 96x64 4:2:2 JPEGs for the simulator to loop over.
    fn new(ip: &'static str, frames: usize, output: Output) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let sources = make_source_frames(frames, 96, 64, SamplingFactor::F_2_1);
        let source_file = write_mjpeg(dir.path(), &sources);
        let out = dir.path().join(match output {
            Output::Mjpeg => "out.mjpeg",
            Output::Y4m => "out.y4m",
        });
        Scenario {
            ip,
            snaps: dir.path().join("snaps"),
            _dir: dir,
            sources,
            source_file,
            out,
            output,
        }
    }

    /// The simulator looping over the sources at 30 fps (unless `extra`
    /// says otherwise), with `extra` flags.
    fn simulator(&self, extra: &[&str]) -> (Proc, LogTail) {
        let mut args = vec!["--file", self.source_file.to_str().unwrap(), "--seed", "7"];
        if !extra.contains(&"--fps") {
            args.extend_from_slice(&["--fps", "30"]);
        }
        args.extend_from_slice(extra);
        let mut sim = simulator(self.ip, &args);
        let log = LogTail::attach(&mut sim);
        (sim, log)
    }

    fn bridge(&self) -> (Proc, LogTail) {
        self.bridge_with(&[])
    }

    /// The bridge with extra `SCOPECAM_` settings.
    fn bridge_with(&self, env: &[(&str, &str)]) -> (Proc, LogTail) {
        let sink = match self.output {
            Output::Mjpeg => format!("mjpeg:{}", self.out.display()),
            Output::Y4m => format!("y4m:{}", self.out.display()),
        };
        let snaps = self.snaps.to_str().unwrap();
        let args = ["run", "--config", "/dev/null", "--scope", self.ip];
        let more = ["--output", &sink, "--snapshot-dir", snaps];
        let mut bridge = Proc::spawn_with("bridge", &[&args[..], &more[..]].concat(), |cmd| {
            cmd.env("SCOPECAM_SUMMARY_INTERVAL_S", "1");
            for (key, value) in env {
                cmd.env(key, value);
            }
        });
        let log = LogTail::attach(&mut bridge);
        (bridge, log)
    }

    /// Names in the snapshot directory (none if it was never created).
    fn snapshot_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.snaps)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whole frames in the output so far.
    fn count(&self) -> usize {
        match self.output {
            Output::Mjpeg => mjpeg_frame_count(&self.out),
            Output::Y4m => y4m_frame_count(&self.out),
        }
    }

    fn wait_for_frames(&self, at_least: usize, what: &str) {
        wait_for_frames(|| self.count(), at_least, PATIENCE, what);
    }

    /// Simulator with `sim_flags` and bridge, until `frames` frames are out;
    /// then [`Scenario::finish`].
    fn run(&self, sim_flags: &[&str], frames: usize) -> Stopped {
        let (_sim, _sim_log) = self.simulator(sim_flags);
        let (mut bridge, log) = self.bridge();
        self.wait_for_frames(frames, &format!("{sim_flags:?}"));
        self.finish(&mut bridge, log)
    }

    /// Stops the bridge and checks the invariants every chaos test shares
    /// (see the module comment). Returns what the bridge left behind.
    fn finish(&self, bridge: &mut Proc, log: LogTail) -> Stopped {
        let stopped = stop_bridge(bridge, log, MEMORY_LIMIT_MIB);
        let snapshots = self.snapshot_files();
        assert!(
            snapshots.len() as u64 <= stopped.summary.presses,
            "more snapshot files than presses: {snapshots:?}\n{}",
            stopped.summary.line
        );
        assert!(
            !snapshots.iter().any(|n| n.ends_with(".part")),
            "{snapshots:?}"
        );
        let written = match self.output {
            Output::Mjpeg => self.check_mjpeg(&stopped.log),
            Output::Y4m => self.check_y4m(&stopped.log),
        };
        assert_eq!(
            stopped.summary.written, written as u64,
            "the summary must count what was written: {}",
            stopped.summary.line
        );
        eprintln!(
            "{}: {written} frames, peak RSS {} KiB; {}",
            self.ip, stopped.peak_rss_kib, stopped.summary.line
        );
        stopped
    }

    /// Every written frame is one of the sources, byte for byte. Returns
    /// the index of the source each output frame is.
    fn mjpeg_source_indices(&self, log: &str) -> Vec<usize> {
        split_mjpeg(&std::fs::read(&self.out).unwrap())
            .iter()
            .enumerate()
            .map(|(n, frame)| {
                self.sources
                    .iter()
                    .position(|s| s == frame)
                    .unwrap_or_else(|| {
                        panic!("output frame {n} is not a JPEG the scope sent\n{log}")
                    })
            })
            .collect()
    }

    fn check_mjpeg(&self, log: &str) -> usize {
        self.mjpeg_source_indices(log).len()
    }

    fn check_y4m(&self, log: &str) -> usize {
        let references: Vec<Planes> = self.sources.iter().map(|j| reference_planes(j)).collect();
        check_y4m_against(&self.out, &references, log)
    }
}

/// Every picture in the y4m file matches one of `references` at
/// [`MIN_PSNR_DB`] or better. Returns the number of pictures.
fn check_y4m_against(path: &std::path::Path, references: &[Planes], log: &str) -> usize {
    let (header, frames) = parse_y4m(&std::fs::read(path).unwrap());
    assert!(header.contains("C422"), "{header}");
    for (n, frame) in frames.iter().enumerate() {
        let best = references
            .iter()
            .filter(|r| (r.width, r.height) == (frame.width, frame.height))
            .map(|r| psnr(frame, r))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            best >= MIN_PSNR_DB,
            "output picture {n} matches no source (best {best:.1} dB)\n{log}"
        );
    }
    frames.len()
}

/// Loss of a fifth of all fragments. Must hold: frames missing a fragment
/// are dropped and counted (as superseded once a newer frame is delivered,
/// or incomplete when they expire), never written half-filled; the rest
/// come out intact, and the stream keeps flowing.
#[test]
fn a_fifth_of_the_fragments_lost() {
    let s = Scenario::new("127.73.0.1", 8, Output::Y4m);
    let stopped = s.run(&["--loss", "0.2", "--fragment-size", "1000"], 30);
    assert!(
        stopped.summary.reassembly_drops > 0,
        "20 % loss must cost frames: {}",
        stopped.summary.line
    );
}

/// Half of all fragments sent twice. Must hold: duplicates cost no frames
/// (see [`assert_costs_no_frames`]) and never make a frame come out twice
/// or corrupted.
#[test]
fn half_the_fragments_duplicated() {
    assert_costs_no_frames("127.73.0.2", "--duplicate", "duplicates");
}

/// Half of all fragments swapped with the next one. Must hold: reordering
/// within a frame costs no frames (see [`assert_costs_no_frames`]).
#[test]
fn half_the_fragments_reordered() {
    assert_costs_no_frames("127.73.0.3", "--reorder", "reordering");
}

/// Runs `fault` at probability 0.5 on frames of about 12 fragments and
/// checks that at most 5 % of the frames are dropped: none should be, the
/// slack is for a bridge descheduled past a frame timeout on a busy machine.
fn assert_costs_no_frames(ip: &'static str, fault: &str, what: &str) {
    let s = Scenario::new(ip, 8, Output::Mjpeg);
    let stopped = s.run(&[fault, "0.5", "--fragment-size", "200"], 60);
    let summary = &stopped.summary;
    assert!(
        summary.reassembly_drops * 20 <= summary.written,
        "{what} must not cost frames: {}",
        summary.line
    );
}

/// Junk before 30 % of the fragments: truncated fragments, 9000-byte
/// datagrams with self-consistent headers claiming a real fragment's place,
/// payload-size and frame-size fields that lie (too small, or up to 4 GiB),
/// bogus indices, foreign frame ids, random bytes. Must hold: unparseable
/// ones are counted as malformed, frames they spoil are dropped and
/// counted, nothing sized by a lie is allocated (memory bound), and only
/// intact pictures come out.
#[test]
fn truncated_oversized_and_lying_datagrams() {
    let s = Scenario::new("127.73.0.4", 8, Output::Y4m);
    let stopped = s.run(&["--garbage", "0.3", "--fragment-size", "500"], 30);
    let summary = &stopped.summary;
    assert!(summary.malformed > 0, "{}", summary.line);
    assert!(
        summary.reassembly_drops > 0,
        "junk in a frame's place must cost that frame: {}",
        summary.line
    );
}

/// Half of the frames sent with their fragments alternating with the next
/// frame's. Must hold: both frames of a pair are reassembled side by side;
/// the only frames lost are older ones finishing after a newer one was
/// delivered (superseded), at most a quarter of them.
#[test]
fn consecutive_frames_interleaved() {
    let s = Scenario::new("127.73.0.5", 8, Output::Mjpeg);
    let (mut sim, sim_log) = s.simulator(&["--interleave", "0.5", "--fragment-size", "200"]);
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(60, "interleaved frames");
    let stopped = s.finish(&mut bridge, log);
    let summary = &stopped.summary;
    let others = summary.reassembly_drops - summary.drops("superseded");
    assert!(
        others * 20 <= summary.written && summary.drops("superseded") * 4 <= summary.written,
        "interleaving must cost few frames: {}",
        summary.line
    );
    sim.terminate();
    sim.wait_for_exit(Duration::from_secs(10));
    let sim_text = sim_log.finish();
    let pairs = number_after(&sim_text, "frames_interleaved: ");
    assert!(
        pairs.is_some_and(|n| n > 0),
        "the simulator interleaved nothing:\n{sim_text}"
    );
}

/// More than 300 frames, so the one-byte frame id wraps from 255 to 0 at
/// least once, with some duplication and reordering around it. Must hold:
/// the stream does not stall or drop frames at the wrap (at most 5 %
/// dropped), and frames come out in the order sent: with 7 sources looped,
/// each output frame is the source after the previous one, except where
/// the summary counts a frame not written (skipped or dropped) in between.
#[test]
fn frame_ids_wrap_past_255() {
    let s = Scenario::new("127.73.0.6", 7, Output::Mjpeg);
    let (_sim, _sim_log) = s.simulator(&[
        "--fps",
        "100",
        "--duplicate",
        "0.1",
        "--reorder",
        "0.1",
        "--fragment-size",
        "300",
    ]);
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(320, "past the frame id wrap");
    let stopped = s.finish(&mut bridge, log);
    let order = s.mjpeg_source_indices(&stopped.log);
    let summary = &stopped.summary;
    let out_of_sequence = order
        .windows(2)
        .filter(|w| w[1] != (w[0] + 1) % s.sources.len())
        .count() as u64;
    assert!(
        out_of_sequence <= summary.skipped + summary.reassembly_drops,
        "{out_of_sequence} steps out of sequence, more than frames not written: \
         {}\n{order:?}",
        summary.line
    );
    assert!(
        summary.reassembly_drops * 20 <= summary.written,
        "{}",
        summary.line
    );
}

/// Valid fragments of a picture the scope never sent, with every frame id,
/// from another address on the scope's port and from the scope's address
/// on another port, while the real scope streams. Must hold: they are
/// ignored and counted as foreign, and none of them ever reaches the output.
#[test]
fn fragments_from_foreign_senders() {
    let s = Scenario::new("127.73.0.7", 8, Output::Mjpeg);
    let (_sim, _sim_log) = s.simulator(&["--fragment-size", "300"]);
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(1, "first frame");
    let ports = udp_ports(bridge.child.id());
    assert!(!ports.is_empty(), "no UDP sockets found for the bridge");
    let intruder = make_source_frames(9, 96, 64, SamplingFactor::F_2_1)
        .pop()
        .unwrap();
    assert!(!s.sources.contains(&intruder));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let senders = [
                UdpSocket::bind("127.73.0.99:8030").unwrap(),
                UdpSocket::bind("127.73.0.7:8031").unwrap(),
            ];
            let mut sent = 0u64;
            'rounds: loop {
                for id in 0..=255u8 {
                    if stop.load(Ordering::Relaxed) {
                        break 'rounds;
                    }
                    for datagram in fragment_frame(&intruder, id, 300) {
                        for socket in &senders {
                            for port in &ports {
                                let _ = socket.send_to(&datagram, ("127.0.0.1", *port));
                                sent += 1;
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            sent
        })
    };
    let before = s.count();
    s.wait_for_frames(before + 60, "frames while intruders send");
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let stopped = s.finish(&mut bridge, log);
    assert!(
        stopped.summary.foreign > 0,
        "{sent} foreign datagrams sent, none counted: {}",
        stopped.summary.line
    );
    assert!(
        stopped.log.contains("ignoring packets from"),
        "{}",
        stopped.log
    );
}

/// Four seconds of unparseable junk sent from the scope's own address and
/// port (so it cannot be dropped unread as foreign) as fast as the
/// simulator can send it, on top of the stream. Must hold: the bridge
/// looks at and counts a large part of it as malformed, stays within its
/// memory bound, and writes a fresh frame within [`RECOVERY`] of the flood's
/// end. Frames during the flood are not required: the kernel may drop the
/// scope's fragments among the junk.
#[test]
fn garbage_flood_at_line_rate() {
    let s = Scenario::new("127.73.0.8", 8, Output::Y4m);
    let (_sim, sim_log) = s.simulator(&["--flood", "4"]);
    let (mut bridge, log) = s.bridge();
    sim_log.wait_for("flood started", PATIENCE, "flood");
    let flood_over = sim_log.wait_for("flood over", PATIENCE, "flood");
    let recovery = time_to_fresh_frame(|| s.count(), flood_over, RECOVERY);
    let stopped = s.finish(&mut bridge, log);
    let sim_text = sim_log.text();
    let flood_line = sim_text.lines().find(|l| l.contains("flood over")).unwrap();
    eprintln!("recovered {recovery:?} after the flood; {flood_line}");
    assert!(
        stopped.summary.malformed >= 10_000,
        "a flood at line rate, yet only {} malformed datagrams counted\n{flood_line}",
        stopped.summary.malformed
    );
}

/// The scope vanishes between two fragments of a frame (half the frame sent,
/// then nothing: unplugged), and comes back as a fresh process with frame ids
/// from 0 again: once within 0.2 s (before the bridge notices the stall),
/// once after 3 s (after it has). Must hold: the half frames are dropped and
/// counted, never written, and a fresh frame comes out within [`RECOVERY`]
/// of each restart; the log says when video stopped and came back.
#[test]
fn scope_stops_mid_frame_and_restarts() {
    let s = Scenario::new("127.73.0.9", 8, Output::Mjpeg);
    let vanish = ["--vanish-mid-frame", "30", "--fragment-size", "300"];
    let (mut bridge, log) = s.bridge();
    for (round, pause) in [(1, Duration::from_millis(200)), (2, Duration::from_secs(3))] {
        let (mut sim, sim_log) = s.simulator(&vanish);
        sim_log.wait_for("vanishing mid-frame", PATIENCE, "vanish");
        sim.child.kill().unwrap(); // no stop packet, no goodbye
        sim.child.wait().unwrap();
        std::thread::sleep(pause);
        let restarted = Instant::now();
        let (_sim, _sim_log) = s.simulator(&[]);
        let recovery = time_to_fresh_frame(|| s.count(), restarted, RECOVERY);
        eprintln!("round {round}: fresh frames {recovery:?} after the restart");
        if round == 2 {
            let stopped = s.finish(&mut bridge, log);
            let summary = &stopped.summary;
            assert!(
                summary.drops("incomplete") + summary.drops("superseded") >= 1,
                "the half frames must be dropped: {}",
                summary.line
            );
            assert!(
                stopped.log.contains("no video from the scope"),
                "{}",
                stopped.log
            );
            assert!(
                stopped.log.contains("video from the scope is back"),
                "{}",
                stopped.log
            );
            return;
        }
        s.wait_for_frames(s.count() + 10, "after the quick restart");
    }
}

/// The test pattern at 96x64 and 48x32, switching every 10 frames. The
/// pattern frames are remade here with the simulator's own encoder.
fn resizing_pattern_frames() -> Vec<Vec<u8>> {
    let (w, h) = alternate_size(96, 64);
    (0..scopecam::simulator::PATTERN_PERIOD)
        .flat_map(|n| {
            [
                encode_pattern_frame(96, 64, Subsampling::S422, 80, n),
                encode_pattern_frame(w, h, Subsampling::S422, 80, n),
            ]
        })
        .collect()
}

/// The simulator sending [`resizing_pattern_frames`] at 30 fps.
fn resizing_simulator(ip: &str) -> Proc {
    let flags = ["--width", "96", "--height", "64", "--subsampling", "422"];
    let more = ["--quality", "80", "--resize-every", "10", "--fps", "30"];
    simulator(ip, &[&flags[..], &more[..]].concat())
}

/// The scope's resolution changes mid-stream (96x64 <-> 48x32 every 10
/// frames). Must hold for MJPEG output: frames of both sizes pass through
/// byte for byte.
#[test]
fn resolution_change_mid_stream_mjpeg() {
    let mut s = Scenario::new("127.73.0.10", 1, Output::Mjpeg);
    s.sources = resizing_pattern_frames();
    let _sim = resizing_simulator(s.ip);
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(45, "frames of both sizes");
    let stopped = s.finish(&mut bridge, log);
    let order = s.mjpeg_source_indices(&stopped.log);
    let small = order.iter().filter(|&&i| i % 2 == 1).count();
    assert!(
        small > 0 && small < order.len(),
        "both sizes must come out: {small} of {} small",
        order.len()
    );
}

/// The same resolution change into y4m, whose stream has one size. Must
/// hold: the pictures of the first size come out intact, those of the other
/// size are skipped and counted as rejected by the output, and the stream
/// goes on.
#[test]
fn resolution_change_mid_stream_y4m() {
    let s = Scenario::new("127.73.0.11", 1, Output::Y4m);
    let _sim = resizing_simulator(s.ip);
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(25, "frames of the first size");
    let stopped = stop_bridge(&mut bridge, log, MEMORY_LIMIT_MIB);
    let references: Vec<Planes> = resizing_pattern_frames()
        .iter()
        .map(|j| reference_planes(j))
        .collect();
    let written = check_y4m_against(&s.out, &references, &stopped.log);
    let summary = &stopped.summary;
    assert_eq!(summary.written, written as u64, "{}", summary.line);
    assert!(
        summary.rejected_by_output > 0,
        "the other size must be rejected by the output: {}",
        summary.line
    );
}

/// Asserts the bridge spent at most [`CPU_BASE`] plus [`CPU_PER_FRAME`] for each of
/// `frames` frames it was sent.
fn assert_cpu_within(stopped: &Stopped, frames: u64, what: &str) {
    let budget = CPU_BASE + CPU_PER_FRAME * frames as u32;
    eprintln!(
        "{what}: CPU {:?} for {frames} frames (budget {budget:?})",
        stopped.cpu
    );
    assert!(
        stopped.cpu <= budget,
        "{what}: the bridge used {:?} of CPU for {frames} frames, above {budget:?}: {}",
        stopped.cpu,
        stopped.summary.line
    );
}

/// A scope of the test's own on `ip`'s video port: once the bridge sends its first
/// datagram (the start command), streams `frames` in a loop at about 20 fps, pacing the
/// fragments at about 50 MB/s as a link would (loopback delivers a burst at once, and a
/// socket buffer overflows on a megabyte). Returns how many frames it sent once `stop` is set.
fn paced_scope(
    ip: &'static str,
    frames: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let socket = UdpSocket::bind((ip, 8030)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let (_, bridge) = socket.recv_from(&mut buf).unwrap();
        let mut sent = 0u64;
        for (id, frame) in (0..=255u8).cycle().zip(frames.iter().cycle()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            for (n, datagram) in fragment_frame(frame, id, 1400).iter().enumerate() {
                let _ = socket.send_to(datagram, bridge);
                if n % 32 == 31 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        sent
    })
}

/// A hostile peer on the scope's address sends `hostile` after every real frame. Must
/// hold: the hostile frames are refused from their header and counted as `reason`, with
/// one log line; only the real frames come out (checked against the sources); the CPU,
/// memory and file bounds hold.
fn hostile_frames_are_refused(ip: &'static str, hostile: Vec<u8>, reason: &str) {
    let s = Scenario::new(ip, 4, Output::Y4m);
    let mix: Vec<Vec<u8>> = s
        .sources
        .iter()
        .flat_map(|good| [good.clone(), hostile.clone()])
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let scope = paced_scope(ip, mix, Arc::clone(&stop));
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(30, reason);
    let stopped = s.finish(&mut bridge, log);
    stop.store(true, Ordering::Relaxed);
    let sent = scope.join().unwrap();
    let summary = &stopped.summary;
    let refused = summary.drops(reason);
    assert!(
        refused * 2 >= summary.written,
        "about one {reason} frame refused per frame written: {}",
        summary.line
    );
    assert_eq!(summary.undecodable, 0, "{}", summary.line);
    assert_eq!(
        stopped.log.matches("dropping a frame: JPEG").count(),
        1,
        "one log line for the kind, not one a frame:\n{}",
        stopped.log
    );
    assert_cpu_within(&stopped, sent, reason);
    assert!(s.snapshot_files().is_empty());
}

/// A baseline JPEG of 4096x4096 (the largest a JPEG header of this decoder's old limit
/// allowed): 48 MiB of RGB and 32 MiB of YUYV if decoded.
#[test]
fn a_4096x4096_jpeg_is_refused() {
    let big = make_source_frames(1, 4096, 4096, SamplingFactor::F_2_2).remove(0);
    hostile_frames_are_refused("127.73.0.12", big, "too_large");
}

/// A progressive JPEG of 1920x1080, a size scopes send: refused for its coding.
#[test]
fn a_progressive_jpeg_is_refused() {
    let rgb = test_picture(3, 1920, 1080);
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    encoder.set_progressive(true);
    encoder
        .encode(&rgb, 1920, 1080, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    hostile_frames_are_refused("127.73.0.13", jpeg, "progressive");
}

/// Frames of the largest size decoded (2592x1944) in a stream of small ones: decoded
/// (the y4m stream keeps its first size and skips them), then the memory they took is
/// given back. Must hold: the peak shows they were decoded (their 4:2:2 planes alone are
/// 9.6 MiB), and resident memory once small frames flow again is back within 4 MiB of
/// what it was before them.
#[test]
fn memory_returns_after_the_largest_frames() {
    let ip = "127.73.0.16";
    let s = Scenario::new(ip, 4, Output::Y4m);
    let big = make_source_frames(1, 2592, 1944, SamplingFactor::F_2_1).remove(0);
    // One paced scope after the other on the scope's address; each learns the bridge's
    // address from its next heartbeat.
    let phase = |frames: Vec<Vec<u8>>, until: usize, what: &str| {
        let stop = Arc::new(AtomicBool::new(false));
        let scope = paced_scope(ip, frames, Arc::clone(&stop));
        s.wait_for_frames(until, what);
        stop.store(true, Ordering::Relaxed);
        scope.join().unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let first = paced_scope(ip, s.sources.clone(), Arc::clone(&stop));
    let (mut bridge, log) = s.bridge();
    let pid = bridge.child.id();
    s.wait_for_frames(30, "small frames");
    stop.store(true, Ordering::Relaxed);
    first.join().unwrap();
    let before = status_kib(pid, "VmRSS");
    let mix: Vec<Vec<u8>> = s
        .sources
        .iter()
        .flat_map(|good| [big.clone(), good.clone()])
        .collect();
    phase(mix, s.count() + 6, "small frames between large ones");
    let peak = status_kib(pid, "VmHWM");
    phase(
        s.sources.clone(),
        s.count() + 30,
        "small frames after the large ones",
    );
    let after = status_kib(pid, "VmRSS");
    let stopped = s.finish(&mut bridge, log);
    eprintln!("resident memory: before {before} KiB, peak {peak} KiB, after {after} KiB");
    assert!(
        peak > before + 8 * 1024,
        "the large frames were decoded: peak {peak} KiB, before {before} KiB\n{}",
        stopped.summary.line
    );
    assert!(
        after <= before + 4 * 1024,
        "resident memory back near {before} KiB after the large frames, not {after} KiB \
         (peak {peak} KiB)\n{}",
        stopped.summary.line
    );
}

/// Someone else on the wire sends a whole stream of valid frames, with the scope's ports
/// but another source address, and from the scope's address but another port, while the
/// real scope streams. Must hold: none of them is shown (every output frame is one the
/// scope sent), they are counted as foreign, and the CPU, memory and file bounds hold.
#[test]
fn a_spoofed_scope_is_not_shown() {
    let s = Scenario::new("127.73.0.14", 4, Output::Mjpeg);
    let (_sim, _sim_log) = s.simulator(&["--fps", "20", "--fragment-size", "1000"]);
    let (mut bridge, log) = s.bridge();
    s.wait_for_frames(1, "first frame");
    let ports = udp_ports(bridge.child.id());
    let fake = make_source_frames(6, 96, 64, SamplingFactor::F_2_1)
        .pop()
        .unwrap();
    assert!(!s.sources.contains(&fake));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let senders = [
                UdpSocket::bind("127.73.0.114:8030").unwrap(),
                UdpSocket::bind("127.73.0.14:8032").unwrap(),
            ];
            let mut frames = 0u64;
            for id in (0..=255u8).cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                for datagram in fragment_frame(&fake, id, 1000) {
                    for socket in &senders {
                        for port in &ports {
                            let _ = socket.send_to(&datagram, ("127.73.0.14", *port));
                        }
                    }
                }
                frames += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            frames
        })
    };
    let before = s.count();
    s.wait_for_frames(before + 40, "frames while the spoofer sends");
    stop.store(true, Ordering::Relaxed);
    let spoofed = sender.join().unwrap();
    let stopped = s.finish(&mut bridge, log);
    assert!(stopped.summary.foreign > 0, "{}", stopped.summary.line);
    // Each spoofed frame went to every socket from both senders.
    assert_cpu_within(&stopped, stopped.summary.written + spoofed, "spoofed scope");
}

/// A peer answering every button poll with the counter 20 presses on (the most one poll
/// may report), ten polls a second: 200 "presses" a second. Must hold: snapshots are
/// spaced by the minimum interval and stop at the file cap, the refusals are counted by
/// reason with one log line for the cap, no part file is left, and the CPU and memory
/// bounds hold.
#[test]
fn a_button_flood_saves_a_bounded_number_of_snapshots() {
    let ip = "127.73.0.15";
    let s = Scenario::new(ip, 4, Output::Mjpeg);
    // The simulator's own button on another port; the flooding peer takes the real one.
    let (_sim, _sim_log) = s.simulator(&["--fps", "20", "--control-port", "50001"]);
    let button = UdpSocket::bind((ip, 50000)).unwrap();
    button
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let peer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut presses = 0u16;
            let mut answered = 0u64;
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = button.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(request) = ButtonRequest::parse(&buf[..len]) else {
                    continue;
                };
                let answer = ButtonAnswer {
                    request: request.counter,
                    presses,
                };
                let _ = button.send_to(&answer.to_bytes(), from);
                presses = presses.wrapping_add(scopecam::scope::button::MAX_PRESSES_PER_POLL);
                answered += 1;
            }
            answered
        })
    };
    let max_files = 4;
    let (mut bridge, log) = s.bridge_with(&[
        ("SCOPECAM_SNAPSHOT_MAX_FILES", "4"),
        ("SCOPECAM_SNAPSHOT_MIN_INTERVAL_MS", "500"),
    ]);
    let started = Instant::now();
    log.wait_for("snapshots are not saved", PATIENCE, "the file cap");
    // A little longer at the cap: refusals must stay refusals.
    s.wait_for_frames(s.count() + 20, "frames at the cap");
    let elapsed = started.elapsed();
    let stopped = s.finish(&mut bridge, log);
    stop.store(true, Ordering::Relaxed);
    let polls = peer.join().unwrap();
    let files = s.snapshot_files();
    let summary = &stopped.summary;
    eprintln!(
        "{polls} polls answered in {elapsed:?}; {files:?}; {}",
        summary.line
    );
    assert_eq!(files.len(), max_files, "{files:?}");
    assert!(summary.presses >= 100, "{}", summary.line);
    assert!(
        number_after(&summary.line, "too_soon=").unwrap_or(0) > 0,
        "{}",
        summary.line
    );
    assert!(
        number_after(&summary.line, "max_files=").unwrap_or(0) > 0,
        "{}",
        summary.line
    );
    assert_eq!(
        stopped.log.matches("snapshots are not saved").count(),
        1,
        "one line for the cap:\n{}",
        stopped.log
    );
    assert_eq!(stopped.log.matches("snapshot saved to").count(), max_files);
    assert_cpu_within(&stopped, summary.written, "button flood");
}
