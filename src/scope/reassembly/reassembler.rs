//! Reassembles fragmented JPEG frames with bounded memory.
//!
//! # Which fragments make a frame
//!
//! The reference clients build a frame from a start fragment (index 0, flag
//! 1), the fragments after it and an end fragment (flag 2), and ignore the
//! frame id: real scopes keep it constant, step it by more than one, or send
//! it out of order. So here the frame id is only half of a frame's key; the
//! other half is the announced JPEG size, which differs between consecutive
//! frames of a real picture. Frame ids carry no order.
//!
//! Each fragment is judged in this order (full reasoning: docs/protocol.md):
//! 1. Byte-identical (by a 64-bit hash) to the fragment at the same index of
//!    a recently closed frame with the same key: a repeat. It never goes
//!    into a different frame, so a duplicated fragment of a delivered frame
//!    cannot damage the next one, even one with the same id and size. A
//!    repeated start fragment opens a *repeat* frame that takes only that
//!    closed frame's fragments: it becomes an exact copy (delivered again:
//!    scopes do send the same picture twice) or is forgotten uncounted.
//! 2. A frame with its key is in flight: a fragment for a new index is
//!    stored; one for an index it already has is ignored if identical, and
//!    otherwise proves that two different frames share the key, so that
//!    frame is dropped (`Superseded` for a second start fragment, else
//!    `InconsistentHeader`) rather than risk a picture made of two. A repeat
//!    in flight gives way to a fragment that is not a repeat.
//! 3. No frame with its key in flight: a key that was recently dropped
//!    unfinished is held back (its missing fragments may still arrive and
//!    could not be told from a new frame's); otherwise the fragment opens a
//!    new frame. A start fragment therefore begins a new frame even when
//!    its id was just used, and a frame whose fragments arrive out of order
//!    is still assembled.
//!
//! Frames are ordered by when they were opened: delivering one supersedes
//! those opened before it (the reference clients drop an unfinished frame
//! when the next one starts), and when `max_frames_in_flight` are open a
//! repeat, else the oldest, makes room. Closed frames are remembered (their
//! key and fragment hashes, up to [`CLOSED_FRAMES_REMEMBERED`] of them) for
//! `frame_timeout`.
//!
//! What stays ambiguous, only between frames with the same id *and* size
//! (consecutive frames of a real picture practically never have the same
//! size): a new frame whose fragment equals the previous frame's at the same
//! index takes it for a repeat and is lost; and if the first of two such
//! frames lost its start fragment and the second's start comes before any
//! of its other fragments, the two are assembled as one.
//!
//! # Memory
//!
//! - Payload bytes are appended to the frame's buffer in arrival order,
//!   growing it only as bytes arrive and never beyond the announced size
//!   (itself capped by `max_frame_bytes`): a hostile size field cannot cause
//!   a large allocation. In the common in-order case that buffer *is* the
//!   JPEG; only if fragments arrived out of order are they copied once more,
//!   in index order, on completion.
//! - A fragment that fails admission (bad format, hostile size or index) is
//!   dropped on its own: it proves nothing about the frame it claims, so it
//!   touches no frame in flight. It is counted once per frame id and
//!   `frame_timeout`, not once per fragment.
//! - Buffers come back through [`Reassembler::recycle`], and frame tables
//!   are reused, so a steady stream allocates nothing.

use std::fmt;
use std::time::{Duration, Instant};

use crate::scope::protocol::video::FORMAT_MJPEG;
use crate::scope::protocol::{Fragment, FragmentKind};

/// How many bytes after the JPEG's end-of-image marker (FF D9) a frame may
/// carry within its announced size; they are cut off before delivery.
///
/// Some scopes pad each JPEG with filler (zeros, or whatever was left in the
/// buffer): hardware encoders round their output up to a word, a 512-byte
/// sector or a 4 KiB page, and the reference clients' decoders ignore what
/// follows the end marker. 4 KiB covers a whole page of padding while
/// staying a small part of any real frame (a 640x480 JPEG is tens of KiB)
/// and under three fragments; a frame with more after its end is mostly
/// something else and is dropped as `NotJpeg`.
pub const MAX_TRAILING_PADDING: usize = 4096;

