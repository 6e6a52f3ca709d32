//! Counters shared by the link tasks, the frame path and the service, and the periodic
//! one-line summary made from them.
//!
//! They sit below everyone who bumps or reads them (link, bridge, service) and above the
//! pure parts whose reasons they count (reassembly drops, refused JPEGs, snapshots not
//! saved), which count nothing themselves.

pub mod latency;

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::output::snapshot::NotSaved;
use crate::picture::decode::Refusal;
use crate::scope::reassembly::DropCounts;
use latency::{LatencyCounts, LatencyHistogram, Percentiles};
use std::marker::PhantomData;

/// Everything the bridge counts. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Stats {
    /// Datagrams from the scope's video port.
    pub datagrams: AtomicU64,
    /// Datagrams from the scope that are not fragments we understand.
    pub malformed: AtomicU64,
    /// Datagrams from any other address or port (ignored).
    pub foreign: AtomicU64,
    /// Frames the reassembler completed.
    pub frames_complete: AtomicU64,
    /// Complete frames replaced by a newer one before the frame path took them.
    pub frames_skipped: AtomicU64,
    /// Scope frames written to the sink.
    pub frames_written: AtomicU64,
    /// Repeated or "no signal" pictures written while the scope was silent.
    pub idle_frames: AtomicU64,
    /// Complete frames whose JPEG did not decode.
    pub decode_errors: AtomicU64,
    /// Complete frames refused before decoding (a coding or a size no scope sends).
    pub refused: ReasonCounters<Refusal>,
    /// Frames the sink refused (e.g. another size than the stream's).
    pub sink_rejected: AtomicU64,
    /// Button presses seen.
    pub presses: AtomicU64,
    /// Snapshots saved.
    pub snapshots: AtomicU64,
    /// Presses that saved nothing, by reason.
    pub snapshots_not_saved: ReasonCounters<NotSaved>,
    /// Frames dropped during reassembly, by reason (a copy of the reassembler's).
    pub reassembly_drops: Mutex<DropCounts>,
    /// Time from a frame's completion by the reassembler to its picture being written.
    pub latency: LatencyHistogram,
    /// The first part of `latency`: from completion to the frame path taking the frame
    /// (the hand-over between threads, and any wait behind the frame before). What is
    /// left is decoding, framing and the write; the split says where a slow p99 comes from.
    pub handoff: LatencyHistogram,
    /// CPU time the frame path spent on each scope frame (decode, framing, write). Latency
    /// minus handoff minus this is time the thread was ready but had no core.
    pub work_cpu: LatencyHistogram,
    /// Size of the last scope frame written, `width << 32 | height` (0: none yet), so the
    /// service can say "streaming 640x480" without parsing frames itself.
    pub scope_size: AtomicU64,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    pub fn set_reassembly_drops(&self, drops: &DropCounts) {
        let mut mine = self
            .reassembly_drops
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *mine != *drops {
            mine.clone_from(drops);
        }
    }

    /// Remembers the size of the scope frame just written.
    pub fn set_scope_size(&self, width: u32, height: u32) {
        let packed = (u64::from(width) << 32) | u64::from(height);
        self.scope_size.store(packed, Ordering::Relaxed);
    }

    /// The size of the last scope frame written, if any.
    pub fn scope_size(&self) -> Option<(u32, u32)> {
        let packed = read(&self.scope_size);
        (packed != 0).then_some(((packed >> 32) as u32, packed as u32))
    }

    pub fn snapshot(&self) -> Totals {
        Totals {
            frames_written: read(&self.frames_written),
            frames_skipped: read(&self.frames_skipped),
            decode_errors: read(&self.decode_errors),
            sink_rejected: read(&self.sink_rejected),
            malformed: read(&self.malformed),
            foreign: read(&self.foreign),
            presses: read(&self.presses),
            snapshots: read(&self.snapshots),
            snapshots_not_saved: self.snapshots_not_saved.read(),
            refused: self.refused.read(),
            reassembly_drops: self
                .reassembly_drops
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            latency: self.latency.snapshot(),
            handoff: self.handoff.snapshot(),
            work_cpu: self.work_cpu.snapshot(),
        }
    }
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub frames_written: u64,
    pub frames_skipped: u64,
    pub decode_errors: u64,
    pub sink_rejected: u64,
    pub malformed: u64,
    pub foreign: u64,
    pub presses: u64,
    pub snapshots: u64,
    pub snapshots_not_saved: ReasonCounts<NotSaved>,
    pub refused: ReasonCounts<Refusal>,
    pub reassembly_drops: DropCounts,
    pub latency: LatencyCounts,
    pub handoff: LatencyCounts,
    pub work_cpu: LatencyCounts,
}

