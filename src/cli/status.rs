//! `scopecam status [--json]`: the running bridges, from the services' state files.

use super::exit::{Failure, Outcome};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::StatusArgs;
use crate::service::state::{BridgeState, Holder, holders_of, pid_is_scopecam, read_state};
use crate::service::status_dirs;

/// Exit code when no bridge runs (as `systemctl is-active` uses 3 for "not running").
pub const EXIT_NONE_RUNNING: u8 = 3;

const NONE_RUNNING: &str =
    "no borescope bridge is running; plug the scope in or see `journalctl -u 'scopecam@*'`";

/// How many processes have the camera open (besides the bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Consumers {
    /// Every process's open files could be read.
    Exact { count: usize },
    /// Some processes could not be checked (other users' need root): at least this many.
    AtLeast { count: usize },
    /// No other process could be checked.
    Unknown,
    /// Not a camera output.
    None,
}

impl std::fmt::Display for Consumers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Consumers::Exact { count } => write!(f, "{count}"),
            Consumers::AtLeast { count } => {
                write!(f, "at least {count} (run as root to see every process)")
            }
            Consumers::Unknown => f.write_str("unknown (run as root to see them)"),
            Consumers::None => f.write_str("n/a"),
        }
    }
}

/// One state file, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub state: BridgeState,
    /// The file's pid is not running: left over from a crash.
    pub stale: bool,
    pub state_file: PathBuf,
    pub consumers: Consumers,
    /// The processes counted in `consumers`, where /proc showed them.
    pub holders: Vec<Holder>,
    pub uptime_s: Option<u64>,
}

pub fn status(args: StatusArgs) -> Outcome {
    let entries = collect(&status_dirs());
    let running = entries.iter().any(|e| !e.stale);
    if args.json {
        match serde_json::to_string_pretty(&entries) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                return Err(Failure::says(format!(
                    "cannot render the status as JSON: {e}"
                )));
            }
        }
        if !running {
            eprintln!("{NONE_RUNNING}");
        }
    } else {
        print!("{}", render(&entries));
        if !running {
            println!("{NONE_RUNNING}");
        }
    }
    Ok(if running { 0 } else { EXIT_NONE_RUNNING })
}

/// Reads every state file in `dirs` (temporary `.NAME.tmp` files are skipped).
fn collect(dirs: &[PathBuf]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for dir in dirs {
        let Ok(listing) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = listing
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        for path in files {
            // A file being replaced or unreadable is skipped, not an error: status is a view.
            let Ok(state) = read_state(&path) else {
                continue;
            };
            let stale = !pid_is_scopecam(state.pid, Path::new("/proc"));
            let (consumers, holders) = match (&state.device, stale) {
                (Some(device), false) => {
                    find_consumers(Path::new(device), state.pid, Path::new("/proc"))
                }
                _ => (Consumers::None, Vec::new()),
            };
            let uptime_s = chrono::DateTime::parse_from_rfc3339(&state.started_at)
                .ok()
                .and_then(|at| (chrono::Utc::now() - at.to_utc()).to_std().ok())
                .map(|d| d.as_secs());
            entries.push(Entry {
                state,
                stale,
                state_file: path,
                consumers,
                holders,
                uptime_s,
            });
        }
    }
    entries
}

/// The processes (other than the bridge `bridge_pid` and this one) that have `device`
/// open, from the /proc/PID/fd links this user may read under `proc`.
fn find_consumers(device: &Path, bridge_pid: u32, proc: &Path) -> (Consumers, Vec<Holder>) {
    let Some(scan) = holders_of(device, &[std::process::id(), bridge_pid], proc) else {
        return (Consumers::Unknown, Vec::new());
    };
    let count = scan.holders.len();
    let consumers = match (scan.readable, scan.unreadable) {
        (0, _) => Consumers::Unknown,
        (_, 0) => Consumers::Exact { count },
        _ => Consumers::AtLeast { count },
    };
    let holders = scan
        .holders
        .into_iter()
        .map(|h| Holder {
            name: printable(&h.name),
            ..h
        })
        .collect();
    (consumers, holders)
}

