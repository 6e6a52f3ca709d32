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

use crate::protocol::video::HEADER_LEN;

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
}

impl Faults {
    /// Names the first probability that is not a number in `0..=1`.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("garbage", self.garbage),
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
}

const GARBAGE_KINDS: [GarbageKind; 5] = [
    GarbageKind::RandomBytes,
    GarbageKind::Truncated,
    GarbageKind::LyingSize,
    GarbageKind::BogusIndex,
    GarbageKind::ForeignFrameId,
];

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
        }
    }

    fn random_bytes(&mut self, len: std::ops::RangeInclusive<usize>) -> Vec<u8> {
        let len = self.rng.random_range(len);
        (0..len).map(|_| self.rng.random()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::video::fragment_frame;
    use crate::protocol::{Fragment, PacketError};

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
        }
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
