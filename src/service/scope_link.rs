//! Is this RTL8152 link the scope's? Decided before a single packet goes out on it.
//!
//! udev starts the service for every RTL8152 USB NIC, and most of those are ordinary
//! Ethernet dongles on somebody's LAN. A LAN may itself use 192.168.10.0/24 and have a
//! host at 192.168.10.123 that answers on UDP 50000: probing every link would make that
//! host "the scope" (its picture on the camera, its packets pressing keys). So the
//! service probes a link only when there is evidence that it is the scope's:
//!
//! - the user listed it in `scope_interfaces` (by name or MAC address), or
//! - its DHCP lease came from the scope: server 192.168.10.123 (`scope`) handing out
//!   192.168.10.100, as recorded by
//!   - systemd-networkd: `/run/systemd/netif/leases/IFINDEX` (`SERVER_ADDRESS=`,
//!     `ADDRESS=`), or
//!   - NetworkManager, through the package's dispatcher script, which sees the lease in
//!     its `DHCP4_*` variables and writes `/run/scopecam-nm/leases/IFACE` (`IFINDEX=`,
//!     `SERVER_ADDRESS=`, `ADDRESS=`).
//!
//! A lease from any other server means "an ordinary dongle": the service leaves at
//! once. No lease and no entry means the same, after `lease_wait_s` (the lease file
//! may be written a moment after the address appears). ifupdown/dhclient and static
//! addresses leave no lease we read: such a scope link goes in `scope_interfaces`.
//!
//! [`decide`] is the pure rule; [`LeaseFiles`] reads the evidence.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::ScopeLinkId;

/// Where systemd-networkd keeps its DHCPv4 leases, one file per interface index.
pub const NETWORKD_LEASES: &str = "/run/systemd/netif/leases";
/// Where the package's NetworkManager dispatcher script records a scope's lease.
pub const NM_LEASES: &str = "/run/scopecam-nm/leases";
/// How often the lease files are looked at while waiting for one.
const LEASE_POLL: Duration = Duration::from_millis(200);
/// The largest lease file read (networkd's are well under 1 KiB).
const MAX_LEASE_BYTES: u64 = 16 * 1024;

/// The fields of a lease file that matter here. Both networkd's and the dispatcher's
/// files are `KEY=VALUE` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The interface index the lease is for, when the file says (the dispatcher's).
    pub ifindex: Option<u32>,
    /// The DHCP server (its server identifier).
    pub server: Option<Ipv4Addr>,
    /// The address it handed out.
    pub address: Option<Ipv4Addr>,
}

impl Lease {
    /// Reads `KEY=VALUE` lines; unknown keys and unparsable values are ignored (an
    /// unparsable server is no server, which is not the scope's).
    ///
    /// By hand: three keys of a line format both writers keep trivial (no quoting, no
    /// continuation); an env-file crate would add quoting rules neither writer uses.
    pub fn parse(text: &str) -> Lease {
        let mut lease = Lease::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "IFINDEX" => lease.ifindex = value.parse().ok(),
                "SERVER_ADDRESS" => lease.server = value.parse().ok(),
                "ADDRESS" => lease.address = value.parse().ok(),
                _ => {}
            }
        }
        lease
    }
}

/// Who recorded a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseSource {
    Networkd,
    NetworkManager,
}

impl std::fmt::Display for LeaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeaseSource::Networkd => "systemd-networkd",
            LeaseSource::NetworkManager => "NetworkManager",
        })
    }
}

/// The lease a scope hands out: from its own address, always the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeLease {
    pub server: Ipv4Addr,
    pub address: Ipv4Addr,
}

/// What is known about one link.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The `scope_interfaces` entry naming this link, if one does.
    pub configured: Option<ScopeLinkId>,
    pub networkd: Option<Lease>,
    pub network_manager: Option<Lease>,
}

/// Why a link is or is not treated as the scope's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Listed in `scope_interfaces`.
    Configured(ScopeLinkId),
    /// A lease from the scope.
    ScopeLease(LeaseSource),
    /// A lease from another DHCP server, or another address: an ordinary dongle.
    OtherLease {
        source: LeaseSource,
        server: Option<Ipv4Addr>,
        address: Option<Ipv4Addr>,
    },
    /// Nothing to go by (yet).
    Unknown,
}

