//! Waiting for the scope's interface to get an IPv4 address, via rtnetlink.
//!
//! The scope hands the computer 192.168.10.100 over DHCP a few seconds after it is
//! plugged in; the service starts when the interface appears, so it waits for that
//! address on the link itself (not `network-online.target`, which is global).
//!
//! The decision logic is [`AddressWatch`], a sans-IO state machine fed with link and
//! address events; [`wait_for_ipv4`] is the netlink edge. It subscribes to the link and
//! IPv4-address multicast groups *before* dumping the current links and addresses, so
//! an address that arrives between the dump and the subscription cannot be missed: it
//! shows up in the dump, as an event, or both (the state machine does not mind twice).
//!
//! Netlink crates: `netlink-sys` (the socket, with a tokio `AsyncFd` wrapper) and
//! `netlink-packet-route` (typed rtnetlink messages), both from the rust-netlink
//! project that also maintains `rtnetlink`. `rtnetlink` itself is built around
//! request/response handles and a background connection task; here one socket does a
//! subscription plus two dumps in sequence, which is a short loop over the socket, so
//! the lower two crates are enough and nothing parses netlink by hand.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use netlink_packet_core::{
    NLA_TYPE_MASK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlasIterator,
};
use netlink_packet_route::address::{AddressAttribute, AddressHeader, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkHeader, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};
use tracing::debug;

/// Why no address could be had.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error(
        "network interface '{0}' does not exist (check the name with `ip link`; \
         the scope's interface is usually enx...)"
    )]
    NoSuchInterface(String),
    #[error("network interface '{0}' went away (the scope was unplugged?)")]
    Vanished(String),
    #[error(
        "network interface '{iface}' has no IPv4 address after {:.1} s: the scope's DHCP \
         did not answer or the network manager does not configure it (check `ip -4 addr \
         show {iface}`; see the README section \"No address\")",
        waited.as_secs_f64()
    )]
    Timeout { iface: String, waited: Duration },
    #[error("cannot watch network interfaces through netlink: {0}")]
    Netlink(#[source] io::Error),
}

/// One thing the kernel reported, reduced to what [`AddressWatch`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressEvent {
    /// A link exists (dump entry) or changed (new, renamed, flags) under this name.
    Link { index: u32, name: String },
    /// A link was deleted.
    LinkRemoved { index: u32 },
    /// The dump of all links is complete.
    LinksListed,
    /// An IPv4 address is on a link.
    AddressAdded { index: u32, address: Ipv4Addr },
    /// An IPv4 address was removed from a link.
    AddressRemoved { index: u32, address: Ipv4Addr },
}

/// Where the wait stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchState {
    /// Keep listening.
    Waiting,
    /// The interface has this IPv4 address.
    Ready(Ipv4Addr),
    /// The links were listed and the interface is not among them.
    NoSuchInterface,
    /// The interface was deleted or renamed while we waited.
    Vanished,
}

/// Sans-IO: decides from link/address events when an interface has an IPv4 address.
///
/// Events may come in any order the kernel produces them (dump entries interleaved
/// with notifications, duplicates); once the state leaves [`WatchState::Waiting`] it
/// stays there.
#[derive(Debug, Clone)]
pub struct AddressWatch {
    name: String,
    index: Option<u32>,
    /// IPv4 addresses per link index. Until our index is known every link's are kept
    /// (an address event can precede the link dump entry); afterwards only ours.
    addresses: HashMap<u32, Vec<Ipv4Addr>>,
    state: WatchState,
}

impl AddressWatch {
    pub fn new(interface: &str) -> Self {
        AddressWatch {
            name: interface.to_owned(),
            index: None,
            addresses: HashMap::new(),
            state: WatchState::Waiting,
        }
    }

    pub fn state(&self) -> WatchState {
        self.state
    }

    /// The interface's index once a link of that name has been seen.
    pub fn index(&self) -> Option<u32> {
        self.index
    }

