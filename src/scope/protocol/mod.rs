//! The borescope's wire format (see docs/protocol.md), as plain data.
//!
//! Nothing here touches a socket: every packet the bridge or the simulator
//! sends is built by a function that returns bytes, and every packet they
//! receive is parsed by a function that returns a typed value or a
//! [`PacketError`] saying what is wrong with it.

pub mod control;
pub mod video;

pub use control::{ButtonAnswer, ButtonRequest};
pub use video::{Fragment, FragmentHeader, FragmentKind, VideoCommand};

/// Default UDP port of the scope's video stream.
pub const DEFAULT_VIDEO_PORT: u16 = 8030;
/// Default UDP port of the scope's command/button channel.
pub const DEFAULT_CONTROL_PORT: u16 = 50000;
/// The address every known scope gives itself.
pub const DEFAULT_SCOPE_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 168, 10, 123);
/// The address the scope's DHCP server (at [`DEFAULT_SCOPE_ADDR`]) hands the computer.
pub const SCOPE_LEASE_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 168, 10, 100);

/// Why a datagram is not a packet we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("datagram of {len} bytes is shorter than the {needed}-byte {what}")]
    TooShort {
        what: &'static str,
        len: usize,
        needed: usize,
    },
    #[error("datagram does not start with the {what} magic")]
    BadMagic { what: &'static str },
    #[error("fragment flag {0:#04x} is not first (1), middle (3) or last (2)")]
    BadFragmentFlag(u8),
    #[error("fragment says its payload is {announced} bytes but carries {actual}")]
    PayloadLength { announced: usize, actual: usize },
    #[error("unknown video command {0}")]
    UnknownCommand(u16),
}

pub(crate) fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
