//! How real scopes differ from the protocol write-up, as simulator options:
//! the frame id in the fragment header (constant, stepping, shuffled), filler
//! bytes after each JPEG's end marker, and a button port that never answers.

use std::fmt;
use std::str::FromStr;

/// How the simulated scope numbers its frames (fragment header byte 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameIds {
    /// 0, 1, 2, ... wrapping after 255, as the protocol write-up describes.
    #[default]
    Counting,
    /// The same id on every frame.
    Constant(u8),
    /// 0, N, 2N, ... wrapping after 255.
    Step(u8),
    /// A pseudo-random id per frame from the seed: out of order, repeats.
    Shuffled,
}

impl FrameIds {
    /// The id of frame `number` (counted from 0) for the fault `seed`.
    pub fn id(self, number: u64, seed: u64) -> u8 {
        match self {
            FrameIds::Counting => (number % 256) as u8,
            FrameIds::Constant(id) => id,
            FrameIds::Step(step) => (number.wrapping_mul(u64::from(step)) % 256) as u8,
            FrameIds::Shuffled => (splitmix64(seed ^ number.rotate_left(17)) >> 56) as u8,
        }
    }
}

/// One round of SplitMix64: a well-mixed 64-bit value from any input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl fmt::Display for FrameIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameIds::Counting => f.write_str("counting"),
            FrameIds::Constant(id) => write!(f, "constant:{id}"),
            FrameIds::Step(step) => write!(f, "step:{step}"),
            FrameIds::Shuffled => f.write_str("shuffled"),
        }
    }
}

/// A `--frame-ids` value that is not one of the forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a frame id scheme: counting, constant[:ID], step:N (N 1-255) or shuffled")]
pub struct ParseFrameIdsError(pub String);

impl FromStr for FrameIds {
    type Err = ParseFrameIdsError;

    /// `counting`, `constant` (id 0), `constant:ID`, `step:N`, `shuffled`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ParseFrameIdsError(s.to_owned());
        let (name, value) = match s.split_once(':') {
            Some((name, value)) => (name, Some(value.parse::<u8>().map_err(|_| error())?)),
            None => (s, None),
        };
        match (name, value) {
            ("counting", None) => Ok(FrameIds::Counting),
            ("shuffled", None) => Ok(FrameIds::Shuffled),
            ("constant", id) => Ok(FrameIds::Constant(id.unwrap_or(0))),
            ("step", Some(step)) if step > 0 => Ok(FrameIds::Step(step)),
            _ => Err(error()),
        }
    }
}

/// Most filler the simulator appends to a frame.
pub const MAX_FILLER: usize = 1 << 20;

/// `jpeg` followed by `len` filler bytes. The filler is not zeros: it holds
/// FF, D8 and D9 bytes, as leftover buffer contents might, so a receiver that
/// searched for the last FF D9 instead of walking to the real end would cut
/// the frame in the wrong place.
pub fn with_filler(jpeg: &[u8], len: usize) -> Vec<u8> {
    const PATTERN: [u8; 8] = [0x00, 0xFF, 0xD9, 0x5A, 0xFF, 0xD8, 0x00, 0xA5];
    let mut out = Vec::with_capacity(jpeg.len() + len);
    out.extend_from_slice(jpeg);
    out.extend(PATTERN.iter().cycle().take(len));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_id_schemes() {
        let ids = |scheme: FrameIds| -> Vec<u8> { (0..6).map(|n| scheme.id(n, 1)).collect() };
        assert_eq!(ids(FrameIds::Counting), [0, 1, 2, 3, 4, 5]);
        assert_eq!(FrameIds::Counting.id(256, 1), 0);
        assert_eq!(FrameIds::Counting.id(u64::MAX, 1), 255);
        assert_eq!(ids(FrameIds::Constant(9)), [9; 6]);
        assert_eq!(ids(FrameIds::Step(100)), [0, 100, 200, 44, 144, 244]);
        let shuffled: Vec<u8> = (0..64).map(|n| FrameIds::Shuffled.id(n, 7)).collect();
        assert!(shuffled.windows(2).any(|w| w[1] < w[0]), "{shuffled:?}");
        assert!(shuffled.windows(2).any(|w| w[1] != w[0].wrapping_add(1)));
        // The same seed gives the same ids.
        assert_eq!(FrameIds::Shuffled.id(5, 7), shuffled[5]);
    }

    #[test]
    fn frame_id_schemes_parse_and_print() {
        for (text, scheme) in [
            ("counting", FrameIds::Counting),
            ("constant", FrameIds::Constant(0)),
            ("constant:200", FrameIds::Constant(200)),
            ("step:3", FrameIds::Step(3)),
            ("shuffled", FrameIds::Shuffled),
        ] {
            assert_eq!(text.parse::<FrameIds>(), Ok(scheme), "{text}");
        }
        for scheme in [FrameIds::Constant(7), FrameIds::Step(3), FrameIds::Shuffled] {
            assert_eq!(scheme.to_string().parse::<FrameIds>(), Ok(scheme));
        }
        for bad in [
            "",
            "step",
            "step:0",
            "step:256",
            "constant:x",
            "counting:1",
            "random",
        ] {
            assert!(bad.parse::<FrameIds>().is_err(), "{bad}");
        }
    }

    #[test]
    fn filler_follows_the_jpeg() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
        assert_eq!(with_filler(&jpeg, 0), jpeg);
        let padded = with_filler(&jpeg, 20);
        assert_eq!(padded.len(), 24);
        assert_eq!(&padded[..4], &jpeg);
        assert!(padded[4..].windows(2).any(|w| w == [0xFF, 0xD9]));
    }
}