/// Bounds on what the reassembler accepts and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Largest announced frame size accepted; larger (or zero) is `Oversized`.
    pub max_frame_bytes: usize,
    /// Fragment indices at or above this are `InconsistentHeader`.
    pub max_fragments: usize,
    /// A frame not complete this long after its first fragment is
    /// `Incomplete`; closed frames are also remembered this long.
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
    /// Fragments of one frame disagree: two different "last" indices, an
    /// index beyond the last one, two different payloads for one index (two
    /// frames share the id and size), or an index >= `max_fragments`.
    InconsistentHeader,
    /// Announced size is zero or above `max_frame_bytes`.
    Oversized,
    /// Pushed out by a newer frame: one opened after it was delivered first,
    /// `max_frames_in_flight` were open, or a second, different start
    /// fragment came with the same id and size.
    Superseded,
    /// Does not walk as a JPEG from FF D8 to its end marker FF D9, or has
    /// more than [`MAX_TRAILING_PADDING`] bytes after that marker.
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
    /// A JPEG that walks from FF D8 to its end marker FF D9 and stops there
    /// (filler after the marker is cut off).
    /// Hand it back with [`Reassembler::recycle`] when done.
    pub jpeg: Vec<u8>,
}

/// Closed (delivered or dropped) frames remembered, so their late and
/// duplicated fragments are recognised: a second of video at 30 fps. Each
/// keeps its fragment tables (12 bytes or so per fragment), no payload.
pub const CLOSED_FRAMES_REMEMBERED: usize = 32;

/// What tells frames apart: the id and the announced size (see the module
/// docs for why the id alone is not enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameKey {
    id: u8,
    size: u32,
}

impl FrameKey {
    fn of(fragment: &Fragment<'_>) -> Self {
        FrameKey {
            id: fragment.header.frame_id,
            size: fragment.header.frame_size,
        }
    }
}

