//! Network faults the simulated scope can inject into its fragment stream.
//!
//! A real link loses, duplicates and reorders datagrams, and a confused
//! scope (or anything else on the port) can send junk. The bridge must cope
//! with all of that, so the simulator can produce each of them on purpose,
//! with a seeded RNG so that a failing test can be replayed exactly.
//! Nothing here touches a socket: [`FaultInjector::apply`] turns the clean
//! fragments of one frame into the datagrams to send.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::scope::protocol::video::HEADER_LEN;

/// Probabilities per fragment, each in `0..=1`. Default: a perfect link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// The fragment is not sent.
    pub loss: f64,
    /// The fragment is sent twice in a row.
    pub duplicate: f64,
    /// The fragment is held back and sent after the next fragment of the
    /// same frame (the last fragment of a frame is never held).
    pub reorder: f64,
    /// A junk datagram (see [`GarbageKind`]) is sent before the fragment.
    pub garbage: f64,
    /// Per frame: its fragments are sent alternating with those of the next
    /// frame (see [`interleave`]), as a scope with two frames in its send
    /// queue might. Applied by the scope, which owns the frame clock.
    pub interleave: f64,
}

impl Faults {
    /// Names the first probability that is not a number in `0..=1`.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("garbage", self.garbage),
            ("interleave", self.interleave),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} probability {p} is not between 0 and 1"));
            }
        }
        Ok(())
    }

    /// True if no fault can ever happen.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }
}

/// The kinds of junk datagram, each a different way a bridge can be fooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GarbageKind {
    /// Random bytes of random length (0 to 64), usually no magic at all.
    RandomBytes,
    /// A real fragment cut short, so its payload-size field is too big.
    Truncated,
    /// A real fragment whose payload-size field was changed.
    LyingSize,
    /// A well-formed middle fragment of the current frame with an index past
    /// the frame's last fragment and random payload.
    BogusIndex,
    /// A real fragment relabelled with a frame id other than the current one.
    ForeignFrameId,
    /// A datagram of [`OVERSIZED_LEN`] bytes, longer than any fragment a
    /// scope sends, whose header is consistent with itself and claims the
    /// current frame, id and index of the fragment it precedes: it parses,
    /// so only the reassembler can notice that it does not fit the frame.
    Oversized,
    /// A copy of the real fragment whose frame-size field lies: either far
    /// more than any frame (up to 4 GiB, which must never be allocated) or
    /// less than the JPEG really is.
    LyingFrameSize,
}

const GARBAGE_KINDS: [GarbageKind; 7] = [
    GarbageKind::RandomBytes,
    GarbageKind::Truncated,
    GarbageKind::LyingSize,
    GarbageKind::BogusIndex,
    GarbageKind::ForeignFrameId,
    GarbageKind::Oversized,
    GarbageKind::LyingFrameSize,
];

/// Length of an [`GarbageKind::Oversized`] datagram: a jumbo frame, far
/// beyond the ~1.5 KB fragments a scope sends over its USB Ethernet.
pub const OVERSIZED_LEN: usize = 9000;
/// The largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;

/// One datagram to send, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A genuine fragment (possibly a duplicate or out of order).
    Fragment(Vec<u8>),
    /// Junk.
    Garbage(GarbageKind, Vec<u8>),
}

impl Outgoing {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Outgoing::Fragment(bytes) | Outgoing::Garbage(_, bytes) => bytes,
        }
    }
}

/// What the injector did, summed over its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub garbage: u64,
    /// Pairs of frames sent interleaved.
    pub interleaved: u64,
}

/// Applies [`Faults`] to frames, one after another, with a seeded RNG.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    faults: Faults,
    rng: SmallRng,
    counts: FaultCounts,
}

