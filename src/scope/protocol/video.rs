//! Port 8030: heartbeat/stop commands and the JPEG fragments.

use super::{PacketError, le16, le32};

/// Length of a heartbeat/stop command and of a fragment header.
pub const HEADER_LEN: usize = 24;
const COMMAND_MAGIC: [u8; 2] = [0x99, 0x99];
const FRAGMENT_MAGIC: u8 = 0x66;
/// Fragment header byte 2 for MJPEG; sibling products use 4 for raw YUYV.
pub const FORMAT_MJPEG: u8 = 0x01;

/// A client-to-scope command on the video port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCommand {
    /// "Keep streaming to me" (`99 99 01`), sent every 0.5 s.
    Heartbeat,
    /// "Stop streaming" (`99 99 02`), sent once on exit.
    Stop,
}

impl VideoCommand {
    fn code(self) -> u16 {
        match self {
            VideoCommand::Heartbeat => 1,
            VideoCommand::Stop => 2,
        }
    }

    /// The 24 bytes on the wire: LE16 0x9999, LE16 command, then zeros.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..2].copy_from_slice(&COMMAND_MAGIC);
        out[2..4].copy_from_slice(&self.code().to_le_bytes());
        out
    }

    /// Parses a command; the sequence/argument fields some firmware uses are ignored.
    pub fn parse(datagram: &[u8]) -> Result<Self, PacketError> {
        if datagram.len() < HEADER_LEN {
            return Err(PacketError::TooShort {
                what: "video command",
                len: datagram.len(),
                needed: HEADER_LEN,
            });
        }
        if datagram[..2] != COMMAND_MAGIC {
            return Err(PacketError::BadMagic {
                what: "video command",
            });
        }
        match le16(datagram, 2) {
            1 => Ok(VideoCommand::Heartbeat),
            2 => Ok(VideoCommand::Stop),
            other => Err(PacketError::UnknownCommand(other)),
        }
    }
}

/// Position of a fragment in its frame (header byte 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragmentKind {
    First,
    Middle,
    Last,
}

impl FragmentKind {
    fn from_flag(flag: u8) -> Result<Self, PacketError> {
        match flag {
            1 => Ok(FragmentKind::First),
            3 => Ok(FragmentKind::Middle),
            2 => Ok(FragmentKind::Last),
            other => Err(PacketError::BadFragmentFlag(other)),
        }
    }

    fn flag(self) -> u8 {
        match self {
            FragmentKind::First => 1,
            FragmentKind::Middle => 3,
            FragmentKind::Last => 2,
        }
    }
}

/// The 24-byte header in front of every fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    pub kind: FragmentKind,
    /// Byte 2: 1 = MJPEG. Other values are counted and skipped by the reassembler.
    pub format: u8,
    /// Counts up per frame and wraps at 255.
    pub frame_id: u8,
    /// Size of the whole JPEG as announced by the scope. Untrusted.
    pub frame_size: u32,
    /// Position of this fragment in the frame, from 0.
    pub index: u16,
    /// Payload bytes that follow the header.
    pub payload_len: u16,
}

impl FragmentHeader {
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = FRAGMENT_MAGIC;
        out[1] = self.kind.flag();
        out[2] = self.format;
        out[3] = self.frame_id;
        out[4..8].copy_from_slice(&self.frame_size.to_le_bytes());
        out[12..14].copy_from_slice(&self.index.to_le_bytes());
        out[14..16].copy_from_slice(&self.payload_len.to_le_bytes());
        out
    }
}

/// A parsed fragment borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub header: FragmentHeader,
    pub payload: &'a [u8],
}

impl<'a> Fragment<'a> {
    /// Parses one datagram from the video port.
    ///
    /// The payload length field must match the bytes actually carried: a
    /// datagram that was truncated or padded on the way is rejected rather
    /// than trusted.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, PacketError> {
        if datagram.len() < HEADER_LEN {
            return Err(PacketError::TooShort {
                what: "fragment header",
                len: datagram.len(),
                needed: HEADER_LEN,
            });
        }
        if datagram[0] != FRAGMENT_MAGIC {
            return Err(PacketError::BadMagic { what: "fragment" });
        }
        let kind = FragmentKind::from_flag(datagram[1])?;
        let payload = &datagram[HEADER_LEN..];
        let payload_len = le16(datagram, 14);
        if usize::from(payload_len) != payload.len() {
            return Err(PacketError::PayloadLength {
                announced: usize::from(payload_len),
                actual: payload.len(),
            });
        }
        let header = FragmentHeader {
            kind,
            format: datagram[2],
            frame_id: datagram[3],
            frame_size: le32(datagram, 4),
            index: le16(datagram, 12),
            payload_len,
        };
        Ok(Fragment { header, payload })
    }

    /// Header followed by payload, as the scope sends it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(self.payload);
        out
    }
}

