//! The state file `$RUNTIME/IFACE.json` that `scopecam status` reads, and the pieces
//! that fill it: a sampler turning counters into rates and a link state, and the
//! one-line STATUS for systemd. All sans-IO except [`write_atomic`], [`remove`],
//! [`read_state`] and [`pid_is_scopecam`] (the last two are what `scopecam status` and
//! `scopecam probe` use to tell a running bridge from a stale file).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::scope::health::{Health, HealthMonitor};
use crate::stats::{Stats, read};

/// What the link to the scope is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// No video yet since start.
    #[default]
    Waiting,
    Streaming,
    /// Video came, then stopped for longer than `stall_timeout_ms`.
    Stalled,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Waiting => "waiting",
            LinkState::Streaming => "streaming",
            LinkState::Stalled => "stalled",
        }
    }
}

/// Frames dropped on the way, by where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Drops {
    /// Frames the reassembler gave up on, in total and by reason.
    pub reassembly: u64,
    pub reassembly_reasons: BTreeMap<String, u64>,
    pub undecodable: u64,
    /// Refused before decoding, in total and by reason (too_large, progressive,
    /// arithmetic, lossless, hierarchical, precision): what no scope sends.
    pub refused: u64,
    pub refused_reasons: BTreeMap<String, u64>,
    /// Replaced by a newer frame before the frame path took them (it fell behind).
    pub skipped: u64,
    pub rejected_by_output: u64,
    /// Packets, not frames: from the scope but not understood, or from elsewhere.
    pub malformed_packets: u64,
    pub foreign_packets: u64,
}

/// Latency from a frame's last fragment to its picture being written, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyMs {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// The content of `$RUNTIME/IFACE.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BridgeState {
    pub interface: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub updated_at: String,
    /// The camera node apps open (`/dev/videoN`); `null` for file outputs.
    pub device: Option<String>,
    /// The output as the log names it.
    pub output: String,
    pub card_label: String,
    pub slot: u32,
    /// The scope's address.
    pub scope: String,
    pub link_state: LinkState,
    /// Size of the scope's pictures, once one was written.
    pub scope_size: Option<[u32; 2]>,
    /// Complete frames from the scope per second (last second).
    pub scope_fps: f64,
    /// Frames written to the output per second, "no signal" pictures included.
    pub output_fps: f64,
    /// Complete frames from the scope since start.
    pub frames_in: u64,
    /// Scope frames written to the output since start.
    pub frames_out: u64,
    pub drops: Drops,
    pub latency_ms: LatencyMs,
    pub snapshots: u64,
    /// Presses that saved nothing, by reason (too_soon, max_files, max_bytes, low_disk,
    /// failed, no_good_frame); reasons that never happened are left out.
    pub snapshots_not_saved: BTreeMap<String, u64>,
    pub presses: u64,
}

/// The counters the sampler needs, read from the bridge's [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub datagrams: u64,
    pub frames_complete: u64,
    pub frames_written: u64,
    pub idle_frames: u64,
}

impl Counters {
    pub fn read(stats: &Stats) -> Self {
        Counters {
            datagrams: read(&stats.datagrams),
            frames_complete: read(&stats.frames_complete),
            frames_written: read(&stats.frames_written),
            idle_frames: read(&stats.idle_frames),
        }
    }
}

/// Rates and link state from counters sampled about once a second.
#[derive(Debug, Clone)]
pub struct Sampler {
    health: HealthMonitor,
    last: Option<(Instant, Counters)>,
}

/// One sample's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub link_state: LinkState,
    pub scope_fps: f64,
    pub output_fps: f64,
}

impl Sampler {
    /// `stall_timeout`: no video for this long after some came = stalled.
    pub fn new(stall_timeout: Duration) -> Self {
        Sampler {
            health: HealthMonitor::new(stall_timeout),
            last: None,
        }
    }

