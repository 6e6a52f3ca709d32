//! UDP sockets for talking to the scope, optionally pinned to one interface, and the
//! video socket's receive buffer.
//!
//! A scope sends each frame at its link's full rate (Fast Ethernet: a 200 KB frame in
//! about 16 ms), and the receiving task may be waiting for a core meanwhile: the
//! kernel's socket buffer must hold a whole frame, or its tail is dropped and the
//! frame is lost. The default buffer (net.core.rmem_default, 208 KiB on most systems)
//! holds about 90 full-size fragments, some 130 KB of JPEG. So the video socket asks
//! for enough to hold the largest frame the bridge accepts (`max_frame_bytes`), counted
//! as the kernel counts it: every datagram is charged its skb "truesize", the payload
//! plus buffer overhead. Measured on loopback (Linux 6.x, /proc/net/udp rx_queue with
//! nobody reading): 2304 bytes for a 1474-byte datagram (a 1450-byte fragment and its
//! 24-byte header), 1.56 times the payload; the ratio used is 1.6
//! ([`TRUESIZE_NUM`]/[`TRUESIZE_DEN`]), plus one largest datagram. Scopes with much
//! smaller fragments cost more per byte. The kernel doubles the value asked with
//! SO_RCVBUF (for its own overhead) and caps the request at net.core.rmem_max, so
//! half the needed size is asked and the granted size read back.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, setsockopt, socket, sockopt,
};

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create a UDP socket: {0}")]
    Create(nix::Error),
    #[error(
        "cannot bind to network interface '{interface}': {source} \
         (check the name with `ip link`; the scope's interface is usually enx...)"
    )]
    BindToDevice {
        interface: String,
        source: nix::Error,
    },
    #[error("cannot bind a UDP socket: {0}")]
    Bind(nix::Error),
    #[error("cannot set SO_DONTROUTE on a UDP socket: {0}")]
    DontRoute(nix::Error),
    #[error("cannot hand the socket to the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Skb truesize per payload byte for full-size fragments, as a fraction (see the
/// module comment for the measurement).
pub const TRUESIZE_NUM: usize = 8;
pub const TRUESIZE_DEN: usize = 5;

/// What the video socket's receive buffer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveBuffer {
    /// Bytes of truesize needed to hold one frame of `max_frame_bytes`.
    pub needed: usize,
    /// What the kernel granted (SO_RCVBUF read back; already doubled).
    pub granted: usize,
}

impl ReceiveBuffer {
    /// Whether a frame of `max_frame_bytes` fits.
    pub fn holds_a_frame(&self) -> bool {
        self.granted >= self.needed
    }

    /// The net.core.rmem_max that lets an unprivileged process get [`Self::needed`].
    pub fn rmem_max_needed(&self) -> usize {
        self.needed.div_ceil(2)
    }
}

/// Bytes of truesize a frame of `max_frame_bytes` occupies in a receive queue, with
/// room for one more largest datagram.
pub fn needed_receive_buffer(max_frame_bytes: usize) -> usize {
    max_frame_bytes
        .saturating_mul(TRUESIZE_NUM)
        .div_ceil(TRUESIZE_DEN)
        .saturating_add(super::MAX_DATAGRAM)
}

/// Opens the video socket ([`open_udp`]) with a receive buffer for a frame of
/// `max_frame_bytes`. SO_RCVBUFFORCE (root with CAP_NET_ADMIN) is tried first, then
/// SO_RCVBUF, which the kernel caps at net.core.rmem_max; what was granted is read
/// back and returned, for the caller to say when it falls short.
pub fn open_video_udp(
    interface: Option<&str>,
    max_frame_bytes: usize,
) -> Result<(tokio::net::UdpSocket, ReceiveBuffer), SocketError> {
    let socket = open_udp(interface)?;
    let needed = needed_receive_buffer(max_frame_bytes);
    let granted = grow_receive_buffer(&socket, needed);
    Ok((socket, ReceiveBuffer { needed, granted }))
}

/// Asks for `needed` bytes of receive buffer (the kernel doubles what it is asked, so
/// half is asked) and returns what was granted; an error leaves the default.
fn grow_receive_buffer(socket: &impl AsFd, needed: usize) -> usize {
    let ask = needed.div_ceil(2);
    if setsockopt(socket, sockopt::RcvBufForce, &ask).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &ask);
    }
    nix::sys::socket::getsockopt(socket, sockopt::RcvBuf).unwrap_or(0)
}

