//! Port 50000: the SETCMD button poll and its RETCMD answer.

use super::{PacketError, le16};

pub const REQUEST_LEN: usize = 18;
pub const ANSWER_LEN: usize = 20;
const REQUEST_MAGIC: &[u8; 6] = b"SETCMD";
const ANSWER_MAGIC: &[u8; 6] = b"RETCMD";
/// Bytes 8..18 of the button poll; the read-only "button state" query.
const BUTTON_QUERY: [u8; 10] = [0x00, 0x00, 0x90, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00];
/// Bytes 8..14 of the answer to the button poll.
const BUTTON_ANSWER_TAG: [u8; 6] = [0x00, 0x00, 0x90, 0x00, 0x04, 0x00];

/// The client's button poll: `SETCMD`, a request counter, the fixed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonRequest {
    pub counter: u16,
}

impl ButtonRequest {
    pub fn to_bytes(self) -> [u8; REQUEST_LEN] {
        let mut out = [0u8; REQUEST_LEN];
        out[..6].copy_from_slice(REQUEST_MAGIC);
        out[6..8].copy_from_slice(&self.counter.to_le_bytes());
        out[8..].copy_from_slice(&BUTTON_QUERY);
        out
    }

    /// Used by the simulator: accepts exactly the button query.
    pub fn parse(datagram: &[u8]) -> Result<Self, PacketError> {
        if datagram.len() < REQUEST_LEN {
            return Err(PacketError::TooShort {
                what: "SETCMD request",
                len: datagram.len(),
                needed: REQUEST_LEN,
            });
        }
        if &datagram[..6] != REQUEST_MAGIC || datagram[8..REQUEST_LEN] != BUTTON_QUERY {
            return Err(PacketError::BadMagic {
                what: "SETCMD button query",
            });
        }
        Ok(ButtonRequest {
            counter: le16(datagram, 6),
        })
    }
}

/// The scope's answer: which request it answers and its button event counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonAnswer {
    /// The request counter this answers.
    pub request: u16,
    /// +1 for every press since the scope powered up; wraps at 65535.
    pub presses: u16,
}

impl ButtonAnswer {
    pub fn to_bytes(self) -> [u8; ANSWER_LEN] {
        let mut out = [0u8; ANSWER_LEN];
        out[..6].copy_from_slice(ANSWER_MAGIC);
        out[6..8].copy_from_slice(&self.request.to_le_bytes());
        out[8..14].copy_from_slice(&BUTTON_ANSWER_TAG);
        out[18..20].copy_from_slice(&self.presses.to_le_bytes());
        out
    }

    /// Parses a RETCMD answer. Bytes 14..18 are unknown and ignored; bytes
    /// 8..14 must carry the button-query tag so answers to other commands
    /// are never mistaken for button state.
    pub fn parse(datagram: &[u8]) -> Result<Self, PacketError> {
        if datagram.len() < ANSWER_LEN {
            return Err(PacketError::TooShort {
                what: "RETCMD answer",
                len: datagram.len(),
                needed: ANSWER_LEN,
            });
        }
        if &datagram[..6] != ANSWER_MAGIC || datagram[8..14] != BUTTON_ANSWER_TAG {
            return Err(PacketError::BadMagic {
                what: "RETCMD button answer",
            });
        }
        Ok(ButtonAnswer {
            request: le16(datagram, 6),
            presses: le16(datagram, 18),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_matches_documented_bytes() {
        let bytes = ButtonRequest { counter: 0x0102 }.to_bytes();
        assert_eq!(&bytes[..6], b"SETCMD");
        assert_eq!(&bytes[6..8], &[0x02, 0x01]);
        assert_eq!(&bytes[8..], &[0, 0, 0x90, 0, 4, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn answer_ignores_unknown_bytes_and_rejects_other_commands() {
        let mut bytes = ButtonAnswer {
            request: 7,
            presses: 65535,
        }
        .to_bytes();
        bytes[14..18].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            ButtonAnswer::parse(&bytes),
            Ok(ButtonAnswer {
                request: 7,
                presses: 65535
            })
        );
        bytes[10] = 0x91;
        assert!(ButtonAnswer::parse(&bytes).is_err());
        assert!(ButtonAnswer::parse(&bytes[..19]).is_err());
        assert!(ButtonAnswer::parse(b"SETCMD\0\0\0\0\x90\0\x04\0\0\0\0\0\0\0").is_err());
    }

    proptest! {
        #[test]
        fn round_trips(counter in any::<u16>(), presses in any::<u16>()) {
            let req = ButtonRequest { counter };
            prop_assert_eq!(ButtonRequest::parse(&req.to_bytes()), Ok(req));
            let ans = ButtonAnswer { request: counter, presses };
            prop_assert_eq!(ButtonAnswer::parse(&ans.to_bytes()), Ok(ans));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = ButtonAnswer::parse(&data);
            let _ = ButtonRequest::parse(&data);
        }
    }
}