    pub fn sample(&mut self, now: Instant, counters: Counters) -> Sample {
        let (scope_fps, output_fps) = match self.last {
            Some((at, before)) => {
                let secs = now.saturating_duration_since(at).as_secs_f64().max(1e-3);
                let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
                let written = |c: Counters| c.frames_written + c.idle_frames;
                (
                    rate(counters.frames_complete, before.frames_complete),
                    rate(written(counters), written(before)),
                )
            }
            None => (0.0, 0.0),
        };
        let packets_came = match self.last {
            Some((_, before)) => counters.datagrams > before.datagrams,
            None => counters.datagrams > 0,
        };
        if packets_came {
            self.health.on_packet(now);
        } else {
            self.health.on_tick(now);
        }
        self.last = Some((now, counters));
        Sample {
            link_state: match self.health.state() {
                Health::Waiting => LinkState::Waiting,
                Health::Alive => LinkState::Streaming,
                Health::Silent => LinkState::Stalled,
            },
            scope_fps,
            output_fps,
        }
    }
}

/// Where the frames go, for the STATUS line: `/dev/video42 (Borescope)` or the output.
fn target(state: &BridgeState) -> String {
    match &state.device {
        Some(device) => format!("{device} ({})", state.card_label),
        None => state.output.clone(),
    }
}

/// The one-line STATUS systemd shows for the service.
pub fn status_line(state: &BridgeState) -> String {
    let camera = state.device.is_some();
    match state.link_state {
        LinkState::Streaming => {
            let size = state
                .scope_size
                .map(|[w, h]| format!("{w}x{h} "))
                .unwrap_or_default();
            let fps = state.scope_fps;
            if camera {
                format!("streaming {size}{fps:.0} fps to {}", target(state))
            } else {
                format!("streaming {size}{fps:.0} fps; output {}", target(state))
            }
        }
        LinkState::Waiting if camera => format!(
            "waiting for video from {} on {}; {} shows \"no signal\"",
            state.scope,
            state.interface,
            target(state)
        ),
        LinkState::Waiting => format!(
            "waiting for video from {} on {}; output {}",
            state.scope,
            state.interface,
            target(state)
        ),
        LinkState::Stalled if camera => format!(
            "no signal: the scope on {} stopped sending video; {} shows \"no signal\"",
            state.interface,
            target(state)
        ),
        LinkState::Stalled => format!(
            "no signal: the scope on {} stopped sending video; output {}",
            state.interface,
            target(state)
        ),
    }
}

/// Decides when the STATUS line changes: on a change of link state or picture size
/// only, not on every flicker of the frame rate. A new "streaming" waits one sample so
/// the rate it shows is measured over a whole second.
#[derive(Debug, Clone, Default)]
pub struct StatusTracker {
    shown: Option<(LinkState, Option<[u32; 2]>)>,
    streaming_samples: u32,
}

impl StatusTracker {
    /// The new STATUS line, if it is time for one.
    pub fn on_sample(&mut self, state: &BridgeState) -> Option<String> {
        if state.link_state == LinkState::Streaming {
            self.streaming_samples = self.streaming_samples.saturating_add(1);
        } else {
            self.streaming_samples = 0;
        }
        let key = (state.link_state, state.scope_size);
        if self.shown == Some(key) {
            return None;
        }
        if state.link_state == LinkState::Streaming && self.streaming_samples < 2 {
            return None;
        }
        self.shown = Some(key);
        Some(status_line(state))
    }
}

/// The state file of `interface` in `dir`.
pub fn state_path(dir: &Path, interface: &str) -> PathBuf {
    dir.join(format!("{interface}.json"))
}

/// Writes the state file so readers never see half of it: a temporary file in the same
/// directory, then rename over the old one. Temporary names start with a dot, which
/// `scopecam status` skips.
///
/// The temporary file is never opened through a symlink: a leftover one (or anything
/// else under that name) is unlinked, which does not follow symlinks, and the file is
/// created anew with O_EXCL and O_NOFOLLOW.
pub fn write_atomic(path: &Path, state: &BridgeState) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let mut file = create_fresh(&tmp)?;
    file.write_all(&text)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Creates `path` anew for writing, mode 0644 (readable by `scopecam status` users):