/// net.core.rmem_max, if readable.
pub fn rmem_max(proc_sys: &Path) -> Option<usize> {
    std::fs::read_to_string(proc_sys.join("net/core/rmem_max"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The one line logged when the receive buffer cannot hold a frame of
/// `max_frame_bytes` (`rmem_max`: the system's ceiling, if known).
pub fn small_buffer_line(
    buffer: &ReceiveBuffer,
    max_frame_bytes: usize,
    rmem_max: Option<usize>,
) -> String {
    let kib = |bytes: usize| bytes.div_ceil(1024);
    let ceiling = match rmem_max {
        Some(max) => format!("net.core.rmem_max = {max} caps it"),
        None => "net.core.rmem_max caps it".to_owned(),
    };
    format!(
        "the video socket's receive buffer is {} KiB, less than the {} KiB a {} KiB frame \
         needs ({ceiling}): frames that arrive while the bridge waits for a CPU can be lost. \
         Raise the ceiling: `sudo sysctl -w net.core.rmem_max={}` (the packages install \
         /usr/lib/sysctl.d/30-scopecam.conf, applied at boot), or lower max_frame_bytes",
        kib(buffer.granted),
        kib(buffer.needed),
        kib(max_frame_bytes),
        buffer.rmem_max_needed()
    )
}

/// Opens a non-blocking UDP socket on an ephemeral port.
///
/// Every socket that talks to the scope is opened here, with SO_DONTROUTE: the scope
/// is always on the link itself, so its packets must never go through a gateway. A
/// plain socket, even one bound to the interface, would send 192.168.10.123 to the
/// default router of that interface when the link is an ordinary dongle on a LAN; with
/// SO_DONTROUTE the kernel only looks at link-scope routes and sends nothing to a
/// gateway. (It may still ARP for the address on the link itself, hence the on-link
/// check of `scopecam service` before it sends anything.)
///
/// With an interface name, the socket is bound to that device *before* it
/// is bound to a port (SO_BINDTODEVICE needs no capability on an unbound
/// socket since Linux 5.7), so packets go out and come in only there: two
/// scopes that both live at 192.168.10.123 stay apart. std and tokio cannot
/// set the option before binding, hence nix.
pub fn open_udp(interface: Option<&str>) -> Result<tokio::net::UdpSocket, SocketError> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(SocketError::Create)?;
    if let Some(name) = interface {
        setsockopt(&fd, sockopt::BindToDevice, &OsString::from(name)).map_err(|source| {
            SocketError::BindToDevice {
                interface: name.to_owned(),
                source,
            }
        })?;
    }
    setsockopt(&fd, sockopt::DontRoute, &true).map_err(SocketError::DontRoute)?;
    let any = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
    bind(fd.as_raw_fd(), &any).map_err(SocketError::Bind)?;
    tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd)).map_err(SocketError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unbound_socket_talks_over_loopback() {
        let a = open_udp(None).unwrap();
        let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.send_to(b"hi", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
    }

    #[test]
    fn needed_buffer_covers_the_truesize_of_a_frame() {
        // A 500 KB frame in 1450-byte fragments: 345 datagrams of 2304 bytes truesize
        // on loopback = 794,880 bytes.
        let needed = needed_receive_buffer(500_000);
        assert!(needed >= 345 * 2304, "{needed}");
        assert!(needed <= 1_000_000, "{needed}");
        let buffer = ReceiveBuffer {
            needed,
            granted: 425_984,
        };
        assert!(!buffer.holds_a_frame());
        let line = small_buffer_line(&buffer, 500_000, Some(212_992));
        assert!(line.contains("416 KiB"), "{line}");
        assert!(
            line.contains("net.core.rmem_max = 212992 caps it"),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "sysctl -w net.core.rmem_max={}",
                needed.div_ceil(2)
            )),
            "{line}"
        );
    }

    #[tokio::test]
    async fn the_video_socket_gets_what_the_ceiling_allows() {
        let (_socket, buffer) = open_video_udp(None, 1 << 20).unwrap();
        let privileged = nix::unistd::geteuid().is_root();
        let ceiling = rmem_max(Path::new("/proc/sys")).unwrap();
        if privileged || ceiling >= buffer.rmem_max_needed() {
            assert!(buffer.holds_a_frame(), "{buffer:?} (rmem_max {ceiling})");
        } else {
            assert_eq!(buffer.granted, 2 * ceiling, "{buffer:?}");
        }
    }

    #[tokio::test]
    async fn sockets_never_route_through_a_gateway() {
        let socket = open_udp(None).unwrap();
        assert!(nix::sys::socket::getsockopt(&socket, sockopt::DontRoute).unwrap());
    }

    #[tokio::test]
    async fn unknown_interface_is_a_clear_error() {
        let err = open_udp(Some("nosuchif0")).unwrap_err();
        assert!(err.to_string().contains("nosuchif0"), "{err}");
    }
}
