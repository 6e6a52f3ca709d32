//! `scopecam service IFACE`: what `scopecam@IFACE.service` runs when a USB NIC that may
//! be a scope appears.
//!
//! In order: wait (bounded) for an IPv4 address on IFACE; make sure the link is the
//! scope's (listed in `scope_interfaces`, or its DHCP lease came from the scope, see
//! [`scope_link`]) and that the scope's address is on the link itself, leaving quietly
//! otherwise (plenty of ordinary dongles share the scope's USB ids); probe the scope
//! with a read-only button poll (and, if its button port is silent, the video
//! heartbeat, followed by the stop packet) and leave quietly if nothing answers; claim
//! a camera slot ("Borescope", "Borescope 2", ...); run the bridge, telling systemd
//! when the first frame is out,
//! feeding its watchdog from the frame path, and keeping `$RUNTIME/IFACE.json` current
//! for `scopecam status`. Nothing is opened or created before the probe succeeds.

pub mod announce;
pub mod notify;
pub mod scope_link;
pub mod slots;
pub mod state;
pub mod unit;

use std::ffi::OsString;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::bridge::frame_path::PathEnd;
use crate::bridge::{self, BridgeError, BridgeStarted};
use crate::config::Settings;
use crate::link::address::{AddressError, ipv4_addresses, on_link_with, wait_for_ipv4};
use crate::link::probe::{ProbeError, ProbeTarget, probe_scope};
use crate::output::sinks::{SinkSpec, V4l2Target};
use crate::scope::probe::ProbeAnswer;
use notify::Notifier;
use scope_link::{LeaseFiles, ScopeLease, Verdict};
use slots::{SlotClaim, SlotError};
use state::{BridgeState, Counters, Drops, LatencyMs, Sampler, StatusTracker};

/// Where systemd's `RuntimeDirectory=scopecam` ends up.
pub const SYSTEM_RUNTIME_DIR: &str = "/run/scopecam";

/// How often the state file is rewritten (and the link state sampled).
const STATE_INTERVAL: Duration = Duration::from_secs(1);
/// How often to look whether the bridge has opened its output, before the first sample.
const START_POLL: Duration = Duration::from_millis(20);

/// How the service ended without an error.
#[derive(Debug)]
pub enum Outcome {
    /// The interface is gone (or never existed): the scope was unplugged.
    Unplugged(String),
    /// Nothing answered the probe: not a borescope, left alone.
    NotAScope(String),
    /// Not a scope link (no lease from the scope, not in `scope_interfaces`), or the
    /// scope's address is not on it: left alone without a packet sent.
    NotAScopeLink(String),
    /// The interface never got an IPv4 address: a dongle without a cable, a link no
    /// network manager configures, or a scope whose DHCP is silent. Left alone too:
    /// restarting would only repeat the wait every few seconds, for ever.
    NoAddress(String),
    /// Stopped by a signal before the bridge started.
    Interrupted,
    /// The bridge ran and stopped, for this reason.
    Bridged(PathEnd),
}

/// Why the service failed (exit 1, and systemd restarts it).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot watch the addresses of {iface}: {source}")]
    Address {
        iface: String,
        #[source]
        source: AddressError,
    },
    #[error("cannot probe the scope on {iface}: {source}")]
    Probe {
        iface: String,
        // Boxed: the probe's error is large and this one is returned on every path.
        #[source]
        source: Box<ProbeError>,
    },
    #[error(
        "no runtime directory: {SYSTEM_RUNTIME_DIR} is not a private directory of this \
         user (missing, owned by another user, or writable by others) and neither \
         RUNTIME_DIRECTORY nor a usable XDG_RUNTIME_DIR is set (the systemd unit sets \
         RuntimeDirectory=scopecam)"
    )]
    NoRuntimeDir,
    #[error("cannot create the runtime directory {path}: {source}")]
    RuntimeDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

