// placeholder: replaced by H1's module at merge
//! Waiting for an IPv4 address on the scope's interface.
//!
//! This stand-in polls getifaddrs every 100 ms instead of watching netlink; it only
//! keeps the signature the service calls (`wait_for_ipv4`) so the service can be
//! built and tested on its own.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Why no address came.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("there is no network interface '{0}'")]
    NoSuchInterface(String),
    #[error("network interface '{0}' went away")]
    Vanished(String),
    #[error("no IPv4 address on '{iface}' after {:.0} s", waited.as_secs_f64())]
    Timeout { iface: String, waited: Duration },
    #[error("cannot read the interface's addresses: {0}")]
    Netlink(std::io::Error),
}

/// How often the stand-in looks.
const POLL: Duration = Duration::from_millis(100);

/// Waits until `iface` has an IPv4 address, at most `timeout`.
pub async fn wait_for_ipv4(iface: &str, timeout: Duration) -> Result<Ipv4Addr, AddressError> {
    let started = Instant::now();
    let mut seen = false;
    loop {
        if !interface_exists(iface) {
            return Err(if seen {
                AddressError::Vanished(iface.to_owned())
            } else {
                AddressError::NoSuchInterface(iface.to_owned())
            });
        }
        seen = true;
        if let Some(address) = ipv4_of(iface)? {
            return Ok(address);
        }
        if started.elapsed() >= timeout {
            return Err(AddressError::Timeout {
                iface: iface.to_owned(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn interface_exists(iface: &str) -> bool {
    nix::net::if_::if_nametoindex(iface).is_ok()
}

fn ipv4_of(iface: &str) -> Result<Option<Ipv4Addr>, AddressError> {
    let addresses =
        nix::ifaddrs::getifaddrs().map_err(|e| AddressError::Netlink(std::io::Error::from(e)))?;
    Ok(addresses
        .filter(|a| a.interface_name == iface)
        .filter_map(|a| a.address?.as_sockaddr_in().map(|sin| sin.ip()))
        .next())
}