    /// Feeds one event; returns the state after it.
    pub fn on_event(&mut self, event: AddressEvent) -> WatchState {
        if self.state != WatchState::Waiting {
            return self.state;
        }
        match event {
            AddressEvent::Link { index, name } => {
                if name == self.name {
                    if self.index != Some(index) {
                        self.index = Some(index);
                        // Another link's addresses are of no interest any more.
                        self.addresses.retain(|&i, _| i == index);
                    }
                } else if self.index == Some(index) {
                    // Renamed: the interface we were started for is gone by that name.
                    self.state = WatchState::Vanished;
                }
            }
            AddressEvent::LinkRemoved { index } => {
                if self.index == Some(index) {
                    self.state = WatchState::Vanished;
                }
                self.addresses.remove(&index);
            }
            AddressEvent::LinksListed => {
                if self.index.is_none() {
                    self.state = WatchState::NoSuchInterface;
                }
            }
            AddressEvent::AddressAdded { index, address } => {
                if self.index.is_none_or(|ours| ours == index) {
                    let list = self.addresses.entry(index).or_default();
                    if !list.contains(&address) {
                        list.push(address);
                    }
                }
            }
            AddressEvent::AddressRemoved { index, address } => {
                if let Some(list) = self.addresses.get_mut(&index) {
                    list.retain(|a| *a != address);
                }
            }
        }
        if self.state == WatchState::Waiting {
            if let Some(&address) = self
                .index
                .and_then(|i| self.addresses.get(&i))
                .and_then(|list| list.first())
            {
                self.state = WatchState::Ready(address);
            }
        }
        self.state
    }
}

/// Waits until `iface` has an IPv4 address and returns it (the first one, if several).
///
/// Returns at once when it already has one; fails at once when no such interface
/// exists, as soon as it disappears, or after `timeout`.
pub async fn wait_for_ipv4(iface: &str, timeout: Duration) -> Result<Ipv4Addr, AddressError> {
    match tokio::time::timeout(timeout, watch(iface)).await {
        Ok(result) => result,
        Err(_) => Err(AddressError::Timeout {
            iface: iface.to_owned(),
            waited: timeout,
        }),
    }
}

/// Multicast groups: link changes and IPv4 address changes.
const GROUPS: u32 = (nix::libc::RTMGRP_LINK | nix::libc::RTMGRP_IPV4_IFADDR) as u32;
const LINK_DUMP_SEQ: u32 = 1;
const ADDRESS_DUMP_SEQ: u32 = 2;

async fn watch(iface: &str) -> Result<Ipv4Addr, AddressError> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE).map_err(AddressError::Netlink)?;
    socket
        .socket_mut()
        .bind(&SocketAddr::new(0, GROUPS))
        .map_err(AddressError::Netlink)?;
    loop {
        match watch_once(&socket, iface).await {
            Ok(address) => return Ok(address),
            Err(Stop::Failed(e)) => return Err(e),
            Err(Stop::Resync) => {
                // The kernel dropped notifications (ENOBUFS): what we know may be
                // stale, so start over with fresh dumps on the same subscription.
                debug!("netlink notifications were lost; listing links and addresses again");
            }
        }
    }
}

/// Why one pass of [`watch_once`] ended without an address.
enum Stop {
    /// Notifications were lost; the caller starts over.
    Resync,
    Failed(AddressError),
}

impl From<AddressError> for Stop {
    fn from(e: AddressError) -> Self {
        Stop::Failed(e)
    }
}

async fn watch_once(socket: &TokioSocket, iface: &str) -> Result<Ipv4Addr, Stop> {
    let mut watch = AddressWatch::new(iface);
    let mut link_query = LinkMessage::default();
    link_query.header.interface_family = AddressFamily::Unspec;
    request_dump(
        socket,
        RouteNetlinkMessage::GetLink(link_query),
        LINK_DUMP_SEQ,
    )
    .await?;
    let mut addresses_requested = false;
    loop {
        let datagram = match socket.recv_from_full().await {
            Ok((datagram, _from)) => datagram,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => return Err(Stop::Resync),
            Err(e) => return Err(AddressError::Netlink(e).into()),
        };
        for event in events(&datagram).map_err(AddressError::Netlink)? {
            let links_done = event == AddressEvent::LinksListed;
            match watch.on_event(event) {
                WatchState::Waiting => {}
                WatchState::Ready(address) => {
                    // Debug only: an ordinary dongle must cost the journal one line in all.
                    debug!("{iface} has the IPv4 address {address}");
                    return Ok(address);
                }
                WatchState::NoSuchInterface => {
                    return Err(AddressError::NoSuchInterface(iface.to_owned()).into());
                }
                WatchState::Vanished => return Err(AddressError::Vanished(iface.to_owned()).into()),
            }
            // One dump at a time per socket: addresses only after the links are listed.
            if links_done && !addresses_requested {
                addresses_requested = true;
                debug!(
                    "{iface} is link {:?}; waiting for an IPv4 address",
                    watch.index()
                );
                let mut address_query = AddressMessage::default();
                address_query.header.family = AddressFamily::Inet;
                let request = RouteNetlinkMessage::GetAddress(address_query);
                request_dump(socket, request, ADDRESS_DUMP_SEQ).await?;
            }
        }
    }
}