impl Verdict {
    /// Whether the link may be probed.
    pub fn is_scope(&self) -> bool {
        matches!(self, Verdict::Configured(_) | Verdict::ScopeLease(_))
    }
}

/// The rule. `ifindex` is the link's index now: a dispatcher record for another index
/// is from an earlier plug-in under the same name and says nothing.
///
/// A lease from another server wins over a scope lease from the other manager: when in
/// doubt, leave the link alone (one manager handing the link a LAN lease is proof
/// enough that it is on a LAN).
pub fn decide(evidence: &Evidence, ifindex: u32, scope: ScopeLease) -> Verdict {
    if let Some(id) = &evidence.configured {
        return Verdict::Configured(id.clone());
    }
    let leases = [
        (LeaseSource::Networkd, &evidence.networkd),
        (LeaseSource::NetworkManager, &evidence.network_manager),
    ];
    let current = leases.into_iter().filter_map(|(source, lease)| {
        let lease = lease.as_ref()?;
        (lease.ifindex.is_none_or(|i| i == ifindex)).then_some((source, lease))
    });
    let mut verdict = Verdict::Unknown;
    for (source, lease) in current {
        if lease.server == Some(scope.server) && lease.address == Some(scope.address) {
            if verdict == Verdict::Unknown {
                verdict = Verdict::ScopeLease(source);
            }
        } else {
            return Verdict::OtherLease {
                source,
                server: lease.server,
                address: lease.address,
            };
        }
    }
    verdict
}

/// The lease files' directories (fixed paths in the product; temporary ones in tests).
#[derive(Debug, Clone)]
pub struct LeaseFiles {
    pub networkd: PathBuf,
    pub network_manager: PathBuf,
}

impl Default for LeaseFiles {
    fn default() -> Self {
        LeaseFiles {
            networkd: PathBuf::from(NETWORKD_LEASES),
            network_manager: PathBuf::from(NM_LEASES),
        }
    }
}

impl LeaseFiles {
    /// The leases recorded for link `iface` with index `ifindex` now.
    pub fn read(&self, iface: &str, ifindex: u32) -> (Option<Lease>, Option<Lease>) {
        (
            read_lease(&self.networkd.join(ifindex.to_string())),
            read_lease(&self.network_manager.join(iface)),
        )
    }

    /// Looks until a lease decides, for at most `wait`; `configured` decides at once.
    pub async fn wait_for_verdict(
        &self,
        iface: &str,
        ifindex: u32,
        configured: Option<ScopeLinkId>,
        scope: ScopeLease,
        wait: Duration,
    ) -> Verdict {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (networkd, network_manager) = self.read(iface, ifindex);
            let evidence = Evidence {
                configured: configured.clone(),
                networkd,
                network_manager,
            };
            let verdict = decide(&evidence, ifindex, scope);
            let now = tokio::time::Instant::now();
            if verdict != Verdict::Unknown || now >= deadline {
                return verdict;
            }
            tokio::time::sleep_until((now + LEASE_POLL).min(deadline)).await;
        }
    }
}

/// One lease file, or `None` when there is none or it is not one to trust: a symlink,
/// not a regular file, writable by others than its owner, larger than 16 KiB.
fn read_lease(path: &Path) -> Option<Lease> {
    use std::os::unix::fs::MetadataExt;
    let (text, metadata) = super::state::read_regular_file(path, MAX_LEASE_BYTES).ok()?;
    if metadata.mode() & 0o022 != 0 {
        return None;
    }
    Some(Lease::parse(&String::from_utf8_lossy(&text)))
}