/// The runtime directory: systemd's `RUNTIME_DIRECTORY` (first entry), else
/// `/run/scopecam` if writable, else `$XDG_RUNTIME_DIR/scopecam`.
pub fn choose_runtime_dir(
    runtime_directory: Option<OsString>,
    system_dir_writable: bool,
    xdg_runtime_dir: Option<OsString>,
) -> Option<PathBuf> {
    let first = |value: OsString| {
        let text = value.to_string_lossy().into_owned();
        let first = text.split(':').next().unwrap_or_default().to_owned();
        (!first.is_empty()).then(|| PathBuf::from(first))
    };
    if let Some(dir) = runtime_directory.and_then(first) {
        return Some(dir);
    }
    if system_dir_writable {
        return Some(PathBuf::from(SYSTEM_RUNTIME_DIR));
    }
    xdg_runtime_dir
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join("scopecam"))
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The service's runtime directory, created if it is the per-user one.
///
/// Only a directory the effective user owns and nobody else can write to is used: root
/// running `scopecam service` by hand must not write into the scopecam user's
/// /run/scopecam (that user could have planted symlinks there), and a dir others can
/// write to lets them take camera slots. Root ignores an XDG_RUNTIME_DIR it does not own.
pub fn runtime_dir() -> Result<PathBuf, ServiceError> {
    runtime_dir_for(
        std::env::var_os("RUNTIME_DIRECTORY"),
        Path::new(SYSTEM_RUNTIME_DIR),
        std::env::var_os("XDG_RUNTIME_DIR"),
        nix::unistd::geteuid().as_raw(),
    )
}

/// [`runtime_dir`] for the effective uid `euid`, with `system` for /run/scopecam.
fn runtime_dir_for(
    runtime_directory: Option<OsString>,
    system: &Path,
    xdg_runtime_dir: Option<OsString>,
    euid: u32,
) -> Result<PathBuf, ServiceError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // Not a symlink, ours, and not writable by group or others.
    let private = |dir: &Path| {
        std::fs::symlink_metadata(dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == euid && m.mode() & 0o022 == 0)
    };
    let xdg = xdg_runtime_dir.filter(|d| {
        euid != 0 || std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir() && m.uid() == 0)
    });
    let chosen = choose_runtime_dir(runtime_directory, writable(system) && private(system), xdg)
        .ok_or(ServiceError::NoRuntimeDir)?;
    let dir = if chosen == Path::new(SYSTEM_RUNTIME_DIR) {
        system.to_owned()
    } else {
        chosen
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .map_err(|source| ServiceError::RuntimeDir {
            path: dir.clone(),
            source,
        })?;
    if !private(&dir) {
        return Err(ServiceError::RuntimeDir {
            source: std::io::Error::other(format!(
                "it must be a directory owned by uid {euid} that only its owner can write to"
            )),
            path: dir,
        });
    }
    Ok(dir)
}

/// Where `scopecam status` looks: `RUNTIME_DIRECTORY` if set, else both the system and
/// the per-user directory (a bridge may run in either).
pub fn status_dirs() -> Vec<PathBuf> {
    if let Some(dir) = choose_runtime_dir(std::env::var_os("RUNTIME_DIRECTORY"), false, None) {
        return vec![dir];
    }
    let mut dirs = vec![PathBuf::from(SYSTEM_RUNTIME_DIR)];
    dirs.extend(choose_runtime_dir(
        None,
        false,
        std::env::var_os("XDG_RUNTIME_DIR"),
    ));
    dirs
}

/// The settings for camera slot `slot`: its label, and the fixed device (from `device`
/// or `output = "v4l2:/dev/videoN"`) only for slot 1, since two bridges cannot share a
/// device; other slots find or create theirs by label.
pub fn settings_for_slot(mut settings: Settings, slot: u32) -> Settings {
    settings.card_label = slots::slot_label(&settings.card_label, slot);
    if slot > 1 {
        if let Some(device) = settings.device.take() {
            info!(
                "`device = {}` is for the first scope; this one uses the camera labelled '{}'",
                device.display(),
                settings.card_label
            );
        }
        if let SinkSpec::V4l2(V4l2Target::Device(device)) = &settings.output {
            info!(
                "output {} is for the first scope; this one uses the camera labelled '{}'",
                device.display(),
                settings.card_label
            );
            settings.output = SinkSpec::V4l2(V4l2Target::Auto);
        }
    }
    settings
}