async fn request_dump(
    socket: &TokioSocket,
    request: RouteNetlinkMessage,
    sequence: u32,
) -> Result<(), AddressError> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    socket
        .send_to(&bytes, &SocketAddr::new(0, 0))
        .await
        .map_err(AddressError::Netlink)?;
    Ok(())
}

/// The events in one datagram of netlink messages, in order; `Err` for an error
/// answer to one of our dumps.
fn events(datagram: &[u8]) -> io::Result<Vec<AddressEvent>> {
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(header) = datagram.get(at..at + 4) {
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(bytes) = datagram.get(at..at + len).filter(|_| len >= 16) else {
            break;
        };
        let event = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
            Ok(message) => to_event(message)?,
            Err(e) => {
                // netlink-packet-route decodes every attribute; one it cannot (a newer
                // kernel's) fails the whole message. Missing our link in the dump
                // would read as "no such interface", so fall back to the few fields
                // needed here.
                debug!(
                    "netlink message not fully decoded ({e}); reading its index and name/address only"
                );
                lenient_event(bytes)
            }
        };
        events.extend(event);
        // Messages are padded to 4 bytes.
        at += (len + 3) & !3;
    }
    Ok(events)
}

/// Kernel attribute numbers (linux/if_link.h, linux/if_addr.h) for [`lenient_event`].
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;

/// The event in a link or address message that did not decode as a whole: the
/// fixed header through the crate's header parsers, then only the attributes
/// needed (interface name; IPv4 local/peer address).
fn lenient_event(bytes: &[u8]) -> Option<AddressEvent> {
    let message = NetlinkBuffer::new_checked(bytes).ok()?;
    let payload = message.payload();
    let attribute = |offset: usize, kind: u16| -> Option<Vec<u8>> {
        NlasIterator::new(payload.get(offset..)?)
            .map_while(Result::ok)
            .find(|nla| nla.kind() & NLA_TYPE_MASK == kind)
            .map(|nla| nla.value().to_vec())
    };
    match message.message_type() {
        RTM_NEWLINK => {
            let index = LinkHeader::parse(payload).ok()?.index;
            let raw = attribute(LINK_HEADER_LEN, IFLA_IFNAME)?;
            let name = raw.split(|&b| b == 0).next()?;
            Some(AddressEvent::Link {
                index,
                name: String::from_utf8_lossy(name).into_owned(),
            })
        }
        RTM_DELLINK => Some(AddressEvent::LinkRemoved {
            index: LinkHeader::parse(payload).ok()?.index,
        }),
        kind @ (RTM_NEWADDR | RTM_DELADDR) => {
            let header = AddressHeader::parse(payload).ok()?;
            if header.family != AddressFamily::Inet {
                return None;
            }
            let raw = attribute(ADDRESS_HEADER_LEN, IFA_LOCAL)
                .or_else(|| attribute(ADDRESS_HEADER_LEN, IFA_ADDRESS))?;
            let octets: [u8; 4] = raw.as_slice().try_into().ok()?;
            let (index, address) = (header.index, Ipv4Addr::from(octets));
            Some(if kind == RTM_NEWADDR {
                AddressEvent::AddressAdded { index, address }
            } else {
                AddressEvent::AddressRemoved { index, address }
            })
        }
        _ => None,
    }
}

/// Fixed header sizes of link (`ifinfomsg`) and address (`ifaddrmsg`) messages.
const LINK_HEADER_LEN: usize = 16;
const ADDRESS_HEADER_LEN: usize = 8;

/// What a netlink message means for the watch; `Err` for an error answer to our dumps.
fn to_event(message: NetlinkMessage<RouteNetlinkMessage>) -> io::Result<Option<AddressEvent>> {
    let sequence = message.header.sequence_number;
    Ok(match message.payload {
        NetlinkPayload::Done(_) if sequence == LINK_DUMP_SEQ => Some(AddressEvent::LinksListed),
        NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            })
            .map(|name| AddressEvent::Link {
                index: link.header.index,
                name,
            }),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
            Some(AddressEvent::LinkRemoved {
                index: link.header.index,
            })
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address)) => ipv4_of(&address)
            .map(|a| AddressEvent::AddressAdded {
                index: address.header.index,
                address: a,
            }),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(address)) => ipv4_of(&address)
            .map(|a| AddressEvent::AddressRemoved {
                index: address.header.index,
                address: a,
            }),
        _ => None,
    })
}