/// The `scope_interfaces` entry that names `iface`, whose MAC address is read from
/// `sys_net/IFACE/address` only when an entry is a MAC.
pub fn configured_entry(
    entries: &[ScopeLinkId],
    iface: &str,
    sys_net: &Path,
) -> Option<ScopeLinkId> {
    let mac = if entries.iter().any(|e| matches!(e, ScopeLinkId::Mac(_))) {
        std::fs::read_to_string(sys_net.join(iface).join("address"))
            .ok()
            .and_then(|text| crate::config::parse_mac(&text))
    } else {
        None
    };
    entries.iter().find(|e| e.matches(iface, mac)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: ScopeLease = ScopeLease {
        server: Ipv4Addr::new(192, 168, 10, 123),
        address: Ipv4Addr::new(192, 168, 10, 100),
    };

    fn lease(server: [u8; 4], address: [u8; 4], ifindex: Option<u32>) -> Option<Lease> {
        Some(Lease {
            ifindex,
            server: Some(server.into()),
            address: Some(address.into()),
        })
    }

    #[test]
    fn the_decision_table() {
        let from_scope = lease([192, 168, 10, 123], [192, 168, 10, 100], None);
        let from_lan = lease([192, 168, 1, 1], [192, 168, 1, 57], None);
        let lan_on_scope_subnet = lease([192, 168, 10, 1], [192, 168, 10, 57], None);
        let lan_server_at_123 = lease([192, 168, 10, 123], [192, 168, 10, 57], None);
        let other_server_gives_100 = lease([192, 168, 10, 1], [192, 168, 10, 100], None);
        let nm_scope_now = lease([192, 168, 10, 123], [192, 168, 10, 100], Some(7));
        let nm_scope_earlier_plug = lease([192, 168, 10, 123], [192, 168, 10, 100], Some(3));
        let enx1 = ScopeLinkId::Name("enx1".into());
        let none = Evidence::default();
        let nd = |l: &Option<Lease>| Evidence {
            networkd: l.clone(),
            ..Evidence::default()
        };
        let nm = |l: &Option<Lease>| Evidence {
            network_manager: l.clone(),
            ..Evidence::default()
        };
        let other = |source, l: &Option<Lease>| Verdict::OtherLease {
            source,
            server: l.as_ref().unwrap().server,
            address: l.as_ref().unwrap().address,
        };
        use LeaseSource::*;
        let table: Vec<(&str, Evidence, Verdict)> = vec![
            ("nothing known", none.clone(), Verdict::Unknown),
            (
                "networkd: lease from the scope",
                nd(&from_scope),
                Verdict::ScopeLease(Networkd),
            ),
            (
                "networkd: lease from a LAN server",
                nd(&from_lan),
                other(Networkd, &from_lan),
            ),
            (
                "networkd: a LAN on 192.168.10.0/24",
                nd(&lan_on_scope_subnet),
                other(Networkd, &lan_on_scope_subnet),
            ),
            (
                "networkd: a server at .123 handing out another address",
                nd(&lan_server_at_123),
                other(Networkd, &lan_server_at_123),
            ),
            (
                "networkd: .100 from another server",
                nd(&other_server_gives_100),
                other(Networkd, &other_server_gives_100),
            ),
            (
                "networkd: a lease file without a server",
                nd(&Some(Lease::default())),
                Verdict::OtherLease {
                    source: Networkd,
                    server: None,
                    address: None,
                },
            ),
            (
                "NetworkManager: the scope's lease on this plug-in",
                nm(&nm_scope_now),
                Verdict::ScopeLease(NetworkManager),
            ),
            (
                "NetworkManager: a record of an earlier plug-in",
                nm(&nm_scope_earlier_plug),
                Verdict::Unknown,
            ),
            (
                "both managers, one saw a LAN lease",
                Evidence {
                    networkd: from_lan.clone(),
                    network_manager: nm_scope_now.clone(),
                    ..Evidence::default()
                },
                other(Networkd, &from_lan),
            ),
            (
                "user-configured, no lease",
                Evidence {
                    configured: Some(enx1.clone()),
                    ..Evidence::default()
                },
                Verdict::Configured(enx1.clone()),
            ),
            (
                "user-configured wins over a LAN lease",
                Evidence {
                    configured: Some(enx1.clone()),
                    networkd: from_lan.clone(),
                    ..Evidence::default()
                },
                Verdict::Configured(enx1.clone()),
            ),
        ];
        for (what, evidence, want) in table {
            let got = decide(&evidence, 7, SCOPE);
            assert_eq!(got, want, "{what}");
            assert_eq!(
                got.is_scope(),
                matches!(want, Verdict::Configured(_) | Verdict::ScopeLease(_)),
                "{what}"
            );
        }
    }

    #[test]
    fn networkd_and_dispatcher_lease_files_parse() {
        // As systemd-networkd 252 writes them (abridged), and the dispatcher script.
        let networkd = "# This is private data. Do not parse.\nADDRESS=192.168.10.100\n\
                        NETMASK=255.255.255.0\nROUTER=192.168.10.123\n\
                        SERVER_ADDRESS=192.168.10.123\nNEXT_SERVER=0.0.0.0\n\
                        DNS=192.168.10.123\nLIFETIME=3600\nCLIENTID=ff0a\n";
        assert_eq!(
            Lease::parse(networkd),
            Lease {
                ifindex: None,
                server: Some(SCOPE.server),
                address: Some(SCOPE.address)
            }
        );
        let dispatcher = "IFINDEX=12\nSERVER_ADDRESS=192.168.10.123\nADDRESS=192.168.10.100\n";
        assert_eq!(Lease::parse(dispatcher).ifindex, Some(12));
        let garbage = "SERVER_ADDRESS=192.168.10.123x\nADDRESS\n=\n\u{0}\nIFINDEX=-1\n";
        assert_eq!(Lease::parse(garbage), Lease::default());
    }

    #[test]
    fn lease_files_are_found_by_index_and_name_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = LeaseFiles {
            networkd: dir.path().join("networkd"),
            network_manager: dir.path().join("nm"),
        };
        std::fs::create_dir_all(&files.networkd).unwrap();
        std::fs::create_dir_all(&files.network_manager).unwrap();
        assert_eq!(files.read("enx1", 7), (None, None));
        let scope_lease = "SERVER_ADDRESS=192.168.10.123\nADDRESS=192.168.10.100\n";
        std::fs::write(files.networkd.join("7"), scope_lease).unwrap();
        std::fs::write(files.network_manager.join("enx1"), "IFINDEX=7\n").unwrap();
        let (networkd, nm) = files.read("enx1", 7);
        assert_eq!(networkd.unwrap().server, Some(SCOPE.server));
        assert_eq!(nm.unwrap().ifindex, Some(7));
        assert_eq!(files.read("enx2", 8), (None, None), "other links' files");
        // Writable by others: anybody could have written it.
        let path = files.networkd.join("7");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(files.read("enx1", 7).0, None);
        // A symlink is not followed.
        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, scope_lease).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(files.read("enx1", 7).0, None);
    }

    #[tokio::test]
    async fn the_wait_ends_when_a_lease_appears_or_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let files = LeaseFiles {
            networkd: dir.path().to_owned(),
            network_manager: dir.path().join("nm"),
        };
        let started = std::time::Instant::now();
        let verdict = files
            .wait_for_verdict("enx1", 7, None, SCOPE, Duration::from_millis(500))
            .await;
        assert_eq!(verdict, Verdict::Unknown);
        assert!(started.elapsed() >= Duration::from_millis(500));

        let path = dir.path().join("7");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            std::fs::write(path, "SERVER_ADDRESS=192.168.1.1\nADDRESS=192.168.1.57\n").unwrap();
        });
        let verdict = files
            .wait_for_verdict("enx1", 7, None, SCOPE, Duration::from_secs(20))
            .await;
        writer.await.unwrap();
        assert!(
            matches!(
                verdict,
                Verdict::OtherLease {
                    source: LeaseSource::Networkd,
                    ..
                }
            ),
            "{verdict:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));

        let enx1 = ScopeLinkId::Name("enx1".into());
        let verdict = files
            .wait_for_verdict(
                "enx1",
                7,
                Some(enx1.clone()),
                SCOPE,
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(verdict, Verdict::Configured(enx1));
    }

    #[test]
    fn configured_entries_match_by_name_or_by_the_links_mac() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("enx1")).unwrap();
        std::fs::write(dir.path().join("enx1/address"), "00:e0:4c:68:00:01\n").unwrap();
        let mac = ScopeLinkId::Mac([0, 0xe0, 0x4c, 0x68, 0, 1]);
        let name = ScopeLinkId::Name("enx2".into());
        let entries = [name.clone(), mac.clone()];
        assert_eq!(configured_entry(&entries, "enx1", dir.path()), Some(mac));
        assert_eq!(configured_entry(&entries, "enx2", dir.path()), Some(name));
        assert_eq!(configured_entry(&entries, "enx3", dir.path()), None);
        assert_eq!(configured_entry(&[], "enx1", dir.path()), None);
    }
}