impl FaultInjector {
    /// Probabilities outside `0..=1` (or NaN) are clamped into range (NaN: 0).
    pub fn new(faults: Faults, seed: u64) -> Self {
        let sanitise = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        FaultInjector {
            faults: Faults {
                loss: sanitise(faults.loss),
                duplicate: sanitise(faults.duplicate),
                reorder: sanitise(faults.reorder),
                garbage: sanitise(faults.garbage),
                interleave: sanitise(faults.interleave),
            },
            rng: SmallRng::seed_from_u64(seed),
            counts: FaultCounts::default(),
        }
    }

    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    /// Turns the fragments of one frame (as made by `fragment_frame`, in
    /// order) into the datagrams to send, in sending order.
    pub fn apply(&mut self, fragments: Vec<Vec<u8>>) -> Vec<Outgoing> {
        if self.faults.is_none() {
            return fragments.into_iter().map(Outgoing::Fragment).collect();
        }
        let count = fragments.len();
        let mut out = Vec::with_capacity(count + count / 8);
        let mut held_back: Option<Vec<Outgoing>> = None;
        for (position, fragment) in fragments.into_iter().enumerate() {
            if self.roll(self.faults.garbage) {
                let kind = GARBAGE_KINDS[self.rng.random_range(0..GARBAGE_KINDS.len())];
                out.push(Outgoing::Garbage(
                    kind,
                    self.garbage(kind, &fragment, count),
                ));
                self.counts.garbage += 1;
            }
            if self.roll(self.faults.loss) {
                self.counts.lost += 1;
                continue;
            }
            let copies = self.copies_of(fragment);
            let is_last = position + 1 == count;
            if held_back.is_none() && !is_last && self.roll(self.faults.reorder) {
                self.counts.reordered += 1;
                held_back = Some(copies);
                continue;
            }
            out.extend(copies);
            out.extend(held_back.take().into_iter().flatten());
        }
        // Only reachable if every fragment after the held one was lost.
        out.extend(held_back.into_iter().flatten());
        out
    }

    /// Decides whether the next frame is interleaved with the one after it;
    /// if so, the caller sends both with [`FaultInjector::apply_interleaved`].
    pub fn interleave_next(&mut self) -> bool {
        self.roll(self.faults.interleave)
    }

    /// Applies the faults to two consecutive frames and mixes their
    /// datagrams (see [`interleave`]).
    pub fn apply_interleaved(
        &mut self,
        first: Vec<Vec<u8>>,
        second: Vec<Vec<u8>>,
    ) -> Vec<Outgoing> {
        self.counts.interleaved += 1;
        let first = self.apply(first);
        let second = self.apply(second);
        interleave(first, second)
    }

    fn roll(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability)
    }

    fn copies_of(&mut self, fragment: Vec<u8>) -> Vec<Outgoing> {
        if self.roll(self.faults.duplicate) {
            self.counts.duplicated += 1;
            vec![
                Outgoing::Fragment(fragment.clone()),
                Outgoing::Fragment(fragment),
            ]
        } else {
            vec![Outgoing::Fragment(fragment)]
        }
    }

    /// Builds one junk datagram of the given kind, modelled on `fragment`
    /// (a genuine fragment of a frame with `fragment_count` fragments).
    fn garbage(&mut self, kind: GarbageKind, fragment: &[u8], fragment_count: usize) -> Vec<u8> {
        let has_header = fragment.len() >= HEADER_LEN;
        match kind {
            GarbageKind::RandomBytes => self.random_bytes(0..=64),
            _ if !has_header => self.random_bytes(0..=64),
            GarbageKind::Truncated => {
                let keep = self.rng.random_range(0..fragment.len());
                fragment[..keep].to_vec()
            }
            GarbageKind::LyingSize => {
                let mut bytes = fragment.to_vec();
                let actual = (fragment.len() - HEADER_LEN) as u16;
                let lie = actual.wrapping_add(self.rng.random_range(1..=u16::MAX));
                bytes[14..16].copy_from_slice(&lie.to_le_bytes());
                bytes
            }
            GarbageKind::BogusIndex => {
                let first_bogus = u16::try_from(fragment_count).unwrap_or(u16::MAX);
                let index = self.rng.random_range(first_bogus..=u16::MAX);
                let payload = self.random_bytes(1..=64);
                let mut bytes = fragment[..HEADER_LEN].to_vec();
                bytes[1] = 3; // middle
                bytes[12..14].copy_from_slice(&index.to_le_bytes());
                bytes[14..16].copy_from_slice(&(payload.len() as u16).to_le_bytes());
                bytes.extend_from_slice(&payload);
                bytes
            }
            GarbageKind::ForeignFrameId => {
                let mut bytes = fragment.to_vec();
                bytes[3] ^= self.rng.random_range(1..=u8::MAX);
                bytes
            }
            GarbageKind::Oversized => {
                // Longer than the fragment it imitates, within UDP's limit.
                let len = OVERSIZED_LEN.max(fragment.len() + 1).min(MAX_UDP_PAYLOAD);
                let payload_len = len - HEADER_LEN;
                let mut bytes = fragment[..HEADER_LEN].to_vec();
                bytes.extend(self.random_bytes(payload_len..=payload_len));
                bytes[14..16].copy_from_slice(&(payload_len as u16).to_le_bytes());
                bytes
            }
            GarbageKind::LyingFrameSize => {
                let mut bytes = fragment.to_vec();
                let actual = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                let lie = if actual <= 1 || self.rng.random_bool(0.5) {
                    self.rng
                        .random_range(actual.saturating_add(1 << 20).max(1 << 24)..=u32::MAX)
                } else {
                    self.rng.random_range(1..actual)
                };
                bytes[4..8].copy_from_slice(&lie.to_le_bytes());
                bytes
            }
        }
    }

    /// One junk datagram for a flood: never a parseable fragment, so a bridge
    /// has to look at it and reject it (a flood of plausible fragments
    /// spoofed from the scope's own address is indistinguishable from the
    /// scope and could not be survived by any client). Modelled on
    /// `fragment`, a genuine fragment.
    pub fn flood_datagram(&mut self, fragment: &[u8]) -> Vec<u8> {
        const KINDS: [GarbageKind; 4] = [
            GarbageKind::RandomBytes,
            GarbageKind::Truncated,
            GarbageKind::LyingSize,
            GarbageKind::Oversized,
        ];
        loop {
            let kind = KINDS[self.rng.random_range(0..KINDS.len())];
            let mut bytes = self.garbage(kind, fragment, 1);
            if kind == GarbageKind::Oversized && bytes.len() > HEADER_LEN {
                // Keep it jumbo but make its payload-size field disagree.
                let lie = u16::from_le_bytes([bytes[14], bytes[15]]).wrapping_sub(1);
                bytes[14..16].copy_from_slice(&lie.to_le_bytes());
            }
            // Random bytes may, very rarely, form a valid fragment.
            if crate::scope::protocol::Fragment::parse(&bytes).is_err() {
                return bytes;
            }
        }
    }

    fn random_bytes(&mut self, len: std::ops::RangeInclusive<usize>) -> Vec<u8> {
        let len = self.rng.random_range(len);
        (0..len).map(|_| self.rng.random()).collect()
    }
}