/// A kind of drop or refusal counted by reason.
pub trait Reason: Copy + PartialEq + fmt::Debug + 'static {
    /// Every reason, in the order counters keep them.
    const ALL: &'static [Self];
    /// Short snake_case name.
    fn label(self) -> &'static str;
}

impl Reason for NotSaved {
    const ALL: &'static [Self] = &NotSaved::ALL;
    fn label(self) -> &'static str {
        NotSaved::label(self)
    }
}

impl Reason for Refusal {
    const ALL: &'static [Self] = &Refusal::ALL;
    fn label(self) -> &'static str {
        Refusal::label(self)
    }
}

/// Room for the reasons of any [`Reason`] type.
const MAX_REASONS: usize = 8;

/// Live counters by reason, cheap to bump from any thread.
#[derive(Debug)]
pub struct ReasonCounters<R> {
    counts: [AtomicU64; MAX_REASONS],
    reason: PhantomData<R>,
}

impl<R> Default for ReasonCounters<R> {
    fn default() -> Self {
        ReasonCounters {
            counts: Default::default(),
            reason: PhantomData,
        }
    }
}

impl<R: Reason> ReasonCounters<R> {
    pub fn add(&self, reason: R, n: u64) {
        if let Some(at) = R::ALL.iter().position(|r| *r == reason) {
            self.counts[at].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, reason: R) -> u64 {
        self.read().get(reason)
    }

    pub fn read(&self) -> ReasonCounts<R> {
        ReasonCounts {
            counts: self.counts.each_ref().map(read),
            reason: PhantomData,
        }
    }
}

/// A copy of [`ReasonCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonCounts<R> {
    counts: [u64; MAX_REASONS],
    reason: PhantomData<R>,
}

impl<R> Default for ReasonCounts<R> {
    fn default() -> Self {
        ReasonCounts {
            counts: [0; MAX_REASONS],
            reason: PhantomData,
        }
    }
}

impl<R: Reason> ReasonCounts<R> {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn get(&self, reason: R) -> u64 {
        R::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |at| self.counts[at])
    }

    /// The reasons with a count above zero.
    pub fn iter(&self) -> impl Iterator<Item = (R, u64)> + '_ {
        R::ALL
            .iter()
            .zip(self.counts)
            .map(|(r, n)| (*r, n))
            .filter(|(_, n)| *n > 0)
    }

    /// `label: count` for the state file.
    pub fn by_label(&self) -> std::collections::BTreeMap<String, u64> {
        self.iter()
            .map(|(r, n)| (r.label().to_owned(), n))
            .collect()
    }
}

impl<R: Reason> fmt::Display for ReasonCounts<R> {
    /// `too_soon=3 max_files=1`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self
            .iter()
            .map(|(reason, n)| format!("{}={n}", reason.label()))
            .collect();
        if list.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&list.join(" "))
        }
    }
}