/// The local IPv4 address of an address message: IFA_LOCAL (on point-to-point links
/// IFA_ADDRESS is the peer), else IFA_ADDRESS.
fn ipv4_of(message: &AddressMessage) -> Option<Ipv4Addr> {
    if message.header.family != AddressFamily::Inet {
        return None;
    }
    let v4 = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    };
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => v4(ip),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => v4(ip),
            _ => None,
        })
    })
}

/// An IPv4 address of a link with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// Whether `other` is in this address's subnet.
    pub fn contains(&self, other: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix.min(32)))
            .unwrap_or(0);
        u32::from(self.address) & mask == u32::from(other) & mask
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The first of `addresses` whose subnet holds `peer`: the link `peer` is directly on.
pub fn on_link_with(addresses: &[Ipv4Net], peer: Ipv4Addr) -> Option<Ipv4Net> {
    addresses.iter().copied().find(|net| net.contains(peer))
}

/// The IPv4 addresses of `iface` with their prefixes, as the kernel has them now
/// (getifaddrs(3), which asks rtnetlink: one dump, no subscription needed).
pub fn ipv4_addresses(iface: &str) -> io::Result<Vec<Ipv4Net>> {
    let addresses = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(addresses
        .filter(|a| a.interface_name == iface)
        .filter_map(|a| {
            let address = a.address?.as_sockaddr_in()?.ip();
            let mask = a.netmask?.as_sockaddr_in()?.ip();
            Some(Ipv4Net {
                address,
                prefix: u32::from(mask).leading_ones() as u8,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 100);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn link(index: u32, name: &str) -> AddressEvent {
        AddressEvent::Link {
            index,
            name: name.into(),
        }
    }

    fn added(index: u32, address: Ipv4Addr) -> AddressEvent {
        AddressEvent::AddressAdded { index, address }
    }

    fn feed(
        watch: &mut AddressWatch,
        events: impl IntoIterator<Item = AddressEvent>,
    ) -> WatchState {
        events
            .into_iter()
            .map(|e| watch.on_event(e))
            .last()
            .unwrap_or(watch.state())
    }

    #[test]
    fn address_already_there_is_ready_after_the_dumps() {
        let mut w = AddressWatch::new("enx1");
        let state = feed(
            &mut w,
            [
                link(1, "lo"),
                link(7, "enx1"),
                AddressEvent::LinksListed,
                added(1, Ipv4Addr::LOCALHOST),
                added(7, A),
            ],
        );
        assert_eq!(state, WatchState::Ready(A));
    }

    #[test]
    fn address_event_before_the_link_entry_counts() {
        // Subscribed first: a notification may arrive before the dump lists the link.
        let mut w = AddressWatch::new("enx1");
        assert_eq!(w.on_event(added(7, A)), WatchState::Waiting);
        assert_eq!(w.on_event(added(3, B)), WatchState::Waiting);
        assert_eq!(w.on_event(link(7, "enx1")), WatchState::Ready(A));
    }

    #[test]
    fn waits_without_address_then_takes_the_one_that_comes() {
        let mut w = AddressWatch::new("enx1");
        assert_eq!(
            feed(&mut w, [link(7, "enx1"), AddressEvent::LinksListed]),
            WatchState::Waiting
        );
        assert_eq!(
            w.on_event(added(8, B)),
            WatchState::Waiting,
            "another link's address"
        );
        assert_eq!(w.on_event(added(7, A)), WatchState::Ready(A));
    }

    #[test]
    fn removed_address_is_forgotten() {
        let mut w = AddressWatch::new("enx1");
        w.on_event(added(7, A));
        w.on_event(AddressEvent::AddressRemoved {
            index: 7,
            address: A,
        });
        assert_eq!(
            feed(&mut w, [link(7, "enx1"), AddressEvent::LinksListed]),
            WatchState::Waiting
        );
    }

    #[test]
    fn missing_interface_is_reported_when_the_links_are_listed() {
        let mut w = AddressWatch::new("enx1");
        assert_eq!(
            feed(&mut w, [link(1, "lo"), AddressEvent::LinksListed]),
            WatchState::NoSuchInterface
        );
        // Terminal: a later link of that name does not revive it.
        assert_eq!(
            feed(&mut w, [link(9, "enx1"), added(9, A)]),
            WatchState::NoSuchInterface
        );
    }

    #[test]
    fn deleted_or_renamed_link_vanishes() {
        let mut w = AddressWatch::new("enx1");
        feed(&mut w, [link(7, "enx1"), AddressEvent::LinksListed]);
        assert_eq!(
            w.on_event(AddressEvent::LinkRemoved { index: 8 }),
            WatchState::Waiting
        );
        assert_eq!(
            w.on_event(AddressEvent::LinkRemoved { index: 7 }),
            WatchState::Vanished
        );
        assert_eq!(w.on_event(added(7, A)), WatchState::Vanished);

        let mut w = AddressWatch::new("enx1");
        feed(&mut w, [link(7, "enx1"), AddressEvent::LinksListed]);
        assert_eq!(w.on_event(link(7, "scope0")), WatchState::Vanished);
    }

    #[test]
    fn flag_changes_of_the_same_link_change_nothing() {
        let mut w = AddressWatch::new("enx1");
        feed(
            &mut w,
            [
                link(7, "enx1"),
                AddressEvent::LinksListed,
                link(7, "enx1"),
                link(7, "enx1"),
            ],
        );
        assert_eq!(w.state(), WatchState::Waiting);
        assert_eq!(w.index(), Some(7));
    }

    fn arbitrary_event() -> impl Strategy<Value = AddressEvent> {
        let name = prop_oneof![
            Just("enx1".to_string()),
            Just("lo".to_string()),
            Just("eth0".to_string())
        ];
        let addr = prop_oneof![Just(A), Just(B)];
        prop_oneof![
            (0u32..4, name).prop_map(|(index, name)| AddressEvent::Link { index, name }),
            (0u32..4).prop_map(|index| AddressEvent::LinkRemoved { index }),
            Just(AddressEvent::LinksListed),
            (0u32..4, addr.clone())
                .prop_map(|(index, address)| AddressEvent::AddressAdded { index, address }),
            (0u32..4, addr)
                .prop_map(|(index, address)| AddressEvent::AddressRemoved { index, address }),
        ]
    }

    proptest! {
        #[test]
        fn outcomes_are_final_and_consistent(events in proptest::collection::vec(arbitrary_event(), 0..40)) {
            let mut w = AddressWatch::new("enx1");
            let mut settled: Option<WatchState> = None;
            let mut linked = false;
            for event in events {
                if let AddressEvent::Link { name, .. } = &event {
                    linked |= name == "enx1";
                }
                let state = w.on_event(event);
                if let Some(s) = settled {
                    prop_assert_eq!(state, s, "a settled state never changes");
                } else if state != WatchState::Waiting {
                    settled = Some(state);
                    if matches!(state, WatchState::Ready(_) | WatchState::Vanished) {
                        prop_assert!(linked, "ready/vanished need the link to have been seen");
                    }
                    if state == WatchState::NoSuchInterface {
                        prop_assert!(!linked);
                    }
                }
            }
        }
    }

    /// One serialized netlink message, as the kernel would send it.
    fn wire(sequence: u32, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = sequence;
        let mut message = NetlinkMessage::new(header, payload);
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    fn new_link(index: u32, name: &str) -> Vec<u8> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes.push(LinkAttribute::IfName(name.into()));
        wire(
            LINK_DUMP_SEQ,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)),
        )
    }

    fn new_address(index: u32, local: Ipv4Addr) -> Vec<u8> {
        let mut address = AddressMessage::default();
        address.header.family = AddressFamily::Inet;
        address.header.prefix_len = 24;
        address.header.index = index;
        address
            .attributes
            .push(AddressAttribute::Address(IpAddr::V4(B)));
        address
            .attributes
            .push(AddressAttribute::Local(IpAddr::V4(local)));
        wire(
            0,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address)),
        )
    }

    #[test]
    fn messages_become_events_in_order() {
        let mut datagram = new_link(7, "enx1");
        datagram.extend(new_address(7, A));
        datagram.extend(wire(
            LINK_DUMP_SEQ,
            NetlinkPayload::Done(Default::default()),
        ));
        // The end of the address dump means nothing to the watch.
        datagram.extend(wire(
            ADDRESS_DUMP_SEQ,
            NetlinkPayload::Done(Default::default()),
        ));
        assert_eq!(
            events(&datagram).unwrap(),
            [link(7, "enx1"), added(7, A), AddressEvent::LinksListed]
        );
    }

    #[test]
    fn an_error_answer_is_an_error() {
        let mut error = netlink_packet_core::ErrorMessage::default();
        error.code = std::num::NonZeroI32::new(-nix::libc::EPERM);
        let err = events(&wire(LINK_DUMP_SEQ, NetlinkPayload::Error(error))).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::EPERM));
    }

    #[test]
    fn lenient_reading_finds_the_same_events() {
        // The fallback for messages the crate cannot decode in full.
        assert_eq!(lenient_event(&new_link(7, "enx1")), Some(link(7, "enx1")));
        assert_eq!(
            lenient_event(&new_address(7, A)),
            Some(added(7, A)),
            "IFA_LOCAL wins"
        );
        let mut gone = LinkMessage::default();
        gone.header.index = 7;
        let bytes = wire(
            0,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(gone)),
        );
        assert_eq!(
            lenient_event(&bytes),
            Some(AddressEvent::LinkRemoved { index: 7 })
        );
        // An attribute the crate rejects (a 2-byte IFLA_MTU) fails the whole message
        // in the crate; the fallback still reads the link's index and name.
        let mut odd = new_link(7, "enx1");
        odd.extend_from_slice(&[6, 0, 4, 0, 0x05, 0xdc, 0, 0]);
        let len = (odd.len() as u32).to_ne_bytes();
        odd[..4].copy_from_slice(&len);
        assert!(NetlinkMessage::<RouteNetlinkMessage>::deserialize(&odd).is_err());
        assert_eq!(events(&odd).unwrap(), [link(7, "enx1")]);
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = events(&data);
            let _ = lenient_event(&data);
        }

        #[test]
        fn corrupted_messages_never_panic(
            at in 0usize..64,
            value in any::<u8>(),
            cut in 0usize..8,
        ) {
            let mut bytes = new_link(7, "enx1");
            bytes.extend(new_address(7, A));
            let at = at % bytes.len();
            bytes[at] = value;
            bytes.truncate(bytes.len() - cut);
            let _ = events(&bytes);
            let _ = lenient_event(&bytes);
        }
    }

    #[test]
    fn on_link_means_inside_an_address_prefix() {
        let net = |a: [u8; 4], prefix| Ipv4Net {
            address: Ipv4Addr::from(a),
            prefix,
        };
        let scope = Ipv4Addr::new(192, 168, 10, 123);
        let lan = net([10, 77, 0, 5], 24);
        let scope_link = net([192, 168, 10, 100], 24);
        assert_eq!(on_link_with(&[lan], scope), None, "behind a gateway");
        assert_eq!(on_link_with(&[lan, scope_link], scope), Some(scope_link));
        assert_eq!(on_link_with(&[], scope), None);
        assert_eq!(on_link_with(&[net([192, 168, 10, 100], 32)], scope), None);
        assert_eq!(on_link_with(&[net([192, 168, 10, 130], 25)], scope), None);
        assert!(net([192, 168, 10, 100], 25).contains(scope));
        assert!(
            net([1, 2, 3, 4], 0).contains(scope),
            "a /0 holds everything"
        );
        assert_eq!(scope_link.to_string(), "192.168.10.100/24");
    }

    #[test]
    fn loopback_addresses_come_with_their_prefix() {
        let lo = ipv4_addresses("lo").unwrap();
        assert!(
            lo.contains(&Ipv4Net {
                address: Ipv4Addr::LOCALHOST,
                prefix: 8
            }),
            "{lo:?}"
        );
        assert!(on_link_with(&lo, Ipv4Addr::new(127, 76, 0, 1)).is_some());
        assert!(ipv4_addresses("nosuchif0").unwrap().is_empty());
    }

    #[tokio::test]
    async fn loopback_has_an_address_at_once() {
        // Read-only netlink in the test's own namespace: lo has 127.0.0.1.
        let address = wait_for_ipv4("lo", Duration::from_secs(5)).await.unwrap();
        assert!(address.is_loopback(), "{address}");
    }

    #[tokio::test]
    async fn unknown_interface_fails_at_once() {
        let started = std::time::Instant::now();
        let err = wait_for_ipv4("nosuchif0", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AddressError::NoSuchInterface(ref n) if n == "nosuchif0"),
            "{err}"
        );
        assert!(err.to_string().contains("ip link"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
