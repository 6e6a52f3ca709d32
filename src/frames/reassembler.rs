//! Reassembles fragmented JPEG frames with bounded memory.
//!
//! Design, in short:
//! - Up to `max_frames_in_flight` frames are assembled at once, keyed by
//!   frame id, so a late fragment of frame N still completes N after N+1
//!   has started.
//! - Payload bytes are appended to the frame's buffer in arrival order,
//!   growing it only as bytes arrive and never beyond the announced size
//!   (itself capped by `max_frame_bytes`): a hostile size field cannot cause
//!   a large allocation. In the common in-order case that buffer *is* the
//!   JPEG; only if fragments arrived out of order are they copied once more,
//!   in index order, on completion.
//! - Frames that are closed (delivered or dropped) are remembered for
//!   `frame_timeout`, so late or duplicated fragments of them are ignored
//!   instead of opening a new frame that could only ever expire.
//! - A fragment that fails admission (bad format, hostile size, too old) is
//!   dropped on its own: it proves nothing about the frame id it claims, so
//!   it neither closes that id nor touches a frame in flight under it. It is
//!   counted once per frame id and `frame_timeout`, not once per fragment.
//! - Buffers come back through [`Reassembler::recycle`], so a steady stream
//!   allocates nothing.

use std::fmt;
use std::time::{Duration, Instant};

use crate::protocol::video::FORMAT_MJPEG;
use crate::protocol::{Fragment, FragmentKind};

/// How many trailing `0x00` bytes after the JPEG end marker (FF D9) are
/// accepted as padding and trimmed off. Some encoders pad frames to a word
/// boundary; a longer run of zeros means the frame is not what it claims.
pub const MAX_TRAILING_PADDING: usize = 16;

/// Bounds on what the reassembler accepts and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest announced frame size accepted; larger (or zero) is `Oversized`.
    pub max_frame_bytes: usize,
    /// Fragment indices at or above this are `InconsistentHeader`.
    pub max_fragments: usize,
    /// A frame not complete this long after its first fragment is
    /// `Incomplete`; closed frame ids are also remembered this long.
    pub frame_timeout: Duration,
    /// Frames assembled concurrently; the oldest is `Superseded` beyond this.
    pub max_frames_in_flight: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_frame_bytes: 4 << 20,
            max_fragments: 4096,
            frame_timeout: Duration::from_secs(1),
            max_frames_in_flight: 3,
        }
    }
}

/// Why a frame was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Expired before all of its fragments arrived.
    Incomplete,
    /// The bytes for indices `0..=last` differ from the announced size, or
    /// bytes arrived beyond the announced size.
    SizeMismatch,
    /// Fragments of one frame disagree on the size, two different "last"
    /// indices, an index beyond the last one, or an index >= `max_fragments`.
    InconsistentHeader,
    /// Announced size is zero or above `max_frame_bytes`.
    Oversized,
    /// Pushed out by newer frames, or older than a frame already delivered.
    Superseded,
    /// Does not start with FF D8 or does not end with FF D9.
    NotJpeg,
    /// Header byte 2 is not 1 (MJPEG).
    UnsupportedFormat,
}

impl DropReason {
    /// Every reason, in a fixed order (the order of [`DropCounts::iter`]).
    pub const ALL: [DropReason; 7] = [
        DropReason::Incomplete,
        DropReason::SizeMismatch,
        DropReason::InconsistentHeader,
        DropReason::Oversized,
        DropReason::Superseded,
        DropReason::NotJpeg,
        DropReason::UnsupportedFormat,
    ];