/// whatever was there is unlinked first (which never follows a symlink), and the file is
/// opened with O_EXCL and O_NOFOLLOW, so a planted link cannot redirect the write.
pub fn create_fresh(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

/// The largest state file [`read_state`] reads (a real one is about 1 KiB).
pub const MAX_STATE_BYTES: u64 = 64 * 1024;

/// Reads a state file for `status` and `probe`, which may run as root while the file
/// belongs to the service user: never through a symlink (O_NOFOLLOW), never blocking on
/// a FIFO (O_NONBLOCK), a regular file only, and at most [`MAX_STATE_BYTES`]. A missing
/// file is `NotFound`; anything else that is no state file is `InvalidData` (or the
/// error that stopped the read).
pub fn read_state(path: &Path) -> std::io::Result<BridgeState> {
    let (text, _) = read_regular_file(path, MAX_STATE_BYTES)?;
    serde_json::from_slice(&text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Reads a small file another user may control: never through a symlink
/// (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), a regular file only, at most
/// `max` bytes (else `InvalidData`). Returns its bytes and metadata.
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let mut text = Vec::new();
    file.take(max + 1).read_to_end(&mut text)?;
    if text.len() as u64 > max {
        return Err(invalid(format!("larger than {} KiB", max / 1024)));
    }
    Ok((text, metadata))
}

/// Whether `pid` is a running scopecam, the one rule `status` and `probe` share.
///
/// `kill(pid, 0)` decides whether it runs: EPERM (another user's process) is alive, so
/// this works under `hidepid`, where /proc/PID of the scopecam user is invisible. When
/// `proc`/PID/comm is readable it must say `scopecam` (a recycled pid of another program
/// is not a bridge). `proc` is normally `/proc`.
pub fn pid_is_scopecam(pid: u32, proc: &Path) -> bool {
    if !process_exists(pid) {
        return false;
    }
    match std::fs::read(proc.join(pid.to_string()).join("comm")) {
        Ok(comm) => comm.trim_ascii_end() == b"scopecam",
        Err(_) => true,
    }
}

/// Whether a process `pid` exists, of any user: `kill(pid, 0)` succeeds or answers EPERM.
pub fn process_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // kill(0 or negative) would address process groups.
    raw > 0
        && matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
            Ok(()) | Err(nix::errno::Errno::EPERM)
        )
}

/// A process that has a device open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    /// Its `comm` (the kernel's 15-byte process name), as read.
    pub name: String,
}

/// What a scan of `/proc/*/fd` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderScan {
    /// Processes with an fd on the device, by pid.
    pub holders: Vec<Holder>,
    /// Processes whose fds could be read.
    pub readable: usize,
    /// Processes whose fds could not be read (other users', without root).
    pub unreadable: usize,
}

/// The processes under `proc` (normally `/proc`), other than `exclude`, that have
/// `device` open, from their fd links; `None` when `proc` cannot be listed.
pub fn holders_of(device: &Path, exclude: &[u32], proc: &Path) -> Option<HolderScan> {
    let mut scan = HolderScan::default();
    for entry in std::fs::read_dir(proc).ok()?.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            scan.unreadable += 1;
            continue;
        };
        scan.readable += 1;
        let has_it = fds
            .filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == device));
        if has_it {
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_default();
            scan.holders.push(Holder { pid, name });
        }
    }
    scan.holders.sort_by_key(|h| h.pid);
    Some(scan)
}

/// Removes the state file (and a leftover temporary file); missing files are fine.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(name) = path.file_name() {
        let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
        let _ = std::fs::remove_file(tmp);
    }
}