/// Runs the service for `iface` until a signal sets `shutdown` or the bridge stops.
pub async fn serve(
    settings: Settings,
    iface: &str,
    shutdown: Arc<watch::Sender<bool>>,
) -> Result<Outcome, ServiceError> {
    let notifier = Arc::new(Notifier::from_env());
    let mut stop = shutdown.subscribe();

    notifier.status(&format!("waiting for an IPv4 address on {iface}"));
    let address = tokio::select! {
        _ = stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
        address = wait_for_ipv4(iface, settings.address_timeout) => address,
    };
    match address {
        Ok(address) => debug!("{iface} has the address {address}"),
        Err(AddressError::NoSuchInterface(_) | AddressError::Vanished(_)) => {
            let line = format!("{iface} is gone (unplugged); nothing to do");
            notifier.finish_without_bridge(&line);
            return Ok(Outcome::Unplugged(line));
        }
        Err(AddressError::Timeout { .. }) => {
            let line = no_address_line(iface, settings.address_timeout.as_secs());
            notifier.finish_without_bridge(&line);
            return Ok(Outcome::NoAddress(line));
        }
        Err(source) => {
            return Err(ServiceError::Address {
                iface: iface.to_owned(),
                source,
            });
        }
    }

    notifier.status(&format!("checking that {iface} is a scope link"));
    let checked = tokio::select! {
        _ = stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
        checked = check_scope_link(&settings, iface) => checked,
    };
    let why_scope_link = match checked {
        Ok(why) => why,
        Err(line) => {
            notifier.finish_without_bridge(&line);
            return Ok(if interface_exists(iface) {
                Outcome::NotAScopeLink(line)
            } else {
                Outcome::Unplugged(format!("{iface} is gone (unplugged); nothing to do"))
            });
        }
    };

    let control = SocketAddr::V4(SocketAddrV4::new(settings.scope, settings.control_port));
    let video = SocketAddr::V4(SocketAddrV4::new(settings.scope, settings.video_port));
    notifier.status(&format!(
        "asking {control} on {iface} whether it is a borescope"
    ));
    let target = ProbeTarget {
        control,
        video,
        ask_video: true,
        interface: Some(iface.to_owned()),
    };
    let probed = tokio::select! {
        _ = stop.wait_for(|s| *s) => return Ok(Outcome::Interrupted),
        probed = probe_scope(&target, settings.probe_timeout) => probed,
    };
    match probed {
        Ok(reply) => info!(
            "the scope at {} answered {} on {iface} after {} ms ({why_scope_link})",
            settings.scope,
            match reply.answer {
                ProbeAnswer::Button(_) => "a button poll",
                ProbeAnswer::Video { .. } => "the video heartbeat (not button polls)",
            },
            reply.answered_after.as_millis()
        ),
        Err(ProbeError::NoAnswer { .. }) => {
            let line = format!(
                "no borescope answers at {control} or {} on {iface}; leaving it alone",
                video.port()
            );
            notifier.finish_without_bridge(&line);
            return Ok(Outcome::NotAScope(line));
        }
        Err(_) if !interface_exists(iface) => {
            // Pulled out between the address and the probe: the socket cannot bind.
            let line = format!("{iface} is gone (unplugged); nothing to do");
            notifier.finish_without_bridge(&line);
            return Ok(Outcome::Unplugged(line));
        }
        Err(source) => {
            return Err(ServiceError::Probe {
                iface: iface.to_owned(),
                source: Box::new(source),
            });
        }
    }

    let runtime = runtime_dir()?;
    let claim = slots::claim(&runtime)?;
    let settings = settings_for_slot(settings, claim.slot);
    info!(
        "camera slot {} ('{}'), state in {}",
        claim.slot,
        settings.card_label,
        state::state_path(&runtime, iface).display()
    );
    let mut publisher = Publisher::new(&settings, iface, &claim, &runtime);

    let bridged = {
        let bridge = bridge::run_observed(&settings, None, shutdown.clone(), notifier.clone());
        tokio::pin!(bridge);
        // The first sample as soon as the output is open, so the state file and the
        // STATUS are there right away; then one every STATE_INTERVAL.
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                result = &mut bridge => break result,
                _ = tokio::time::sleep_until(next) => {
                    let Some(started) = notifier.bridge() else {
                        next += START_POLL;
                        continue;
                    };
                    if let Some(line) = publisher.publish(Instant::now(), started) {
                        notifier.status(&line);
                    }
                    next = tokio::time::Instant::now() + STATE_INTERVAL;
                }
            }
        }
    };
    publisher.remove();
    notifier.stopping("stopped");
    drop(claim);
    Ok(Outcome::Bridged(bridged?.end))
}