    /// Short snake_case name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Incomplete => "incomplete",
            DropReason::SizeMismatch => "size_mismatch",
            DropReason::InconsistentHeader => "inconsistent_header",
            DropReason::Oversized => "oversized",
            DropReason::Superseded => "superseded",
            DropReason::NotJpeg => "not_jpeg",
            DropReason::UnsupportedFormat => "unsupported_format",
        }
    }

    /// Position in [`DropReason::ALL`].
    fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Dropped frames, counted per reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DropCounts {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounts {
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts.get(reason.slot()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn add(&mut self, reason: DropReason) {
        if let Some(count) = self.counts.get_mut(reason.slot()) {
            *count = count.saturating_add(1);
        }
    }

    /// The reasons with a nonzero count, in [`DropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&reason| (reason, self.get(reason)))
            .filter(|&(_, count)| count > 0)
    }
}

impl fmt::Display for DropCounts {
    /// `incomplete=3 superseded=1`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (reason, count) in self.iter() {
            if any {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", reason.label(), count)?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// A reassembled, marker-checked JPEG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteFrame {
    pub frame_id: u8,
    /// Starts with FF D8, ends with FF D9 (trailing zero padding trimmed).
    /// Hand it back with [`Reassembler::recycle`] when done.
    pub jpeg: Vec<u8>,
}

/// Which fragment indices of a frame have arrived.
#[derive(Debug, Default)]
struct IndexSet {
    words: Vec<u64>,
}

impl IndexSet {
    /// Marks `index`; false if it was already there. Grows only up to the
    /// highest index seen, which the caller keeps below `max_fragments`.
    fn insert(&mut self, index: u16) -> bool {
        let word = usize::from(index / 64);
        let bit = 1u64 << (index % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        match self.words.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }

    fn clear(&mut self) {
        self.words.clear();
    }
}

/// Where one fragment's payload sits in the frame's arrival-order buffer.
#[derive(Debug, Clone, Copy)]
struct Segment {
    index: u16,
    start: usize,
    len: usize,
}

/// What a fragment did to its frame.
enum Progress {
    Waiting,
    Duplicate,
    Complete,
}

/// One frame being assembled. Kept and reused across frames so its tables
/// are not reallocated.
#[derive(Debug)]
struct FrameInProgress {
    frame_id: u8,
    /// Announced total size, already checked against `max_frame_bytes`.
    announced: usize,
    started: Instant,
    last_index: Option<u16>,
    highest_index: u16,
    fragments_received: usize,
    received: IndexSet,
    /// Payloads in arrival order.
    data: Vec<u8>,
    segments: Vec<Segment>,
}

impl FrameInProgress {
    fn new(now: Instant) -> Self {
        FrameInProgress {
            frame_id: 0,
            announced: 0,
            started: now,
            last_index: None,
            highest_index: 0,
            fragments_received: 0,
            received: IndexSet::default(),
            data: Vec::new(),
            segments: Vec::new(),
        }
    }

    fn begin(&mut self, frame_id: u8, announced: usize, now: Instant, buffer: Vec<u8>) {
        self.frame_id = frame_id;
        self.announced = announced;
        self.started = now;
        self.last_index = None;
        self.highest_index = 0;
        self.fragments_received = 0;
        self.received.clear();
        self.data = buffer;
        self.data.clear();
        self.segments.clear();
    }

    /// Checks `fragment` against what this frame already knows and stores
    /// its payload.
    fn accept(
        &mut self,
        fragment: &Fragment<'_>,
        max_fragments: usize,
    ) -> Result<Progress, DropReason> {
        let header = &fragment.header;
        if usize::try_from(header.frame_size) != Ok(self.announced)
            || usize::from(header.index) >= max_fragments
            || self.last_index.is_some_and(|last| header.index > last)
        {
            return Err(DropReason::InconsistentHeader);
        }
        if header.kind == FragmentKind::Last {
            self.learn_last_index(header.index)?;
        }
        if !self.received.insert(header.index) {
            return Ok(Progress::Duplicate);
        }
        self.store(header.index, fragment.payload)?;
        self.progress()
    }

    fn learn_last_index(&mut self, index: u16) -> Result<(), DropReason> {
        let contradicts_earlier = match self.last_index {
            Some(last) => last != index,
            None => self.fragments_received > 0 && self.highest_index > index,
        };
        if contradicts_earlier {
            return Err(DropReason::InconsistentHeader);
        }
        self.last_index = Some(index);
        Ok(())
    }

    fn store(&mut self, index: u16, payload: &[u8]) -> Result<(), DropReason> {
        let start = self.data.len();
        if start + payload.len() > self.announced {
            return Err(DropReason::SizeMismatch);
        }
        append_within(&mut self.data, payload, self.announced);
        self.segments.push(Segment {
            index,
            start,
            len: payload.len(),
        });
        self.fragments_received += 1;
        self.highest_index = self.highest_index.max(index);
        Ok(())
    }

    /// Complete once the last index is known, every index up to it is here
    /// (indices are distinct and none exceeds the last, so counting them is
    /// enough) and the bytes add up.
    ///
    /// Also complete without a "last" flag when indices `0..=highest` are
    /// all here and carry exactly the announced size: nothing more can
    /// belong to the frame then, and PROTOCOL.md says it is unknown how
    /// firmware flags a one-fragment frame.
    fn progress(&self) -> Result<Progress, DropReason> {
        let all_bytes = self.data.len() == self.announced;
        let complete = match self.last_index {
            Some(last) if self.fragments_received == usize::from(last) + 1 => {
                if !all_bytes {
                    return Err(DropReason::SizeMismatch);
                }
                true
            }
            Some(_) => false,
            None => all_bytes && self.fragments_received == usize::from(self.highest_index) + 1,
        };
        Ok(if complete {
            Progress::Complete
        } else {
            Progress::Waiting
        })
    }

    /// The frame's bytes in index order. If the fragments arrived in order
    /// this hands over the buffer itself; otherwise they are copied into
    /// `spare` and the arrival-order buffer is returned as the second value
    /// for reuse.
    fn take_jpeg(&mut self, spare: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        if self.segments.is_sorted_by_key(|s| s.index) {
            return (std::mem::take(&mut self.data), spare);
        }
        self.segments.sort_unstable_by_key(|s| s.index);
        let mut ordered = spare;
        ordered.clear();
        ordered.reserve_exact(self.data.len());
        for segment in &self.segments {
            if let Some(bytes) = self.data.get(segment.start..segment.start + segment.len) {
                ordered.extend_from_slice(bytes);
            }
        }
        (ordered, std::mem::take(&mut self.data))
    }
}

/// Appends `bytes`, growing `buf` geometrically but never past `limit`
/// (which the caller guarantees is at least the resulting length), so the
/// allocation tracks the bytes that actually arrived.
fn append_within(buf: &mut Vec<u8>, bytes: &[u8], limit: usize) {
    let needed = buf.len() + bytes.len();
    if needed > buf.capacity() {
        let target = buf.capacity().saturating_mul(2).min(limit).max(needed);
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(bytes);
}

/// True if `a` is a later frame id than `b`, with wrap-around at 255
/// (ids up to 127 ahead count as later).
fn is_newer(a: u8, b: u8) -> bool {
    (a.wrapping_sub(b) as i8) > 0
}

/// Walks the JPEG to its end-of-image marker and trims up to
/// [`MAX_TRAILING_PADDING`] zero bytes after it. False if it is not a JPEG.
fn trim_to_jpeg(jpeg: &mut Vec<u8>) -> bool {
    let Ok(end) = crate::jpeg::end_of_image(jpeg) else {
        return false;
    };
    let padding = jpeg.get(end..).unwrap_or_default();
    if padding.len() > MAX_TRAILING_PADDING || padding.iter().any(|&b| b != 0) {
        return false;
    }
    jpeg.truncate(end);
    true
}

/// Fragments in, complete JPEG frames out. See the module docs.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    in_flight: Vec<FrameInProgress>,
    spare_frames: Vec<FrameInProgress>,
    spare_buffers: Vec<Vec<u8>>,
    /// When each frame id was last delivered or dropped; fragments for it
    /// are ignored for `frame_timeout` after that.
    closed_at: Box<[Option<Instant>; 256]>,
    /// When a fragment claiming each frame id was last rejected at
    /// admission; only used so a rejected frame is counted once.
    rejected_at: Box<[Option<Instant>; 256]>,
    last_delivered: Option<(u8, Instant)>,
    drops: DropCounts,
    frames_completed: u64,
}

impl Reassembler {
    /// Limits of zero are raised to one (fragment, frame in flight).
    pub fn new(limits: ReassemblyLimits) -> Self {
        let limits = ReassemblyLimits {
            max_fragments: limits.max_fragments.clamp(1, usize::from(u16::MAX) + 1),
            max_frames_in_flight: limits.max_frames_in_flight.max(1),
            ..limits
        };
        Reassembler {
            in_flight: Vec::with_capacity(limits.max_frames_in_flight),
            spare_frames: Vec::new(),
            spare_buffers: Vec::new(),
            closed_at: Box::new([None; 256]),
            rejected_at: Box::new([None; 256]),
            last_delivered: None,
            drops: DropCounts::default(),
            frames_completed: 0,
            limits,
        }
    }

    /// Feeds one parsed fragment received at `now`. Returns the frame it
    /// completed, if any. Also expires old frames, as [`expire`](Self::expire).
    pub fn push(&mut self, fragment: &Fragment<'_>, now: Instant) -> Option<CompleteFrame> {
        self.expire(now);
        let frame_id = fragment.header.frame_id;
        if self.recently_closed(frame_id, now) {
            return None;
        }
        if let Err(reason) = self.admit(fragment, now) {
            self.reject_fragment(frame_id, reason, now);
            return None;
        }
        let position = match self.position_of(frame_id) {
            Some(position) => position,
            None => self.open_frame(fragment, now)?,
        };
        let frame = self.in_flight.get_mut(position)?;
        match frame.accept(fragment, self.limits.max_fragments) {
            Ok(Progress::Waiting | Progress::Duplicate) => None,
            Ok(Progress::Complete) => self.finish(position, now),
            Err(reason) => {
                self.drop_frame(frame_id, reason, now);
                None
            }
        }
    }

    /// Drops in-flight frames whose first fragment is `frame_timeout` old,
    /// counting them `Incomplete`. `push` does this too; call it about every
    /// 100 ms as well so a stalled stream does not hold frames forever.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.limits.frame_timeout;
        while let Some(position) = self
            .in_flight
            .iter()
            .position(|f| now.saturating_duration_since(f.started) >= timeout)
        {
            let frame_id = self.remove_in_flight(position);
            self.drops.add(DropReason::Incomplete);
            self.mark_closed(frame_id, now);
        }
    }

    /// Gives a delivered frame's buffer back so steady state allocates
    /// nothing. Buffers beyond what the reassembler can use are freed.
    pub fn recycle(&mut self, mut jpeg: Vec<u8>) {
        let useful = jpeg.capacity() > 0 && jpeg.capacity() <= self.limits.max_frame_bytes;
        if useful && self.spare_buffers.len() <= self.limits.max_frames_in_flight {
            jpeg.clear();
            self.spare_buffers.push(jpeg);
        }
    }

    /// Forgets the stream's history after the caller knows the scope
    /// restarted (e.g. the link went down and came back): frames in flight
    /// are dropped as `Incomplete`, and recently delivered or dropped frame
    /// ids are no longer held against new fragments. Counters and buffers
    /// are kept.
    pub fn reset_stream(&mut self) {
        while !self.in_flight.is_empty() {
            self.remove_in_flight(0);
            self.drops.add(DropReason::Incomplete);
        }
        self.closed_at.fill(None);
        self.rejected_at.fill(None);
        self.last_delivered = None;
    }

    pub fn drops(&self) -> &DropCounts {
        &self.drops
    }

    pub fn frames_completed(&self) -> u64 {
        self.frames_completed
    }

    /// Frames currently being assembled (never above `max_frames_in_flight`).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Payload bytes currently held for frames in flight.
    pub fn buffered_bytes(&self) -> usize {
        self.in_flight.iter().map(|f| f.data.len()).sum()
    }

    /// The checks that do not need the frame's state: the format, whether the
    /// frame is older than one just delivered, and (for a frame not yet in
    /// flight) the announced size and index, so a bad fragment never evicts
    /// a good frame. A fragment failing them is rejected alone.
    fn admit(&self, fragment: &Fragment<'_>, now: Instant) -> Result<(), DropReason> {
        let header = &fragment.header;
        if self.older_than_recent_delivery(header.frame_id, now) {
            return Err(DropReason::Superseded);
        }
        if header.format != FORMAT_MJPEG {
            return Err(DropReason::UnsupportedFormat);
        }
        if self.position_of(header.frame_id).is_some() {
            return Ok(());
        }
        let announced = self.checked_frame_size(header.frame_size)?;
        if usize::from(header.index) >= self.limits.max_fragments {
            return Err(DropReason::InconsistentHeader);
        }
        if fragment.payload.len() > announced {
            return Err(DropReason::SizeMismatch);
        }
        Ok(())
    }

    fn checked_frame_size(&self, frame_size: u32) -> Result<usize, DropReason> {
        match usize::try_from(frame_size) {
            Ok(size) if size > 0 && size <= self.limits.max_frame_bytes => Ok(size),
            _ => Err(DropReason::Oversized),
        }
    }

    /// The "older than the last delivered frame" rule only holds for
    /// `frame_timeout` after that delivery: a restarted scope may count from
    /// low ids again and must not be ignored for up to 128 frames.
    fn older_than_recent_delivery(&self, frame_id: u8, now: Instant) -> bool {
        self.last_delivered.is_some_and(|(delivered, at)| {
            now.saturating_duration_since(at) < self.limits.frame_timeout
                && !is_newer(frame_id, delivered)
        })
    }

    fn recently_closed(&self, frame_id: u8, now: Instant) -> bool {
        self.within_timeout(self.closed_at[usize::from(frame_id)], now)
    }

    fn mark_closed(&mut self, frame_id: u8, now: Instant) {
        self.closed_at[usize::from(frame_id)] = Some(now);
    }

    fn within_timeout(&self, at: Option<Instant>, now: Instant) -> bool {
        at.is_some_and(|at| now.saturating_duration_since(at) < self.limits.frame_timeout)
    }

    /// Counts a fragment that failed admission, once per frame id and
    /// `frame_timeout`, and leaves the frame state alone: a stray or
    /// foreign fragment must not hide (or break) the genuine frame that
    /// happens to share its id.
    fn reject_fragment(&mut self, frame_id: u8, reason: DropReason, now: Instant) {
        let slot = usize::from(frame_id);
        if !self.within_timeout(self.rejected_at[slot], now) {
            self.drops.add(reason);
            self.rejected_at[slot] = Some(now);
        }
    }

    fn position_of(&self, frame_id: u8) -> Option<usize> {
        self.in_flight.iter().position(|f| f.frame_id == frame_id)
    }

    /// Starts assembling the frame `fragment` belongs to, making room by
    /// superseding the oldest frame in flight. If the new frame is itself
    /// the oldest, it is the one dropped (and counted), and `None` returned.
    fn open_frame(&mut self, fragment: &Fragment<'_>, now: Instant) -> Option<usize> {
        let frame_id = fragment.header.frame_id;
        let announced = self.checked_frame_size(fragment.header.frame_size).ok()?;
        if self.in_flight.len() >= self.limits.max_frames_in_flight {
            let oldest = self.oldest_of_in_flight_and(frame_id);
            self.drop_frame(oldest, DropReason::Superseded, now);
            if oldest == frame_id {
                return None;
            }
        }
        let buffer = self.spare_buffers.pop().unwrap_or_default();
        let mut frame = self
            .spare_frames
            .pop()
            .unwrap_or_else(|| FrameInProgress::new(now));
        frame.begin(frame_id, announced, now, buffer);
        self.in_flight.push(frame);
        Some(self.in_flight.len() - 1)
    }

    /// The oldest id among the frames in flight and `candidate`, judged
    /// against the newest of them so wrap-around at 255 works.
    fn oldest_of_in_flight_and(&self, candidate: u8) -> u8 {
        let ids = || {
            self.in_flight
                .iter()
                .map(|f| f.frame_id)
                .chain(std::iter::once(candidate))
        };
        let newest = ids().fold(
            candidate,
            |newest, id| {
                if is_newer(id, newest) { id } else { newest }
            },
        );
        ids()
            .max_by_key(|&id| newest.wrapping_sub(id))
            .unwrap_or(candidate)
    }

    /// Counts a dropped frame, frees its slot if it has one, and ignores
    /// further fragments of it for a while.
    fn drop_frame(&mut self, frame_id: u8, reason: DropReason, now: Instant) {
        if let Some(position) = self.position_of(frame_id) {
            self.remove_in_flight(position);
        }
        self.drops.add(reason);
        self.mark_closed(frame_id, now);
    }

    /// Removes an abandoned frame, keeping its storage for reuse; returns its id.
    fn remove_in_flight(&mut self, position: usize) -> u8 {
        let frame = self.in_flight.swap_remove(position);
        let frame_id = frame.frame_id;
        self.park(frame);
        frame_id
    }

    fn finish(&mut self, position: usize, now: Instant) -> Option<CompleteFrame> {
        let mut frame = self.in_flight.swap_remove(position);
        let spare = self.spare_buffers.pop().unwrap_or_default();
        let (mut jpeg, leftover) = frame.take_jpeg(spare);
        self.recycle(leftover);
        let frame_id = frame.frame_id;
        self.park(frame);
        self.mark_closed(frame_id, now);
        if !trim_to_jpeg(&mut jpeg) {
            self.drops.add(DropReason::NotJpeg);
            self.recycle(jpeg);
            return None;
        }
        self.frames_completed += 1;
        self.last_delivered = Some((frame_id, now));
        self.supersede_frames_older_than(frame_id, now);
        Some(CompleteFrame { frame_id, jpeg })
    }

    fn supersede_frames_older_than(&mut self, delivered: u8, now: Instant) {
        while let Some(older) = self
            .in_flight
            .iter()
            .map(|f| f.frame_id)
            .find(|&id| !is_newer(id, delivered))
        {
            self.drop_frame(older, DropReason::Superseded, now);
        }
    }

    /// Keeps a finished frame's tables and buffer for the next frame.
    fn park(&mut self, mut frame: FrameInProgress) {
        let buffer = std::mem::take(&mut frame.data);
        self.recycle(buffer);
        if self.spare_frames.len() < self.limits.max_frames_in_flight {
            self.spare_frames.push(frame);
        }
    }
}

#[cfg(test)]
mod tests;