/// Whether a bridge runs on an interface, from its state file `DIR/IFACE.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgePresence {
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
pub fn bridge_presence(dir: &Path, interface: &str, proc: &Path) -> BridgePresence {
    let file = state_path(dir, interface);
    let pid = match read_state(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BridgePresence::NotRunning,
        Err(_) => None,
        Ok(state) => Some(state.pid).filter(|&pid| pid > 0),
    };
    match pid {
        Some(pid) if pid_is_scopecam(pid, proc) => BridgePresence::Running { pid, file },
        pid => BridgePresence::Stale { pid, file },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn counters(datagrams: u64, complete: u64, written: u64, idle: u64) -> Counters {
        Counters {
            datagrams,
            frames_complete: complete,
            frames_written: written,
            idle_frames: idle,
        }
    }

    #[test]
    fn sampler_measures_rates_and_follows_the_link() {
        let t0 = Instant::now();
        let mut s = Sampler::new(2000 * MS);
        let first = s.sample(t0, counters(0, 0, 0, 5));
        assert_eq!(first.link_state, LinkState::Waiting);
        assert_eq!(first.scope_fps, 0.0);
        let second = s.sample(t0 + 1000 * MS, counters(0, 0, 0, 10));
        assert_eq!(second.link_state, LinkState::Waiting);
        assert_eq!(second.output_fps, 5.0, "no-signal pictures count as output");
        let streaming = s.sample(t0 + 2000 * MS, counters(300, 15, 15, 10));
        assert_eq!(streaming.link_state, LinkState::Streaming);
        assert_eq!((streaming.scope_fps, streaming.output_fps), (15.0, 15.0));
        // Silence: stalled once stall_timeout has passed since the last packet.
        let quiet = s.sample(t0 + 3000 * MS, counters(300, 15, 15, 12));
        assert_eq!(quiet.link_state, LinkState::Streaming);
        let stalled = s.sample(t0 + 4000 * MS, counters(300, 15, 15, 17));
        assert_eq!(stalled.link_state, LinkState::Stalled);
        assert_eq!(stalled.scope_fps, 0.0);
        let back = s.sample(t0 + 5000 * MS, counters(400, 20, 20, 17));
        assert_eq!(back.link_state, LinkState::Streaming);
    }

    fn camera_state(link_state: LinkState) -> BridgeState {
        BridgeState {
            interface: "enx00e04c680001".into(),
            device: Some("/dev/video42".into()),
            output: "v4l2loopback /dev/video42".into(),
            card_label: "Borescope".into(),
            scope: "192.168.10.123".into(),
            link_state,
            scope_size: Some([640, 480]),
            scope_fps: 14.6,
            ..BridgeState::default()
        }
    }

    #[test]
    fn status_lines_say_what_the_camera_shows() {
        assert_eq!(
            status_line(&camera_state(LinkState::Streaming)),
            "streaming 640x480 15 fps to /dev/video42 (Borescope)"
        );
        assert_eq!(
            status_line(&camera_state(LinkState::Waiting)),
            "waiting for video from 192.168.10.123 on enx00e04c680001; \
             /dev/video42 (Borescope) shows \"no signal\""
        );
        let mut file = camera_state(LinkState::Stalled);
        file.device = None;
        file.output = "mjpeg to /tmp/x.mjpeg".into();
        assert_eq!(
            status_line(&file),
            "no signal: the scope on enx00e04c680001 stopped sending video; \
             output mjpeg to /tmp/x.mjpeg"
        );
        file.link_state = LinkState::Streaming;
        assert_eq!(
            status_line(&file),
            "streaming 640x480 15 fps; output mjpeg to /tmp/x.mjpeg"
        );
    }

    #[test]
    fn status_changes_only_with_the_state_and_streaming_waits_a_second() {
        let mut tracker = StatusTracker::default();
        let waiting = camera_state(LinkState::Waiting);
        assert!(tracker.on_sample(&waiting).is_some());
        assert_eq!(tracker.on_sample(&waiting), None);
        let mut streaming = camera_state(LinkState::Streaming);
        assert_eq!(tracker.on_sample(&streaming), None, "rate not measured yet");
        assert!(
            tracker
                .on_sample(&streaming)
                .unwrap()
                .starts_with("streaming")
        );
        streaming.scope_fps = 13.0;
        assert_eq!(
            tracker.on_sample(&streaming),
            None,
            "fps alone is no change"
        );
        streaming.scope_size = Some([1280, 720]);
        assert!(tracker.on_sample(&streaming).unwrap().contains("1280x720"));
        assert!(
            tracker
                .on_sample(&camera_state(LinkState::Stalled))
                .is_some()
        );
    }

    #[test]
    fn state_file_round_trips_and_has_the_documented_fields() {
        let mut state = camera_state(LinkState::Streaming);
        state.pid = 4242;
        state.snapshots_not_saved.insert("too_soon".into(), 5);
        state.drops.reassembly = 3;
        state
            .drops
            .reassembly_reasons
            .insert("incomplete".into(), 3);
        state.latency_ms = LatencyMs {
            p50: Some(2.1),
            p99: Some(4.0),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), &state.interface);
        write_atomic(&path, &state).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "interface",
            "pid",
            "started_at",
            "device",
            "card_label",
            "slot",
            "scope",
            "link_state",
            "scope_fps",
            "output_fps",
            "frames_in",
            "frames_out",
            "drops",
            "latency_ms",
            "snapshots",
            "snapshots_not_saved",
            "presses",
        ] {
            assert!(json.get(key).is_some(), "missing {key}: {text}");
        }
        assert_eq!(json["link_state"], "streaming");
        assert_eq!(json["latency_ms"]["p99"], 4.0);
        let back: BridgeState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        remove(&path);
        assert!(!path.exists());
    }

    #[test]
    fn reading_refuses_symlinks_devices_fifos_and_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "lo");
        let state = camera_state(LinkState::Streaming);
        write_atomic(&path, &state).unwrap();
        assert_eq!(read_state(&path).unwrap(), state);
        let missing = read_state(&dir.path().join("nope.json")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let link = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(
            read_state(&link).is_err(),
            "a symlink (to /dev/zero) is not followed"
        );
        let link = dir.path().join("good-link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_state(&link).is_err(), "not even to a good state file");
        let fifo = dir.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_state(&fifo).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        let big = dir.path().join("big.json");
        let mut text = serde_json::to_string(&state).unwrap();
        text.push_str(&" ".repeat(MAX_STATE_BYTES as usize));
        std::fs::write(&big, text).unwrap();
        let err = read_state(&big).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        std::fs::write(&big, "not json").unwrap();
        assert_eq!(
            read_state(&big).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }

    /// A pid that cannot exist (above Linux's largest pid_max).
    const NO_SUCH_PID: u32 = 0x7fff_fff0;

    #[test]
    fn liveness_is_kill_zero_plus_the_name_when_visible() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path();
        let me = std::process::id();
        // Under hidepid /proc/PID is missing: kill(pid, 0) still says it runs.
        assert!(pid_is_scopecam(me, proc));
        std::fs::create_dir_all(proc.join(me.to_string())).unwrap();
        std::fs::write(proc.join(me.to_string()).join("comm"), "scopecam\n").unwrap();
        assert!(pid_is_scopecam(me, proc));
        std::fs::write(proc.join(me.to_string()).join("comm"), "bash\n").unwrap();
        assert!(
            !pid_is_scopecam(me, proc),
            "a recycled pid of another program"
        );
        assert!(!pid_is_scopecam(NO_SUCH_PID, proc));
        assert!(!pid_is_scopecam(0, proc));
        assert!(!pid_is_scopecam(u32::MAX, proc));
        // The real /proc: this test binary is not a scopecam.
        assert!(!pid_is_scopecam(me, Path::new("/proc")));
    }

    #[test]
    fn the_temporary_file_is_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = state_path(dir.path(), "lo");
        std::os::unix::fs::symlink(&victim, dir.path().join(".lo.json.tmp")).unwrap();
        let dangling = dir.path().join("nowhere");
        let state = camera_state(LinkState::Waiting);
        write_atomic(&path, &state).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let back: BridgeState =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, state);
        // A dangling symlink is not followed either (File::create would create its target).
        std::os::unix::fs::symlink(&dangling, dir.path().join(".lo.json.tmp")).unwrap();
        write_atomic(&path, &state).unwrap();
        assert!(!dangling.exists());
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
    }

    #[test]
    fn bridge_presence_from_files() {
        let dir = tempfile::tempdir().unwrap();
        // An empty /proc, as under hidepid: the bridge's pid is not visible there.
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        let me = std::process::id();
        assert_eq!(
            bridge_presence(dir.path(), "enx1", &proc),
            BridgePresence::NotRunning
        );
        let file = dir.path().join("enx1.json");
        std::fs::write(&file, format!(r#"{{"interface":"enx1","pid":{me}}}"#)).unwrap();
        assert_eq!(
            bridge_presence(dir.path(), "enx1", &proc),
            BridgePresence::Running {
                pid: me,
                file: file.clone()
            },
            "alive (kill answers) though /proc/PID is hidden"
        );
        // The same file, but /proc shows the pid belongs to another program.
        std::fs::create_dir_all(proc.join(me.to_string())).unwrap();
        std::fs::write(proc.join(me.to_string()).join("comm"), "bash\n").unwrap();
        assert_eq!(
            bridge_presence(dir.path(), "enx1", &proc),
            BridgePresence::Stale {
                pid: Some(me),
                file: file.clone()
            }
        );
        std::fs::write(&file, r#"{"interface":"enx1","pid":2147483632}"#).unwrap();
        assert_eq!(
            bridge_presence(dir.path(), "enx1", &proc),
            BridgePresence::Stale {
                pid: Some(2_147_483_632),
                file: file.clone()
            }
        );
        std::fs::write(&file, "not json").unwrap();
        assert_eq!(
            bridge_presence(dir.path(), "enx1", &proc),
            BridgePresence::Stale { pid: None, file }
        );
    }
}