/// "consumers 2 (pipewire 812, chrome 1234)": who holds the camera, for the status line.
fn consumers_text(consumers: &Consumers, holders: &[Holder]) -> String {
    if holders.is_empty() {
        return consumers.to_string();
    }
    let list: Vec<String> = holders
        .iter()
        .map(|h| format!("{} {}", h.name, h.pid))
        .collect();
    format!("{consumers} ({})", list.join(", "))
}

fn uptime(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} ms"))
}

/// `text` without control characters: the state files are written by the service
/// user, and `status` may run as root in a terminal that obeys escape sequences.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// `state` with every string made [`printable`].
fn printable_state(state: &BridgeState) -> BridgeState {
    let mut s = state.clone();
    for field in [
        &mut s.interface,
        &mut s.started_at,
        &mut s.updated_at,
        &mut s.output,
        &mut s.card_label,
        &mut s.scope,
    ] {
        *field = printable(field);
    }
    s.device = s.device.as_deref().map(printable);
    s.drops.reassembly_reasons = s
        .drops
        .reassembly_reasons
        .iter()
        .map(|(reason, count)| (printable(reason), *count))
        .collect();
    s
}

/// One block per bridge, in the order given, without control characters.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let s = &printable_state(&e.state);
        if e.stale {
            let _ = writeln!(
                out,
                "{}: stale: pid {} is not running (left over from a crash; {} can be deleted)",
                s.interface,
                s.pid,
                printable(&e.state_file.display().to_string())
            );
            continue;
        }
        let target = match &s.device {
            Some(device) => format!("{device} \"{}\"", s.card_label),
            None => s.output.clone(),
        };
        let _ = writeln!(
            out,
            "{}: {}, {target} (slot {}), pid {}, up {}",
            s.interface,
            s.link_state.as_str(),
            s.slot,
            s.pid,
            e.uptime_s.map_or_else(|| "?".to_owned(), uptime)
        );
        let size = s
            .scope_size
            .map(|[w, h]| format!(" {w}x{h}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  scope {}:{size} {:.1} fps in; output {:.1} fps; frames {} in, {} out",
            s.scope, s.scope_fps, s.output_fps, s.frames_in, s.frames_out
        );
        let d = &s.drops;
        let reasons = by_reason("", &d.reassembly_reasons);
        let refused = if d.refused == 0 {
            String::new()
        } else {
            format!(
                ", refused {}{}",
                d.refused,
                by_reason("", &d.refused_reasons)
            )
        };
        let _ = writeln!(
            out,
            "  drops: reassembly {}{reasons}, undecodable {}{refused}, skipped {}, rejected by output {}",
            d.reassembly, d.undecodable, d.skipped, d.rejected_by_output
        );
        let not_saved = by_reason("not saved: ", &s.snapshots_not_saved);
        let _ = writeln!(
            out,
            "  latency p50 {} p99 {}; consumers {}; snapshots {}{not_saved}, presses {}",
            ms(s.latency_ms.p50),
            ms(s.latency_ms.p99),
            consumers_text(&e.consumers, &e.holders),
            s.snapshots,
            s.presses
        );
    }
    out
}

