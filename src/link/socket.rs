//! UDP sockets for talking to the scope, optionally pinned to one interface.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

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
