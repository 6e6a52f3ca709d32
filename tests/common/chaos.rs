//! Helpers for the chaos tests: follow a running process's log, count the
//! frames of an output file while it is written, read memory and sockets
//! from /proc, stop the bridge and read its final summary line.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Proc, split_mjpeg};

/// A process's stderr, read line by line as it comes, so that a test can
/// wait for a line while the process runs and still print the whole log.
pub struct LogTail {
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: Option<JoinHandle<()>>,
}

impl LogTail {
    /// Takes over `proc`'s stderr (so [`Proc::stderr`] returns nothing).
    pub fn attach(proc: &mut Proc) -> LogTail {
        let stderr = proc.child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        LogTail {
            lines,
            reader: Some(reader),
        }
    }

    pub fn text(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// When the first line containing `needle` was read, if it has been.
    pub fn seen(&self, needle: &str) -> Option<Instant> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(at, _)| *at)
    }

    /// Waits for a line containing `needle`; fails the test after `limit`.
    pub fn wait_for(&self, needle: &str, limit: Duration, what: &str) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.seen(needle) {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no line with {needle:?} within {limit:?}; log:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The whole log, once the process has exited (its stderr is closed).
    pub fn finish(mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}

/// What the bridge's final `stopped:` line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalSummary {
    pub line: String,
    pub written: u64,
    pub reassembly_drops: u64,
    pub undecodable: u64,
    pub skipped: u64,
    pub rejected_by_output: u64,
    pub malformed: u64,
    pub foreign: u64,
    pub presses: u64,
}

impl FinalSummary {
    /// Finds and parses the `stopped:` line in a bridge log.
    pub fn parse(log: &str) -> FinalSummary {
        let line = log
            .lines()
            .find(|l| l.contains("stopped: ") && l.contains(" frames written"))
            .unwrap_or_else(|| panic!("no final 'stopped:' summary in the log:\n{log}"))
            .to_string();
        let after = |label: &str| -> u64 {
            number_after(&line, label)
                .unwrap_or_else(|| panic!("no number after {label:?} in {line}"))
        };
        let written_at = line.find(" frames written").expect("frames written");
        let digits_start = line[..written_at]
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        FinalSummary {
            written: line[digits_start..written_at].parse().unwrap(),
            reassembly_drops: after("reassembly "),
            undecodable: after("undecodable "),
            skipped: after("skipped "),
            rejected_by_output: after("rejected by output "),
            malformed: after("malformed "),
            foreign: after("foreign "),
            presses: after("presses "),
            line,
        }
    }

    /// Frames dropped in reassembly for `reason` (its label, e.g. "incomplete").
    pub fn drops(&self, reason: &str) -> u64 {
        number_after(&self.line, &format!("{reason}=")).unwrap_or(0)
    }
}

/// The number right after the first `label` in `text`, e.g. in a Debug dump.
pub fn number_after(text: &str, label: &str) -> Option<u64> {
    let start = text.find(label)? + label.len();
    leading_number(&text[start..])
}

fn leading_number(text: &str) -> Option<u64> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What a bridge left behind once stopped.
pub struct Stopped {
    pub log: String,
    pub summary: FinalSummary,
    /// Peak resident memory (VmHWM), in KiB, read just before SIGTERM.
    pub peak_rss_kib: u64,
    /// CPU time (user + system) the bridge had used, read just before SIGTERM.
    pub cpu: Duration,
}

/// Checks that the bridge is still running (nothing made it give up),
/// reads its peak memory and checks it against `memory_limit_mib`, stops it
/// with SIGTERM, and checks that it exits 0 without a panic and with its
/// final summary.
pub fn stop_bridge(bridge: &mut Proc, log: LogTail, memory_limit_mib: u64) -> Stopped {
    if let Some(status) = bridge.child.try_wait().unwrap() {
        panic!(
            "the bridge exited ({status}) before it was told to stop; log:\n{}",
            log.finish()
        );
    }
    let pid = bridge.child.id();
    let peak_rss_kib = status_kib(pid, "VmHWM");
    let cpu = cpu_time(pid);
    bridge.terminate();
    let status = bridge.wait_for_exit(Duration::from_secs(20));
    let text = log.finish();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; log:\n{text}"
    );
    assert!(!text.contains("panicked"), "the bridge panicked:\n{text}");
    assert!(
        peak_rss_kib <= memory_limit_mib * 1024,
        "peak resident memory {peak_rss_kib} KiB is above {memory_limit_mib} MiB"
    );
    let summary = FinalSummary::parse(&text);
    Stopped {
        log: text,
        summary,
        peak_rss_kib,
        cpu,
    }
}

/// CPU time (user + system) a process has used, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3.
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ, the unit of these fields, is 100 in the Linux ABI on every architecture.
    Duration::from_millis(ticks * 10)
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The local UDP ports the process has open (from /proc/net/udp, matched
/// to the socket inodes among its file descriptors).
pub fn udp_ports(pid: u32) -> Vec<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|target| {
                    let t = target.to_string_lossy();
                    Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/udp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let port = fields.get(1)?.split(':').nth(1)?;
            inodes
                .contains(*fields.get(9)?)
                .then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

/// Frames in a y4m file that may still be being written: whole frames only.
pub fn y4m_frame_count(path: &Path) -> usize {
    let Ok(data) = std::fs::read(path) else {
        return 0;
    };
    let Some(header_end) = data.iter().position(|&b| b == b'\n') else {
        return 0;
    };
    let header = String::from_utf8_lossy(&data[..header_end]);
    let field = |tag: char| -> usize {
        header
            .split(' ')
            .find_map(|f| f.strip_prefix(tag)?.parse().ok())
            .unwrap_or(0)
    };
    let (w, h) = (field('W'), field('H'));
    let frame = b"FRAME\n".len() + w * h + 2 * w.div_ceil(2) * h;
    (data.len() - header_end - 1) / frame.max(1)
}

/// Whole JPEGs in an MJPEG file that may still be being written.
pub fn mjpeg_frame_count(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |data| split_mjpeg(&data).len())
}

/// Waits until `count()` reaches `at_least`; fails the test after `limit`.
pub fn wait_for_frames(count: impl Fn() -> usize, at_least: usize, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let now = count();
        if now >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {now} frames written after {limit:?}, expected {at_least}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long after `since` the output gained a frame beyond what it has now;
/// fails the test if that takes more than `limit` after `since`.
pub fn time_to_fresh_frame(count: impl Fn() -> usize, since: Instant, limit: Duration) -> Duration {
    let before = count();
    loop {
        if count() > before {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "no fresh frame within {limit:?} (still {before} frames)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
