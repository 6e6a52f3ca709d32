//! The network side: UDP to the scope's video and button ports.
//!
//! These tasks own the sockets and feed the sans-IO state machines
//! ([`crate::scope::reassembly::Reassembler`], [`crate::scope::button::ButtonTracker`]); what
//! comes out of them goes to the frame path through a [`crate::bridge::mailbox::Mailbox`].

pub mod address;
pub mod button;
pub mod capture;
pub mod measure;
pub mod probe;
pub mod socket;
pub mod video;

use std::net::SocketAddr;
use std::time::Duration;

/// Addresses and timing of one scope link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The scope's video port; only packets from here are accepted.
    pub video: SocketAddr,
    /// The scope's command port.
    pub control: SocketAddr,
    pub interface: Option<String>,
    pub heartbeat_interval: Duration,
    pub button_poll_interval: Duration,
    /// No video for this long = stalled.
    pub stall_timeout: Duration,
}

/// A button link with no answer for this long is treated as lost: the next
/// answer is a new baseline (the scope may have rebooted meanwhile).
pub const BUTTON_SILENCE: Duration = Duration::from_secs(3);

/// Largest UDP payload; fragments are much smaller, but a hostile sender is not.
pub(crate) const MAX_DATAGRAM: usize = 65536;