/// The periodic summary line: the rate and the latency percentiles over the last interval
/// (if given, else since start), totals since start.
pub struct Summary<'a> {
    pub now: &'a Totals,
    pub before: &'a Totals,
    pub interval: Option<Duration>,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(interval) = self.interval {
            let secs = interval.as_secs_f64().max(1e-3);
            let frames = self
                .now
                .frames_written
                .saturating_sub(self.before.frames_written);
            write!(f, "{:.1} fps, ", frames as f64 / secs)?;
        }
        write!(
            f,
            "{} frames written; dropped: reassembly {} ({}), undecodable {}, refused {} ({}), \
             skipped {}, rejected by output {}; ignored packets: malformed {}, foreign {}; presses {}, \
             snapshots {}, not saved {} ({})",
            self.now.frames_written,
            self.now.reassembly_drops.total(),
            self.now.reassembly_drops,
            self.now.decode_errors,
            self.now.refused.total(),
            self.now.refused,
            self.now.frames_skipped,
            self.now.sink_rejected,
            self.now.malformed,
            self.now.foreign,
            self.now.presses,
            self.now.snapshots,
            self.now.snapshots_not_saved.total(),
            self.now.snapshots_not_saved,
        )?;
        let pick = |now: &LatencyCounts, before: &LatencyCounts| match self.interval {
            Some(_) => now.since(before),
            None => now.clone(),
        };
        let latency = pick(&self.now.latency, &self.before.latency);
        let handoff = pick(&self.now.handoff, &self.before.handoff);
        let work_cpu = pick(&self.now.work_cpu, &self.before.work_cpu);
        write!(f, "; latency {}", Percentiles(&latency))?;
        if handoff.total() > 0 {
            write!(
                f,
                " (handoff {}; cpu {})",
                Percentiles(&handoff),
                Percentiles(&work_cpu)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_size_is_none_until_set() {
        let stats = Stats::default();
        assert_eq!(stats.scope_size(), None);
        stats.set_scope_size(1920, 1080);
        assert_eq!(stats.scope_size(), Some((1920, 1080)));
    }

    #[test]
    fn summary_reports_rate_over_the_interval() {
        let before = Totals {
            frames_written: 100,
            ..Default::default()
        };
        let now = Totals {
            frames_written: 250,
            decode_errors: 2,
            ..Default::default()
        };
        let line = Summary {
            now: &now,
            before: &before,
            interval: Some(Duration::from_secs(10)),
        }
        .to_string();
        assert!(line.starts_with("15.0 fps, 250 frames written"), "{line}");
        assert!(line.contains("undecodable 2"), "{line}");
        assert!(
            line.contains("presses 0, snapshots 0, not saved 0 (none)"),
            "{line}"
        );
        assert!(line.ends_with("; latency n/a"), "{line}");
    }

    #[test]
    fn refusals_and_unsaved_snapshots_are_counted_by_reason() {
        let stats = Stats::default();
        stats.snapshots_not_saved.add(NotSaved::TooSoon, 2);
        stats.snapshots_not_saved.add(NotSaved::LowDisk, 1);
        stats.refused.add(
            Refusal::Coding(crate::picture::decode::Unsupported::Progressive),
            4,
        );
        bump(&stats.snapshots);
        let now = stats.snapshot();
        assert_eq!(now.snapshots_not_saved.total(), 3);
        let line = Summary {
            now: &now,
            before: &Totals::default(),
            interval: None,
        }
        .to_string();
        assert!(
            line.contains("snapshots 1, not saved 3 (too_soon=2 low_disk=1)"),
            "{line}"
        );
        assert!(
            line.contains("undecodable 0, refused 4 (progressive=4), skipped 0"),
            "{line}"
        );
    }

    #[test]
    fn summary_splits_off_the_handoff_once_there_is_one() {
        let stats = Stats::default();
        stats.latency.record(Duration::from_micros(2_000));
        stats.handoff.record(Duration::from_micros(300));
        stats.work_cpu.record(Duration::from_micros(1_500));
        let now = stats.snapshot();
        let line = Summary {
            now: &now,
            before: &Totals::default(),
            interval: None,
        }
        .to_string();
        assert!(
            line.ends_with(
                "; latency p50 2.0 ms p99 2.0 ms (handoff p50 0.3 ms p99 0.3 ms; cpu p50 1.5 ms p99 1.5 ms)"
            ),
            "{line}"
        );
    }

    #[test]
    fn summary_reports_latency_over_the_interval_or_since_start() {
        let stats = Stats::default();
        stats.latency.record(Duration::from_millis(40));
        let before = stats.snapshot();
        for _ in 0..10 {
            stats.latency.record(Duration::from_micros(2_000));
        }
        let now = stats.snapshot();
        let periodic = Summary {
            now: &now,
            before: &before,
            interval: Some(Duration::from_secs(1)),
        }
        .to_string();
        assert!(
            periodic.ends_with("; latency p50 2.0 ms p99 2.0 ms"),
            "{periodic}"
        );
        let stopped = Summary {
            now: &now,
            before: &Totals::default(),
            interval: None,
        }
        .to_string();
        assert!(
            stopped.ends_with("; latency p50 2.0 ms p99 41.0 ms"),
            "{stopped}"
        );
    }
}