/// A 64-bit hash of a fragment's payload, to tell a repeated fragment from a
/// different one with the same header. Unkeyed: the same bytes always hash the same.
fn fingerprint(payload: &[u8]) -> u64 {
    // The length is part of what is hashed: XXH3 of the payload is seeded with it.
    xxhash_rust::xxh3::xxh3_64_with_seed(payload, payload.len() as u64)
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

    fn contains(&self, index: u16) -> bool {
        self.words
            .get(usize::from(index / 64))
            .is_some_and(|w| w & (1u64 << (index % 64)) != 0)
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

/// One frame being assembled, and after it closed, the record of it that
/// recognises its late fragments. Kept and reused across frames so its
/// tables are not reallocated.
#[derive(Debug)]
struct FrameInProgress {
    key: FrameKey,
    /// Announced total size, already checked against `max_frame_bytes`.
    announced: usize,
    started: Instant,
    /// Opening order: a frame opened earlier is older.
    opened: u64,
    last_index: Option<u16>,
    highest_index: u16,
    fragments_received: usize,
    received: IndexSet,
    /// Payload fingerprints by fragment index (valid where `received`).
    fingerprints: Vec<u64>,
    /// Payloads in arrival order.
    data: Vec<u8>,
    segments: Vec<Segment>,
    /// Once closed: when, and whether every fragment had arrived.
    closed_at: Instant,
    finished: bool,
    /// A repeat of the closed frame opened as this number: it takes only
    /// fragments identical to that frame's, so it can only ever become an
    /// exact copy of it; dropped without being counted.
    echo_of: Option<u64>,
}

impl FrameInProgress {
    fn new(now: Instant) -> Self {
        FrameInProgress {
            key: FrameKey { id: 0, size: 0 },
            announced: 0,
            started: now,
            opened: 0,
            last_index: None,
            highest_index: 0,
            fragments_received: 0,
            received: IndexSet::default(),
            fingerprints: Vec::new(),
            data: Vec::new(),
            segments: Vec::new(),
            closed_at: now,
            finished: false,
            echo_of: None,
        }
    }

    fn begin(
        &mut self,
        key: FrameKey,
        announced: usize,
        now: Instant,
        opened: u64,
        buffer: Vec<u8>,
    ) {
        self.key = key;
        self.announced = announced;
        self.started = now;
        self.opened = opened;
        self.last_index = None;
        self.highest_index = 0;
        self.fragments_received = 0;
        self.received.clear();
        self.fingerprints.clear();
        self.data = buffer;
        self.data.clear();
        self.segments.clear();
        self.finished = false;
        self.echo_of = None;
    }

    /// Checks `fragment` against what this frame already knows and stores
    /// its payload.
    fn accept(
        &mut self,
        fragment: &Fragment<'_>,
        fingerprint: u64,
        max_fragments: usize,
    ) -> Result<Progress, DropReason> {
        let header = &fragment.header;
        if usize::from(header.index) >= max_fragments
            || self.last_index.is_some_and(|last| header.index > last)
        {
            return Err(DropReason::InconsistentHeader);
        }
        if let Some(known) = self.fingerprint_of(header.index) {
            return match (known == fingerprint, header.index) {
                (true, _) => Ok(Progress::Duplicate),
                (false, 0) => Err(DropReason::Superseded),
                (false, _) => Err(DropReason::InconsistentHeader),
            };
        }
        if header.kind == FragmentKind::Last {
            self.learn_last_index(header.index)?;
        }
        self.received.insert(header.index);
        self.store(header.index, fragment.payload, fingerprint)?;
        self.progress()
    }

    /// The fingerprint of fragment `index`, if it has arrived.
    fn fingerprint_of(&self, index: u16) -> Option<u64> {
        if !self.received.contains(index) {
            return None;
        }
        self.fingerprints.get(usize::from(index)).copied()
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

    fn store(&mut self, index: u16, payload: &[u8], fingerprint: u64) -> Result<(), DropReason> {
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
        let slot = usize::from(index);
        if slot >= self.fingerprints.len() {
            self.fingerprints.resize(slot + 1, 0);
        }
        if let Some(stored) = self.fingerprints.get_mut(slot) {
            *stored = fingerprint;
        }
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
    /// belong to the frame then, and docs/protocol.md says it is unknown how
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

/// Walks the JPEG to its true end-of-image marker and cuts off what follows,
/// up to [`MAX_TRAILING_PADDING`] bytes of anything. False if it does not
/// walk as a JPEG or more follows.
fn trim_to_jpeg(jpeg: &mut Vec<u8>) -> bool {
    match crate::jpeg::end_of_image(jpeg) {
        Ok(end) if jpeg.len() - end <= MAX_TRAILING_PADDING => {
            jpeg.truncate(end);
            true
        }
        _ => false,
    }
}

/// Fragments in, complete JPEG frames out. See the module docs.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    in_flight: Vec<FrameInProgress>,
    /// Records of the last [`CLOSED_FRAMES_REMEMBERED`] closed frames, a
    /// ring: `next_closed` is the slot the next one replaces.
    closed: Vec<FrameInProgress>,
    next_closed: usize,
    spare_frames: Vec<FrameInProgress>,
    spare_buffers: Vec<Vec<u8>>,
    /// When a fragment claiming each frame id was last rejected at
    /// admission; only used so a rejected frame is counted once.
    rejected_at: Box<[Option<Instant>; 256]>,
    /// The `opened` number of the next frame.
    next_opened: u64,
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
            closed: Vec::with_capacity(CLOSED_FRAMES_REMEMBERED),
            next_closed: 0,
            spare_frames: Vec::with_capacity(limits.max_frames_in_flight),
            spare_buffers: Vec::with_capacity(limits.max_frames_in_flight + 1),
            rejected_at: Box::new([None; 256]),
            next_opened: 0,
            drops: DropCounts::default(),
            frames_completed: 0,
            limits,
        }
    }

    /// Feeds one parsed fragment received at `now`. Returns the frame it
    /// completed, if any. Also expires old frames, as [`expire`](Self::expire).
    pub fn push(&mut self, fragment: &Fragment<'_>, now: Instant) -> Option<CompleteFrame> {
        self.expire(now);
        let announced = match self.admit(fragment) {
            Ok(announced) => announced,
            Err(reason) => {
                self.reject_fragment(fragment.header.frame_id, reason, now);
                return None;
            }
        };
        let key = FrameKey::of(fragment);
        let index = fragment.header.index;
        let fingerprint = fingerprint(fragment.payload);
        let position = self.place(key, announced, index, fingerprint, now)?;
        let frame = self.in_flight.get_mut(position)?;
        match frame.accept(fragment, fingerprint, self.limits.max_fragments) {
            Ok(Progress::Waiting | Progress::Duplicate) => None,
            Ok(Progress::Complete) => self.finish(position, now),
            Err(reason) => {
                self.drop_frame(position, reason, now);
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
            self.drop_frame(position, DropReason::Incomplete, now);
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
    /// are dropped as `Incomplete`, and recently closed frames are no longer
    /// held against new fragments. Counters and buffers are kept.
    pub fn reset_stream(&mut self) {
        while let Some(mut frame) = self.in_flight.pop() {
            if frame.echo_of.is_none() {
                self.drops.add(DropReason::Incomplete);
            }
            self.recycle(std::mem::take(&mut frame.data));
            self.keep_spare(frame);
        }
        while let Some(record) = self.closed.pop() {
            self.keep_spare(record);
        }
        self.next_closed = 0;
        self.rejected_at.fill(None);
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

    /// The checks that need no frame state: the format, the announced size
    /// (returned) and the index. A fragment failing them is rejected alone,
    /// so a bad fragment never evicts or breaks a good frame.
    fn admit(&self, fragment: &Fragment<'_>) -> Result<usize, DropReason> {
        let header = &fragment.header;
        if header.format != FORMAT_MJPEG {
            return Err(DropReason::UnsupportedFormat);
        }
        let announced = match usize::try_from(header.frame_size) {
            Ok(size) if size > 0 && size <= self.limits.max_frame_bytes => size,
            _ => return Err(DropReason::Oversized),
        };
        if usize::from(header.index) >= self.limits.max_fragments {
            return Err(DropReason::InconsistentHeader);
        }
        if fragment.payload.len() > announced {
            return Err(DropReason::SizeMismatch);
        }
        Ok(announced)
    }

    /// The remembered closed frames, within `frame_timeout` of closing.
    fn recently_closed(&self, now: Instant) -> impl Iterator<Item = &FrameInProgress> {
        let timeout = self.limits.frame_timeout;
        self.closed
            .iter()
            .filter(move |r| now.saturating_duration_since(r.closed_at) < timeout)
    }

    /// The frame in flight a fragment goes to, opening one if the rules in
    /// the module docs say so; `None` if the fragment is to be ignored.
    fn place(
        &mut self,
        key: FrameKey,
        announced: usize,
        index: u16,
        fingerprint: u64,
        now: Instant,
    ) -> Option<usize> {
        let repeated = self.closed_frame_with(key, index, fingerprint, now);
        if let Some(position) = self.position_of(key) {
            match self.in_flight.get(position)?.echo_of {
                None if repeated.is_some() => return None,
                None => return Some(position),
                Some(echoed) if self.closed_frame_had(echoed, index, fingerprint, now) => {
                    return Some(position);
                }
                // Not a repeat after all: a new frame with the same key.
                Some(_) => self.drop_frame(position, DropReason::Superseded, now),
            }
        }
        match repeated {
            Some(echoed) if index == 0 => {
                let position = self.open_frame(key, announced, now);
                if let Some(frame) = self.in_flight.get_mut(position) {
                    frame.echo_of = Some(echoed);
                }
                Some(position)
            }
            Some(_) => None,
            None if self.held_back(key, now) => None,
            None => Some(self.open_frame(key, announced, now)),
        }
    }

    /// The most recent closed frame with this key that had this very
    /// fragment, by its opening number.
    fn closed_frame_with(
        &self,
        key: FrameKey,
        index: u16,
        fingerprint: u64,
        now: Instant,
    ) -> Option<u64> {
        self.recently_closed(now)
            .filter(|r| r.key == key && r.fingerprint_of(index) == Some(fingerprint))
            .map(|r| r.opened)
            .max()
    }

    /// True if the closed frame opened as `opened` had this very fragment.
    fn closed_frame_had(&self, opened: u64, index: u16, fingerprint: u64, now: Instant) -> bool {
        self.recently_closed(now)
            .any(|r| r.opened == opened && r.fingerprint_of(index) == Some(fingerprint))
    }

    /// True if a frame with this key was recently dropped unfinished: its
    /// missing fragments may still arrive, and would be taken for a new
    /// frame's.
    fn held_back(&self, key: FrameKey, now: Instant) -> bool {
        self.recently_closed(now)
            .any(|r| r.key == key && !r.finished)
    }

    /// Counts a fragment that failed admission, once per frame id and
    /// `frame_timeout`, and leaves the frame state alone: a stray or
    /// foreign fragment must not hide (or break) the genuine frame that
    /// happens to share its id.
    fn reject_fragment(&mut self, frame_id: u8, reason: DropReason, now: Instant) {
        let slot = usize::from(frame_id);
        let counted_recently = self.rejected_at[slot]
            .is_some_and(|at| now.saturating_duration_since(at) < self.limits.frame_timeout);
        if !counted_recently {
            self.drops.add(reason);
            self.rejected_at[slot] = Some(now);
        }
    }

    fn position_of(&self, key: FrameKey) -> Option<usize> {
        self.in_flight.iter().position(|f| f.key == key)
    }

    /// Starts assembling a new frame, making room by superseding the oldest
    /// frame in flight. Returns its position.
    fn open_frame(&mut self, key: FrameKey, announced: usize, now: Instant) -> usize {
        if self.in_flight.len() >= self.limits.max_frames_in_flight {
            if let Some(oldest) = self.oldest_in_flight() {
                self.drop_frame(oldest, DropReason::Superseded, now);
            }
        }
        let buffer = self.spare_buffers.pop().unwrap_or_default();
        let mut frame = self
            .spare_frames
            .pop()
            .unwrap_or_else(|| FrameInProgress::new(now));
        frame.begin(key, announced, now, self.next_opened, buffer);
        self.next_opened += 1;
        self.in_flight.push(frame);
        self.in_flight.len() - 1
    }

    /// The repeat opened first, else the frame opened first.
    fn oldest_in_flight(&self) -> Option<usize> {
        self.in_flight
            .iter()
            .enumerate()
            .min_by_key(|(_, f)| (f.echo_of.is_none(), f.opened))
            .map(|(position, _)| position)
    }

    /// Counts a dropped frame and closes it. A repeat of a closed frame is
    /// only forgotten: it was made of duplicates, nothing was lost.
    fn drop_frame(&mut self, position: usize, reason: DropReason, now: Instant) {
        if position >= self.in_flight.len() {
            return;
        }
        let mut frame = self.in_flight.swap_remove(position);
        if frame.echo_of.is_some() {
            self.recycle(std::mem::take(&mut frame.data));
            self.keep_spare(frame);
        } else {
            self.drops.add(reason);
            self.close(frame, false, now);
        }
    }

    /// Keeps a closed frame's record (its buffer goes back to the pool), in
    /// place of the oldest record once the ring is full.
    fn close(&mut self, mut frame: FrameInProgress, finished: bool, now: Instant) {
        let buffer = std::mem::take(&mut frame.data);
        self.recycle(buffer);
        frame.closed_at = now;
        frame.finished = finished;
        if self.closed.len() < CLOSED_FRAMES_REMEMBERED {
            self.closed.push(frame);
        } else if let Some(slot) = self.closed.get_mut(self.next_closed) {
            let replaced = std::mem::replace(slot, frame);
            self.keep_spare(replaced);
        }
        self.next_closed = (self.next_closed + 1) % CLOSED_FRAMES_REMEMBERED;
    }

    /// Keeps a frame's tables for the next frame, up to what can be in
    /// flight at once.
    fn keep_spare(&mut self, frame: FrameInProgress) {
        if self.spare_frames.len() < self.limits.max_frames_in_flight {
            self.spare_frames.push(frame);
        }
    }

    fn finish(&mut self, position: usize, now: Instant) -> Option<CompleteFrame> {
        let mut frame = self.in_flight.swap_remove(position);
        let spare = self.spare_buffers.pop().unwrap_or_default();
        let (mut jpeg, leftover) = frame.take_jpeg(spare);
        self.recycle(leftover);
        let (frame_id, opened) = (frame.key.id, frame.opened);
        let repeat = frame.echo_of.is_some();
        self.close(frame, true, now);
        if !trim_to_jpeg(&mut jpeg) {
            self.drops.add(DropReason::NotJpeg);
            self.recycle(jpeg);
            return None;
        }
        self.frames_completed += 1;
        // A repeat says nothing about how far the stream has got.
        if !repeat {
            self.supersede_frames_opened_before(opened, now);
        }
        Some(CompleteFrame { frame_id, jpeg })
    }

    fn supersede_frames_opened_before(&mut self, opened: u64, now: Instant) {
        while let Some(older) = self.in_flight.iter().position(|f| f.opened < opened) {
            self.drop_frame(older, DropReason::Superseded, now);
        }
    }
}

#[cfg(test)]
mod tests;