/// Cuts one JPEG into the fragments a scope would send for it.
///
/// A frame that fits into one fragment is flagged `Last` (what the scope
/// does then is unknown; `Last` is what makes the reassembler finish it).
///
/// The index field is 16 bits, so for a frame that would need more than
/// 65536 fragments the fragments are made larger instead of wrapping it.
pub fn fragment_frame(jpeg: &[u8], frame_id: u8, max_payload: usize) -> Vec<Vec<u8>> {
    let smallest_fitting = jpeg.len().div_ceil(usize::from(u16::MAX) + 1).max(1);
    let max_payload = max_payload.max(smallest_fitting).min(usize::from(u16::MAX));
    let chunks: Vec<&[u8]> = jpeg.chunks(max_payload).collect();
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, payload)| {
            let kind = if index + 1 == count {
                FragmentKind::Last
            } else if index == 0 {
                FragmentKind::First
            } else {
                FragmentKind::Middle
            };
            Fragment {
                header: FragmentHeader {
                    kind,
                    format: FORMAT_MJPEG,
                    frame_id,
                    frame_size: u32::try_from(jpeg.len()).unwrap_or(u32::MAX),
                    index: u16::try_from(index).unwrap_or(u16::MAX),
                    payload_len: payload.len() as u16,
                },
                payload,
            }
            .to_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn huge_frame_gets_wider_fragments_instead_of_wrapping_the_index() {
        let jpeg = vec![0u8; 70_000];
        let fragments = fragment_frame(&jpeg, 1, 1);
        assert_eq!(fragments.len(), 35_000);
        let indices: Vec<u16> = fragments
            .iter()
            .map(|d| Fragment::parse(d).unwrap().header.index)
            .collect();
        assert!(indices.iter().copied().eq(0..35_000));
        let carried: usize = fragments
            .iter()
            .map(|d| Fragment::parse(d).unwrap().payload.len())
            .sum();
        assert_eq!(carried, jpeg.len());
    }

    #[test]
    fn heartbeat_and_stop_match_the_documented_bytes() {
        let hb = VideoCommand::Heartbeat.to_bytes();
        assert_eq!(&hb[..3], &[0x99, 0x99, 0x01]);
        assert!(hb[3..].iter().all(|&b| b == 0));
        let stop = VideoCommand::Stop.to_bytes();
        assert_eq!(&stop[..3], &[0x99, 0x99, 0x02]);
        assert_eq!(VideoCommand::parse(&hb), Ok(VideoCommand::Heartbeat));
        assert_eq!(VideoCommand::parse(&stop), Ok(VideoCommand::Stop));
    }

    #[test]
    fn command_parse_rejects_short_foreign_and_unknown() {
        assert!(matches!(
            VideoCommand::parse(&[0x99, 0x99, 1]),
            Err(PacketError::TooShort { .. })
        ));
        let mut bad = VideoCommand::Heartbeat.to_bytes();
        bad[0] = 0x66;
        assert!(matches!(
            VideoCommand::parse(&bad),
            Err(PacketError::BadMagic { .. })
        ));
        bad[0] = 0x99;
        bad[2] = 7;
        assert_eq!(
            VideoCommand::parse(&bad),
            Err(PacketError::UnknownCommand(7))
        );
    }

    #[test]
    fn fragment_header_layout_matches_protocol_table() {
        let header = FragmentHeader {
            kind: FragmentKind::Middle,
            format: FORMAT_MJPEG,
            frame_id: 0xAB,
            frame_size: 0x0102_0304,
            index: 0x0506,
            payload_len: 3,
        };
        let bytes = Fragment {
            header,
            payload: &[9, 9, 9],
        }
        .to_bytes();
        assert_eq!(bytes.len(), 27);
        assert_eq!(&bytes[..4], &[0x66, 3, 1, 0xAB]);
        assert_eq!(&bytes[4..8], &[4, 3, 2, 1]);
        assert_eq!(&bytes[12..16], &[6, 5, 3, 0]);
        assert_eq!(Fragment::parse(&bytes).unwrap().header, header);
    }

    #[test]
    fn fragment_with_lying_payload_length_is_rejected() {
        let mut bytes = fragment_frame(&[1, 2, 3, 4], 0, 10).remove(0);
        bytes.pop();
        assert_eq!(
            Fragment::parse(&bytes),
            Err(PacketError::PayloadLength {
                announced: 4,
                actual: 3
            })
        );
        bytes[1] = 9;
        assert_eq!(
            Fragment::parse(&bytes),
            Err(PacketError::BadFragmentFlag(9))
        );
    }

    #[test]
    fn single_fragment_frame_is_flagged_last() {
        let frags = fragment_frame(&[0xFF, 0xD8, 0xFF, 0xD9], 5, 1000);
        assert_eq!(frags.len(), 1);
        assert_eq!(
            Fragment::parse(&frags[0]).unwrap().header.kind,
            FragmentKind::Last
        );
    }

    proptest! {
        #[test]
        fn fragments_round_trip_and_concatenate_to_the_frame(
            jpeg in proptest::collection::vec(any::<u8>(), 1..5000),
            id in any::<u8>(),
            max in 1usize..2000,
        ) {
            let frags = fragment_frame(&jpeg, id, max);
            let mut joined = Vec::new();
            for (i, datagram) in frags.iter().enumerate() {
                let f = Fragment::parse(datagram).unwrap();
                prop_assert_eq!(f.header.index as usize, i);
                prop_assert_eq!(f.header.frame_id, id);
                prop_assert_eq!(f.header.frame_size as usize, jpeg.len());
                let expected_kind = if i + 1 == frags.len() { FragmentKind::Last }
                    else if i == 0 { FragmentKind::First } else { FragmentKind::Middle };
                prop_assert_eq!(f.header.kind, expected_kind);
                joined.extend_from_slice(f.payload);
            }
            prop_assert_eq!(joined, jpeg);
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Fragment::parse(&data);
            let _ = VideoCommand::parse(&data);
        }
    }
}