/// Whether `iface` may be probed: it is a scope link ([`scope_link`]) and the scope's
/// address is inside the prefix of one of its addresses, so the probe goes to the
/// scope on that link and nowhere else (with SO_DONTROUTE on every socket, a scope
/// address that is not on the link would otherwise still be looked for on it by ARP).
/// `Ok` says why it is a scope link; `Err` holds the one line to log.
async fn check_scope_link(settings: &Settings, iface: &str) -> Result<String, String> {
    let ifindex = nix::net::if_::if_nametoindex(iface)
        .map_err(|e| format!("{iface}: no interface index ({e}); leaving it alone"))?;
    let configured = scope_link::configured_entry(
        &settings.scope_interfaces,
        iface,
        Path::new("/sys/class/net"),
    );
    let scope = ScopeLease {
        server: settings.scope,
        address: crate::scope::protocol::SCOPE_LEASE_ADDR,
    };
    let verdict = LeaseFiles::default()
        .wait_for_verdict(iface, ifindex, configured, scope, settings.lease_wait)
        .await;
    // Logged with the probe's outcome: a link that is no scope costs one line in all.
    let why = match &verdict {
        Verdict::Configured(entry) => format!("scope_interfaces lists {entry}"),
        Verdict::ScopeLease(source) => format!(
            "{source} has its DHCP lease {} from {}",
            scope.address, scope.server
        ),
        Verdict::OtherLease { .. } | Verdict::Unknown => {
            return Err(not_a_scope_link_line(
                iface,
                &verdict,
                scope,
                settings.lease_wait,
            ));
        }
    };
    debug!("{iface} is a scope link: {why}");
    let addresses = ipv4_addresses(iface)
        .map_err(|e| format!("cannot list the addresses of {iface}: {e}; leaving it alone"))?;
    match on_link_with(&addresses, settings.scope) {
        Some(net) => {
            debug!("{} is on the link of {iface} ({net})", settings.scope);
            Ok(why)
        }
        None => Err(format!(
            "{} is not on the link of {iface} (its addresses: {}); the scope is never \
             reached through a gateway, leaving it alone",
            settings.scope,
            if addresses.is_empty() {
                "none".to_owned()
            } else {
                addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }
}

/// The one line logged for a link that is not the scope's.
fn not_a_scope_link_line(
    iface: &str,
    verdict: &Verdict,
    scope: ScopeLease,
    waited: Duration,
) -> String {
    let show = |a: &Option<std::net::Ipv4Addr>| a.map_or("none".to_owned(), |a| a.to_string());
    let why = match verdict {
        Verdict::OtherLease {
            source,
            server,
            address,
        } => format!(
            "{source} has its DHCP lease {} from {}, not {} from the scope at {}",
            show(address),
            show(server),
            scope.address,
            scope.server
        ),
        _ => format!(
            "no DHCP lease from the scope at {} within {} s and not in scope_interfaces",
            scope.server,
            waited.as_secs()
        ),
    };
    format!(
        "{iface} is not a scope link ({why}); leaving it alone. If it is a scope, list it \
         in scope_interfaces in /etc/scopecam/config.toml and replug it"
    )
}

/// The one line logged when `iface` got no address in time.
fn no_address_line(iface: &str, secs: u64) -> String {
    format!(
        "no IPv4 address on {iface} after {secs} s; leaving it alone. If this is the scope: \
         its DHCP did not answer or no network manager configures {iface} (check `ip -4 \
         addr show {iface}`, the README section \"No address\", address_timeout_s), then \
         replug it"
    )
}

fn interface_exists(iface: &str) -> bool {
    Path::new("/sys/class/net").join(iface).exists()
}

/// Keeps the state file current and decides the STATUS line.
struct Publisher {
    path: PathBuf,
    base: BridgeState,
    sampler: Sampler,
    tracker: StatusTracker,
    write_failed: bool,
}

impl Publisher {
    fn new(settings: &Settings, iface: &str, claim: &SlotClaim, runtime: &Path) -> Self {
        Publisher {
            path: state::state_path(runtime, iface),
            base: BridgeState {
                interface: iface.to_owned(),
                pid: std::process::id(),
                started_at: rfc3339_now(),
                card_label: settings.card_label.clone(),
                slot: claim.slot,
                scope: settings.scope.to_string(),
                ..BridgeState::default()
            },
            sampler: Sampler::new(settings.stall_timeout),
            tracker: StatusTracker::default(),
            write_failed: false,
        }
    }

    /// Writes the state file; returns a new STATUS line when the state changed.
    fn publish(&mut self, now: Instant, started: &BridgeStarted) -> Option<String> {
        let stats = &started.stats;
        let counters = Counters::read(stats);
        let sample = self.sampler.sample(now, counters);
        let totals = stats.snapshot();
        let millis = |q: f64| {
            totals
                .latency
                .quantile(q)
                .map(|d| (d.as_secs_f64() * 1e4).round() / 10.0)
        };
        let rounded = |fps: f64| (fps * 10.0).round() / 10.0;
        let state = BridgeState {
            updated_at: rfc3339_now(),
            device: started.device.as_ref().map(|d| d.display().to_string()),
            output: started.output.clone(),
            link_state: sample.link_state,
            scope_size: stats.scope_size().map(|(w, h)| [w, h]),
            scope_fps: rounded(sample.scope_fps),
            output_fps: rounded(sample.output_fps),
            frames_in: counters.frames_complete,
            frames_out: totals.frames_written,
            drops: Drops {
                reassembly: totals.reassembly_drops.total(),
                reassembly_reasons: totals
                    .reassembly_drops
                    .iter()
                    .map(|(reason, count)| (reason.label().to_owned(), count))
                    .collect(),
                undecodable: totals.decode_errors,
                refused: totals.refused.total(),
                refused_reasons: totals.refused.by_label(),
                skipped: totals.frames_skipped,
                rejected_by_output: totals.sink_rejected,
                malformed_packets: totals.malformed,
                foreign_packets: totals.foreign,
            },
            latency_ms: LatencyMs {
                p50: millis(0.5),
                p99: millis(0.99),
            },
            snapshots: totals.snapshots,
            snapshots_not_saved: totals.snapshots_not_saved.by_label(),
            presses: totals.presses,
            ..self.base.clone()
        };
        match state::write_atomic(&self.path, &state) {
            Ok(()) => self.write_failed = false,
            Err(e) if !self.write_failed => {
                self.write_failed = true;
                warn!(
                    "cannot write {}: {e}; `scopecam status` will not show this bridge",
                    self.path.display()
                );
            }
            Err(_) => {}
        }
        self.tracker.on_sample(&state)
    }

    fn remove(&self) {
        state::remove(&self.path);
    }
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, ConfigFile, Overrides};
    use std::collections::HashMap;

    #[test]
    fn runtime_dir_prefers_systemd_then_run_then_the_user_dir() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(
            choose_runtime_dir(some("/run/scopecam:/run/other"), true, some("/run/user/1")),
            Some(PathBuf::from("/run/scopecam"))
        );
        assert_eq!(
            choose_runtime_dir(some("/tmp/rt"), false, None),
            Some(PathBuf::from("/tmp/rt"))
        );
        assert_eq!(
            choose_runtime_dir(None, true, some("/run/user/1")),
            Some(PathBuf::from(SYSTEM_RUNTIME_DIR))
        );
        assert_eq!(
            choose_runtime_dir(some(""), false, some("/run/user/1")),
            Some(PathBuf::from("/run/user/1/scopecam"))
        );
        assert_eq!(choose_runtime_dir(None, false, None), None);
    }

    #[test]
    fn runtime_dir_is_a_private_dir_of_the_effective_user() {
        use std::os::unix::fs::PermissionsExt;
        let me = nix::unistd::geteuid().as_raw();
        let stranger = me.wrapping_add(4242).max(1);
        let dir = tempfile::tempdir().unwrap();
        let (system, xdg) = (dir.path().join("run"), dir.path().join("user"));
        std::fs::create_dir(&system).unwrap();
        std::fs::create_dir(&xdg).unwrap();
        let set_mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set_mode(&system, 0o755);
        set_mode(&xdg, 0o700);
        let x = || Some(xdg.clone().into_os_string());
        // Ours and private: the system dir.
        assert_eq!(runtime_dir_for(None, &system, x(), me).unwrap(), system);
        // Someone else's system dir (root running by hand in the scopecam user's
        // /run/scopecam) is not used; here the XDG one is not the stranger's either.
        let other_xdg = xdg.join("scopecam");
        let got = runtime_dir_for(None, &system, x(), stranger);
        assert!(
            matches!(&got, Err(ServiceError::RuntimeDir { path, .. }) if *path == other_xdg),
            "{got:?}"
        );
        // A system dir others can write to is skipped.
        set_mode(&system, 0o777);
        assert_eq!(runtime_dir_for(None, &system, x(), me).unwrap(), other_xdg);
        set_mode(&system, 0o775);
        assert_eq!(runtime_dir_for(None, &system, x(), me).unwrap(), other_xdg);
        // RUNTIME_DIRECTORY must be private too.
        let rt = Some(system.clone().into_os_string());
        assert!(runtime_dir_for(rt.clone(), &system, x(), me).is_err());
        set_mode(&system, 0o755);
        assert_eq!(
            runtime_dir_for(rt.clone(), &system, x(), me).unwrap(),
            system
        );
        assert!(runtime_dir_for(rt, &system, x(), stranger).is_err());
        // Root ignores an XDG_RUNTIME_DIR it does not own.
        if me == 0 {
            std::os::unix::fs::chown(&xdg, Some(stranger), None).unwrap();
        }
        set_mode(&system, 0o777);
        assert!(matches!(
            runtime_dir_for(None, &system, x(), 0),
            Err(ServiceError::NoRuntimeDir)
        ));
    }

    #[test]
    fn no_address_says_what_to_check() {
        let text = no_address_line("enx00e04c680001", 20);
        for needle in [
            "after 20 s",
            "ip -4 addr show enx00e04c680001",
            "\"No address\"",
            "address_timeout_s",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }

    #[test]
    fn not_a_scope_link_says_why_and_what_to_do() {
        let scope = ScopeLease {
            server: "192.168.10.123".parse().unwrap(),
            address: "192.168.10.100".parse().unwrap(),
        };
        let lan = Verdict::OtherLease {
            source: scope_link::LeaseSource::Networkd,
            server: Some("192.168.10.1".parse().unwrap()),
            address: Some("192.168.10.57".parse().unwrap()),
        };
        let text = not_a_scope_link_line("enx1", &lan, scope, Duration::from_secs(15));
        for needle in [
            "enx1 is not a scope link",
            "systemd-networkd has its DHCP lease 192.168.10.57 from 192.168.10.1",
            "leaving it alone",
            "scope_interfaces",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        let text = not_a_scope_link_line("enx1", &Verdict::Unknown, scope, Duration::from_secs(15));
        assert!(
            text.contains("no DHCP lease from the scope at 192.168.10.123 within 15 s"),
            "{text}"
        );
    }

    fn settings(file: &str) -> Settings {
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(f.path(), file).unwrap();
        config::load_for(
            config::Mode::Service,
            &ConfigFile::Explicit(f.path().to_owned()),
            &HashMap::new(),
            &Overrides::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_fixed_device_is_for_the_first_slot_only() {
        let fixed = settings("device = \"/dev/video42\"\n");
        let first = settings_for_slot(fixed.clone(), 1);
        assert_eq!(first.device, Some(PathBuf::from("/dev/video42")));
        assert_eq!(first.card_label, "Borescope");
        let second = settings_for_slot(fixed, 2);
        assert_eq!(second.device, None);
        assert_eq!(second.card_label, "Borescope 2");

        let in_output = settings("output = \"v4l2:/dev/video42\"\n");
        assert_eq!(
            settings_for_slot(in_output.clone(), 1).output,
            in_output.output
        );
        assert_eq!(
            settings_for_slot(in_output, 3).output,
            SinkSpec::V4l2(V4l2Target::Auto)
        );
        let file = settings("output = \"mjpeg:/tmp/x.mjpeg\"\n");
        assert_eq!(settings_for_slot(file.clone(), 2).output, file.output);
    }
}