/// ` (PREFIXa=1 b=2)` from counts by reason, or nothing when there are none.
fn by_reason(prefix: &str, counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" ({prefix}{})", list.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_consumers(device: &Path, bridge_pid: u32) -> Consumers {
        find_consumers(device, bridge_pid, Path::new("/proc")).0
    }
    use crate::service::state::{LatencyMs, LinkState};

    fn entry(stale: bool) -> Entry {
        let mut state = BridgeState {
            interface: "enx00e04c680001".into(),
            pid: 4242,
            device: Some("/dev/video42".into()),
            card_label: "Borescope".into(),
            slot: 1,
            scope: "192.168.10.123".into(),
            link_state: LinkState::Streaming,
            scope_size: Some([640, 480]),
            scope_fps: 15.0,
            output_fps: 15.0,
            frames_in: 4500,
            frames_out: 4490,
            latency_ms: LatencyMs {
                p50: Some(2.1),
                p99: Some(4.0),
            },
            snapshots: 1,
            presses: 1,
            ..BridgeState::default()
        };
        state.drops.reassembly = 3;
        state
            .drops
            .reassembly_reasons
            .insert("incomplete".into(), 3);
        Entry {
            state,
            stale,
            state_file: "/run/scopecam/enx00e04c680001.json".into(),
            consumers: Consumers::Exact { count: 2 },
            holders: Vec::new(),
            uptime_s: Some(3723),
        }
    }

    #[test]
    fn a_running_bridge_is_one_block() {
        let text = render(&[entry(false)]);
        assert_eq!(
            text,
            "enx00e04c680001: streaming, /dev/video42 \"Borescope\" (slot 1), pid 4242, up 1h 02m 03s\n\
             \x20 scope 192.168.10.123: 640x480 15.0 fps in; output 15.0 fps; frames 4500 in, 4490 out\n\
             \x20 drops: reassembly 3 (incomplete=3), undecodable 0, skipped 0, rejected by output 0\n\
             \x20 latency p50 2.1 ms p99 4.0 ms; consumers 2; snapshots 1, presses 1\n"
        );
    }

    #[test]
    fn refused_frames_and_snapshots_are_shown_by_reason() {
        let mut e = entry(false);
        e.state.snapshots_not_saved.insert("too_soon".into(), 7);
        e.state.snapshots_not_saved.insert("max_files".into(), 2);
        e.state.drops.refused = 9;
        e.state
            .drops
            .refused_reasons
            .insert("progressive".into(), 9);
        let text = render(&[e]);
        assert!(
            text.contains("undecodable 0, refused 9 (progressive=9), skipped 0"),
            "{text}"
        );
        assert!(
            text.contains("snapshots 1 (not saved: max_files=2 too_soon=7), presses 1"),
            "{text}"
        );
    }

    #[test]
    fn the_processes_holding_the_camera_are_named() {
        let mut e = entry(false);
        e.holders = vec![
            Holder {
                pid: 812,
                name: "pipewire".into(),
            },
            Holder {
                pid: 1234,
                name: "chrome".into(),
            },
        ];
        let text = render(&[e]);
        assert!(
            text.contains("consumers 2 (pipewire 812, chrome 1234);"),
            "{text}"
        );
    }

    #[test]
    fn holders_come_from_fd_links_to_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path();
        let device = Path::new("/dev/video42");
        let add = |pid: u32, comm: &str, targets: &[&str]| {
            let fd = proc.join(pid.to_string()).join("fd");
            std::fs::create_dir_all(&fd).unwrap();
            std::fs::write(proc.join(pid.to_string()).join("comm"), format!("{comm}\n")).unwrap();
            for (n, target) in targets.iter().enumerate() {
                std::os::unix::fs::symlink(target, fd.join(n.to_string())).unwrap();
            }
        };
        add(700, "scopecam", &["/dev/video42"]);
        add(812, "pipewire", &["/dev/null", "/dev/video42"]);
        add(900, "bash", &["/dev/null"]);
        add(1234, "gst-launch-1.0", &["/dev/video42", "/dev/video42"]);
        std::fs::create_dir_all(proc.join("self")).unwrap();
        let (consumers, holders) = find_consumers(device, 700, proc);
        assert_eq!(consumers, Consumers::Exact { count: 2 });
        let named: Vec<(u32, &str)> = holders.iter().map(|h| (h.pid, h.name.as_str())).collect();
        assert_eq!(named, [(812, "pipewire"), (1234, "gst-launch-1.0")]);
        // A process whose fds cannot be read makes the count a lower bound.
        std::fs::create_dir_all(proc.join("999")).unwrap();
        let (consumers, _) = find_consumers(device, 700, proc);
        assert_eq!(consumers, Consumers::AtLeast { count: 2 });
    }

    #[test]
    fn a_stale_file_is_one_line_naming_the_file() {
        let text = render(&[entry(true)]);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("stale: pid 4242 is not running"), "{text}");
        assert!(
            text.contains("/run/scopecam/enx00e04c680001.json"),
            "{text}"
        );
    }

    #[test]
    fn json_keeps_the_state_fields_flat() {
        let json = serde_json::to_value([entry(false)]).unwrap();
        assert_eq!(json[0]["interface"], "enx00e04c680001");
        assert_eq!(json[0]["stale"], false);
        assert_eq!(json[0]["consumers"]["count"], 2);
        assert_eq!(json[0]["drops"]["reassembly"], 3);
    }

    #[test]
    fn uptime_is_short() {
        assert_eq!(uptime(5), "5s");
        assert_eq!(uptime(65), "1m 05s");
        assert_eq!(uptime(3723), "1h 02m 03s");
    }

    #[test]
    fn control_characters_from_the_state_file_are_not_printed() {
        let mut e = entry(false);
        let s = &mut e.state;
        s.interface = "enx1\x1b]0;owned\x07".into();
        s.card_label = "Bore\x1b[2Jscope".into();
        s.device = Some("/dev/video42\r\n".into());
        s.scope = "1.2.3.4\u{9b}31m".into();
        s.drops.reassembly_reasons.insert("evil\x1b[1m".into(), 1);
        let text = render(&[e.clone()]);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 4, "{text:?}");
        assert!(text.starts_with("enx1]0;owned: streaming, /dev/video42 \"Bore[2Jscope\""));
        e.state.output = "x".into();
        e.stale = true;
        e.state_file = "/run/scopecam/\x1b[31m.json".into();
        let text = render(&[e]);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 1, "{text:?}");
    }

    #[test]
    fn state_files_are_read_safely() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry(false);
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        crate::service::state::write_atomic(&run.join("enx1.json"), &e.state).unwrap();
        // A symlink (it could point at /dev/zero) is not followed, even to a state file.
        let elsewhere = dir.path().join("elsewhere.json");
        crate::service::state::write_atomic(&elsewhere, &e.state).unwrap();
        std::os::unix::fs::symlink(&elsewhere, run.join("enx2.json")).unwrap();
        // Nor is a huge file read.
        let mut huge = serde_json::to_string(&e.state).unwrap();
        huge.push_str(&" ".repeat(70 * 1024));
        std::fs::write(run.join("enx3.json"), huge).unwrap();
        let entries = collect(&[run]);
        assert_eq!(entries.len(), 1, "only the regular, small file");
        assert_eq!(entries[0].state.interface, e.state.interface);
    }

    #[test]
    fn consumers_are_other_processes_with_the_file_open() {
        let file = tempfile::NamedTempFile::new().unwrap();
        // Our own descriptor does not count: status never counts itself.
        assert!(matches!(
            count_consumers(file.path(), 0),
            Consumers::Exact { count: 0 } | Consumers::AtLeast { count: 0 } | Consumers::Unknown
        ));
        let mut reader = std::process::Command::new("sleep")
            .arg("10")
            .stdin(std::fs::File::open(file.path()).unwrap())
            .spawn()
            .unwrap();
        let counted = count_consumers(file.path(), 0);
        let excluded = count_consumers(file.path(), reader.id());
        let _ = reader.kill();
        let _ = reader.wait();
        assert!(
            matches!(
                counted,
                Consumers::Exact { count: 1 } | Consumers::AtLeast { count: 1 }
            ),
            "{counted:?}"
        );
        assert!(
            matches!(
                excluded,
                Consumers::Exact { count: 0 } | Consumers::AtLeast { count: 0 }
            ),
            "the bridge itself is not a consumer: {excluded:?}"
        );
    }
}