/// Mixes the datagrams of two frames, alternating one of each while both
/// last, then the rest of the longer one: the reassembler sees two frames in
/// flight at once, and the second may be finished before the first.
pub fn interleave(first: Vec<Outgoing>, second: Vec<Outgoing>) -> Vec<Outgoing> {
    let mut out = Vec::with_capacity(first.len() + second.len());
    let (mut first, mut second) = (first.into_iter(), second.into_iter());
    loop {
        match (first.next(), second.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::protocol::video::fragment_frame;
    use crate::scope::protocol::{Fragment, PacketError};

    fn frame(len: usize, id: u8) -> Vec<Vec<u8>> {
        let jpeg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        fragment_frame(&jpeg, id, 100)
    }

    fn indices(out: &[Outgoing]) -> Vec<u16> {
        out.iter()
            .filter_map(|o| match o {
                Outgoing::Fragment(b) => Some(Fragment::parse(b).unwrap().header.index),
                Outgoing::Garbage(..) => None,
            })
            .collect()
    }

    #[test]
    fn no_faults_passes_fragments_through() {
        let mut injector = FaultInjector::new(Faults::default(), 1);
        let out = injector.apply(frame(1000, 0));
        assert_eq!(indices(&out), (0..10).collect::<Vec<_>>());
        assert_eq!(injector.counts(), FaultCounts::default());
    }

    #[test]
    fn certain_loss_sends_nothing() {
        let faults = Faults {
            loss: 1.0,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, 1);
        assert!(injector.apply(frame(1000, 0)).is_empty());
        assert_eq!(injector.counts().lost, 10);
    }

    #[test]
    fn certain_duplication_sends_each_fragment_twice_in_a_row() {
        let faults = Faults {
            duplicate: 1.0,
            ..Faults::default()
        };
        let out = FaultInjector::new(faults, 1).apply(frame(300, 0));
        assert_eq!(indices(&out), vec![0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn certain_reorder_swaps_pairs_and_keeps_the_last_in_place() {
        let faults = Faults {
            reorder: 1.0,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, 1);
        assert_eq!(indices(&injector.apply(frame(500, 0))), vec![1, 0, 3, 2, 4]);
        assert_eq!(injector.counts().reordered, 2);
    }

    #[test]
    fn partial_faults_are_reproducible_with_a_seed() {
        let faults = Faults {
            loss: 0.2,
            duplicate: 0.2,
            reorder: 0.2,
            garbage: 0.2,
            interleave: 0.2,
        };
        let run = |seed| FaultInjector::new(faults, seed).apply(frame(5000, 9));
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn garbage_comes_in_every_kind_and_is_recognisably_wrong() {
        let faults = Faults {
            garbage: 1.0,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, 7);
        let mut seen = std::collections::HashSet::new();
        for id in 0..40u8 {
            let fragments = frame(1000, id);
            let count = fragments.len() as u16;
            let out = injector.apply(fragments);
            assert_eq!(out.len(), 20, "one junk datagram per fragment");
            for item in &out {
                let Outgoing::Garbage(kind, bytes) = item else {
                    continue;
                };
                seen.insert(*kind);
                check_garbage(*kind, bytes, id, count);
            }
        }
        assert_eq!(seen.len(), GARBAGE_KINDS.len(), "saw {seen:?}");
    }

    fn check_garbage(kind: GarbageKind, bytes: &[u8], frame_id: u8, count: u16) {
        let parsed = Fragment::parse(bytes);
        match kind {
            GarbageKind::RandomBytes => assert!(bytes.len() <= 64),
            GarbageKind::Truncated => assert!(matches!(
                parsed,
                Err(PacketError::TooShort { .. } | PacketError::PayloadLength { .. })
            )),
            GarbageKind::LyingSize => {
                assert!(matches!(parsed, Err(PacketError::PayloadLength { .. })))
            }
            GarbageKind::BogusIndex => {
                let header = parsed.unwrap().header;
                assert_eq!(header.frame_id, frame_id);
                assert!(header.index >= count);
            }
            GarbageKind::ForeignFrameId => {
                assert_ne!(parsed.unwrap().header.frame_id, frame_id)
            }
            GarbageKind::Oversized => {
                assert_eq!(bytes.len(), OVERSIZED_LEN);
                let header = parsed.expect("an oversized datagram parses").header;
                assert_eq!(header.frame_id, frame_id);
                assert!(header.index < count);
            }
            GarbageKind::LyingFrameSize => {
                let header = parsed.expect("a lying frame size parses").header;
                assert_eq!(header.frame_id, frame_id);
                assert_ne!(header.frame_size, 1000);
            }
        }
    }

    #[test]
    fn lying_frame_sizes_go_both_ways() {
        let faults = Faults {
            garbage: 1.0,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, 3);
        let (mut huge, mut small) = (0, 0);
        for id in 0..100u8 {
            for item in injector.apply(frame(1000, id)) {
                if let Outgoing::Garbage(GarbageKind::LyingFrameSize, bytes) = item {
                    let size = Fragment::parse(&bytes).unwrap().header.frame_size;
                    if size >= 1 << 24 {
                        huge += 1;
                    } else {
                        assert!((1..1000).contains(&size), "{size}");
                        small += 1;
                    }
                }
            }
        }
        assert!(huge > 5 && small > 5, "huge {huge}, small {small}");
    }

    #[test]
    fn interleaving_alternates_two_frames_then_finishes_the_longer() {
        let frames = |id| frame(500, id).into_iter().map(Outgoing::Fragment).collect();
        let mixed = interleave(
            frames(1),
            frame(200, 2).into_iter().map(Outgoing::Fragment).collect(),
        );
        let order: Vec<(u8, u16)> = mixed
            .iter()
            .map(|o| {
                let header = Fragment::parse(o.bytes()).unwrap().header;
                (header.frame_id, header.index)
            })
            .collect();
        assert_eq!(
            order,
            vec![(1, 0), (2, 0), (1, 1), (2, 1), (1, 2), (1, 3), (1, 4)]
        );
    }

    #[test]
    fn certain_interleaving_is_decided_per_frame_pair_and_counted() {
        let faults = Faults {
            interleave: 1.0,
            ..Faults::default()
        };
        let mut injector = FaultInjector::new(faults, 5);
        assert!(injector.interleave_next());
        let out = injector.apply_interleaved(frame(300, 7), frame(300, 8));
        assert_eq!(out.len(), 6);
        assert_eq!(injector.counts().interleaved, 1);
        assert!(!FaultInjector::new(Faults::default(), 5).interleave_next());
    }

    #[test]
    fn flood_datagrams_never_parse_and_include_jumbo_ones() {
        let mut injector = FaultInjector::new(Faults::default(), 11);
        let model = &frame(3000, 4)[1];
        let mut jumbo = 0;
        for _ in 0..2000 {
            let bytes = injector.flood_datagram(model);
            assert!(Fragment::parse(&bytes).is_err(), "{bytes:?}");
            if bytes.len() == OVERSIZED_LEN {
                jumbo += 1;
            }
        }
        assert!(jumbo > 100, "{jumbo} jumbo datagrams");
    }

    #[test]
    fn out_of_range_probabilities_are_reported_and_clamped() {
        let faults = Faults {
            loss: 1.5,
            duplicate: f64::NAN,
            ..Faults::default()
        };
        assert!(faults.validate().unwrap_err().contains("loss"));
        let out = FaultInjector::new(faults, 0).apply(frame(200, 0));
        assert!(out.is_empty());
    }
}
