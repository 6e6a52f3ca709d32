//! `scopecam announce IFACE`: makes the desktop's camera services look at the bridge's
//! camera node again, by sending it a `remove` and an `add` uevent.
//!
//! Why: PipeWire (and with it GNOME Snapshot, Firefox's camera portal, OBS's PipeWire
//! source) decides once, when udev announces a `/dev/videoN`, whether it is a camera.
//! A v4l2loopback node with exclusive caps is output-only until a producer writes, so a
//! node that existed before the scope streamed is never listed, and a node that stays
//! after the bridge stopped stays listed though nothing can be read from it. A `change`
//! event made PipeWire 0.3 look again, PipeWire 1.2 and later only re-check access on
//! it; `remove` then `add` rebuilds the device on every version (see
//! docs/desktop.md).
//!
//! The unit runs this as root (`ExecStartPost=+`, `ExecStopPost=+`): sysfs `uevent`
//! files are root-only. What it may touch is narrow: exactly one node, the one the
//! bridge's state file names (the file of the main process systemd started), and only
//! if sysfs shows it is a v4l2loopback node. The node number is kept in
//! [`RECORD_DIR`] (root-only writable, unlike the service's runtime directory) for the
//! stop side, which re-announces the node only when no other producer feeds it.

use std::io::{self, Write as _};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::state::{create_fresh, pid_is_scopecam, process_exists, read_state, state_path};
use crate::output::sinks::v4l2::DeviceTree;

/// Where the privileged step remembers which node it announced, per interface.
pub const RECORD_DIR: &str = "/run/scopecam-announced";

/// How long the start side waits for the bridge's state file after READY=1 (it is
/// written within a few milliseconds of the first frame).
pub const STATE_WAIT: Duration = Duration::from_secs(5);

/// How long the stop side waits for the desktop's camera service to close the node
/// after `remove`.
pub const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Why nothing was announced.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("'{0}' is not a network interface name")]
    BadInterface(String),
    #[error("no state file {} from a running bridge (pid {pid})", path.display())]
    NoState { path: PathBuf, pid: String },
    #[error("cannot read {}: {source}", path.display())]
    ReadState { path: PathBuf, source: io::Error },
    #[error("the bridge on {iface} writes no camera (output: {output})")]
    NoCamera { iface: String, output: String },
    #[error("{} is not a v4l2loopback node; not announcing it", path.display())]
    NotLoopback { path: PathBuf },
    #[error("cannot send '{action}' to video{number}: {source}")]
    Uevent {
        number: u32,
        action: &'static str,
        source: io::Error,
    },
    #[error("cannot keep the record {}: {source}", path.display())]
    Record { path: PathBuf, source: io::Error },
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announced {
    /// `remove` + `add` went to /dev/videoN.
    Node(u32),
    /// Start side: the main process is gone without a state file (a dongle that is no
    /// scope exits right after READY=1): nothing to announce.
    NoBridge,
    /// Stop side: no record (the bridge never announced a camera).
    NothingRecorded,
    /// Stop side: the node is gone (a device the bridge created and removed).
    Gone(u32),
    /// Stop side: another producer feeds the node now; it is rightly listed.
    InUse(u32),
}

/// An interface name as the kernel allows it (1-15 bytes, no '/', no whitespace, not
/// "." or ".."): it becomes part of file names.
pub fn valid_interface(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Where things are, injectable for tests.
#[derive(Debug, Clone)]
pub struct Announcer {
    pub tree: DeviceTree,
    /// The service's runtime directory (state files).
    pub runtime: PathBuf,
    /// [`RECORD_DIR`].
    pub records: PathBuf,
    /// `/proc`, for the liveness rule of [`pid_is_scopecam`].
    pub proc: PathBuf,
    /// How long to wait for the state file ([`STATE_WAIT`]).
    pub state_wait: Duration,
    /// Stop side: how long to wait for other openers to close the node between
    /// `remove` and `add` ([`RELEASE_WAIT`]).
    pub release_wait: Duration,
}

impl Announcer {
    /// The system's paths: `RUNTIME_DIRECTORY` (systemd sets it for every Exec line)
    /// or /run/scopecam.
    pub fn system() -> Self {
        let runtime = std::env::var_os("RUNTIME_DIRECTORY")
            .and_then(|v| {
                let text = v.to_string_lossy().into_owned();
                text.split(':')
                    .next()
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(super::SYSTEM_RUNTIME_DIR));
        Announcer {
            tree: DeviceTree::default(),
            runtime,
            records: PathBuf::from(RECORD_DIR),
            proc: PathBuf::from("/proc"),
            state_wait: STATE_WAIT,
            release_wait: RELEASE_WAIT,
        }
    }

    fn record_path(&self, iface: &str) -> PathBuf {
        self.records.join(iface)
    }

    /// After READY=1: announce the node the bridge `main_pid` writes.
    ///
    /// `send` delivers one uevent action to node N (sysfs in production).
    pub fn started(
        &self,
        iface: &str,
        main_pid: Option<u32>,
        send: &mut dyn FnMut(u32, &'static str) -> io::Result<()>,
    ) -> Result<Announced, AnnounceError> {
        if !valid_interface(iface) {
            return Err(AnnounceError::BadInterface(iface.to_owned()));
        }
        let path = state_path(&self.runtime, iface);
        let deadline = Instant::now() + self.state_wait;
        let state = loop {
            match read_state(&path) {
                Ok(state)
                    if main_pid.is_none_or(|pid| pid == state.pid)
                        && pid_is_scopecam(state.pid, &self.proc) =>
                {
                    break state;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if main_pid.is_some_and(|pid| !process_exists(pid)) {
                        return Ok(Announced::NoBridge);
                    }
                }
                Err(source) => return Err(AnnounceError::ReadState { path, source }),
            }
            if Instant::now() >= deadline {
                return Err(AnnounceError::NoState {
                    path,
                    pid: main_pid.map_or_else(|| "any".to_owned(), |p| p.to_string()),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let Some(device) = state.device else {
            return Err(AnnounceError::NoCamera {
                iface: iface.to_owned(),
                output: state.output,
            });
        };
        let device = PathBuf::from(device);
        let number = self
            .tree
            .loopback_number(&device)
            .ok_or(AnnounceError::NotLoopback { path: device })?;
        self.keep_record(iface, number)?;
        replug(number, send)?;
        info!(
            "announced /dev/video{number} (the camera of {iface}) to the desktop's camera services"
        );
        Ok(Announced::Node(number))
    }

    /// After the bridge stopped: announce its node again so an output-only node leaves
    /// the desktop's camera lists, unless `feeds(N)` says another producer writes to it.
    pub fn stopped(
        &self,
        iface: &str,
        feeds: &mut dyn FnMut(&Path) -> bool,
        held: &mut dyn FnMut(&Path) -> bool,
        send: &mut dyn FnMut(u32, &'static str) -> io::Result<()>,
    ) -> Result<Announced, AnnounceError> {
        if !valid_interface(iface) {
            return Err(AnnounceError::BadInterface(iface.to_owned()));
        }
        let record = self.record_path(iface);
        let text = match std::fs::read_to_string(&record) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Announced::NothingRecorded),
            Err(source) => {
                return Err(AnnounceError::Record {
                    path: record,
                    source,
                });
            }
        };
        let _ = std::fs::remove_file(&record);
        let Some(number) = text.trim().parse::<u32>().ok() else {
            return Ok(Announced::NothingRecorded);
        };
        let device = self.tree.video_node(number);
        let Some(number) = self.tree.loopback_number(&device) else {
            debug!("/dev/video{number} is gone or no loopback node any more");
            return Ok(Announced::Gone(number));
        };
        if feeds(&device) {
            info!("/dev/video{number} is fed by another producer now; leaving it listed");
            return Ok(Announced::InUse(number));
        }
        // v4l2loopback 0.12 keeps offering capture until the last opener closes, and
        // PipeWire's own node may still have the device open: after `remove` PipeWire
        // closes it, and only a probe after that sees an output-only node. So `add`
        // waits (bounded) until nobody holds the node.
        send(number, "remove").map_err(|source| AnnounceError::Uevent {
            number,
            action: "remove",
            source,
        })?;
        let deadline = Instant::now() + self.release_wait;
        while held(&device) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        send(number, "add").map_err(|source| AnnounceError::Uevent {
            number,
            action: "add",
            source,
        })?;
        info!("announced /dev/video{number} again after {iface} stopped: no longer a camera");
        Ok(Announced::Node(number))
    }

    /// Writes the node number for the stop side: the directory is root's, the file is
    /// created anew (a leftover is unlinked first, never followed).
    fn keep_record(&self, iface: &str, number: u32) -> Result<(), AnnounceError> {
        let path = self.record_path(iface);
        let err = |source| AnnounceError::Record {
            path: path.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.records)
            .map_err(err)?;
        let mut file = create_fresh(&path).map_err(err)?;
        writeln!(file, "{number}").map_err(err)
    }
}

/// `remove` then `add` for node N: the node looks unplugged and plugged in again to
/// everything that listens to udev.
fn replug(
    number: u32,
    send: &mut dyn FnMut(u32, &'static str) -> io::Result<()>,
) -> Result<(), AnnounceError> {
    for action in ["remove", "add"] {
        send(number, action).map_err(|source| AnnounceError::Uevent {
            number,
            action,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::state::{BridgeState, write_atomic};

    struct Fixture {
        _dir: tempfile::TempDir,
        announcer: Announcer,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tree = DeviceTree {
            sys: dir.path().join("sys"),
            dev: dir.path().join("dev"),
        };
        std::fs::create_dir_all(tree.sys.join("module/v4l2loopback")).unwrap();
        std::fs::create_dir_all(&tree.dev).unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        let records = dir.path().join("records");
        // This test process stands in for the bridge: a fake /proc names it scopecam.
        let proc = dir.path().join("proc");
        let me = proc.join(std::process::id().to_string());
        std::fs::create_dir_all(&me).unwrap();
        std::fs::write(me.join("comm"), "scopecam\n").unwrap();
        Fixture {
            announcer: Announcer {
                tree,
                runtime,
                records,
                proc,
                state_wait: Duration::from_millis(200),
                release_wait: Duration::from_millis(300),
            },
            _dir: dir,
        }
    }

    fn add_node(f: &Fixture, number: u32, loopback: bool) {
        let node = f
            .announcer
            .tree
            .sys
            .join(format!("class/video4linux/video{number}"));
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("name"), "Borescope\n").unwrap();
        if loopback {
            std::fs::write(node.join("buffers"), "2\n").unwrap();
            std::fs::write(node.join("max_openers"), "10\n").unwrap();
        }
    }

    fn write_state(f: &Fixture, iface: &str, device: Option<&str>) {
        let state = BridgeState {
            interface: iface.into(),
            pid: std::process::id(),
            device: device.map(str::to_owned),
            output: "v4l2".into(),
            ..BridgeState::default()
        };
        write_atomic(&state_path(&f.announcer.runtime, iface), &state).unwrap();
    }

    #[test]
    fn interface_names_cannot_leave_the_directory() {
        for good in [
            "enx00e04c680001",
            "scopea0",
            "eth0",
            "wlp0s20f3",
            "veth-a_b.1",
        ] {
            assert!(valid_interface(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "sixteen_chars_xx",
            "a b",
            "x:y",
        ] {
            assert!(!valid_interface(bad), "{bad}");
        }
    }

    fn started(
        f: &Fixture,
        iface: &str,
        main_pid: u32,
        sent: &mut Vec<(u32, &'static str)>,
    ) -> Result<Announced, AnnounceError> {
        f.announcer.started(iface, Some(main_pid), &mut |n, a| {
            sent.push((n, a));
            Ok(())
        })
    }

    #[test]
    fn start_replugs_exactly_the_bridges_loopback_node_and_records_it() {
        let f = fixture();
        add_node(&f, 42, true);
        add_node(&f, 43, true);
        let dev = f.announcer.tree.video_node(42);
        write_state(&f, "scopea0", Some(dev.to_str().unwrap()));
        let mut sent = Vec::new();
        // The state file of another main process (a previous run) is not used.
        let got = started(&f, "scopea0", std::process::id() + 1, &mut sent);
        assert!(matches!(got, Err(AnnounceError::NoState { .. })), "{got:?}");
        assert!(sent.is_empty());
        let got = started(&f, "scopea0", std::process::id(), &mut sent);
        assert_eq!(got.unwrap(), Announced::Node(42));
        assert_eq!(sent, [(42, "remove"), (42, "add")]);
        let record = std::fs::read_to_string(f.announcer.records.join("scopea0")).unwrap();
        assert_eq!(record.trim(), "42");
        // A bridge that is not running (its comm is not scopecam) is not trusted.
        std::fs::write(
            f.announcer
                .proc
                .join(std::process::id().to_string())
                .join("comm"),
            "bash\n",
        )
        .unwrap();
        sent.clear();
        let got = started(&f, "scopea0", std::process::id(), &mut sent);
        assert!(matches!(got, Err(AnnounceError::NoState { .. })), "{got:?}");
        assert!(sent.is_empty());
    }

    #[test]
    fn a_main_process_that_exited_without_a_camera_is_no_error() {
        let f = fixture();
        // Pid numbers near the top of the range are not in use on a test machine.
        let gone = 4_194_000;
        assert!(!process_exists(gone));
        let mut sent = Vec::new();
        assert_eq!(
            started(&f, "scopea0", gone, &mut sent).unwrap(),
            Announced::NoBridge
        );
        assert!(sent.is_empty());
    }

    #[test]
    fn a_node_that_is_no_loopback_device_is_refused() {
        let f = fixture();
        add_node(&f, 0, false);
        let dev = f.announcer.tree.video_node(0);
        assert_eq!(f.announcer.tree.loopback_number(&dev), None);
        add_node(&f, 42, true);
        assert_eq!(
            f.announcer
                .tree
                .loopback_number(&f.announcer.tree.video_node(42)),
            Some(42)
        );
        // Paths outside the tree's /dev or not named videoN are never nodes.
        assert_eq!(
            f.announcer.tree.loopback_number(Path::new("/etc/video42")),
            None
        );
        let sneaky = f.announcer.tree.dev.join("../dev/video42");
        assert_eq!(f.announcer.tree.loopback_number(&sneaky), None);
    }

    #[test]
    fn stop_replugs_an_idle_node_skips_a_fed_one_and_forgets_the_record() {
        let f = fixture();
        add_node(&f, 42, true);
        std::fs::create_dir_all(&f.announcer.records).unwrap();
        let record = f.announcer.records.join("scopea0");
        let mut sent = Vec::new();

        std::fs::write(&record, "42\n").unwrap();
        let got = f
            .announcer
            .stopped("scopea0", &mut |_| false, &mut |_| false, &mut |n, a| {
                sent.push((n, a));
                Ok(())
            })
            .unwrap();
        assert_eq!(got, Announced::Node(42));
        assert_eq!(sent, [(42, "remove"), (42, "add")]);
        assert!(!record.exists(), "the record is used once");

        sent.clear();
        std::fs::write(&record, "42\n").unwrap();
        let got = f
            .announcer
            .stopped("scopea0", &mut |_| true, &mut |_| false, &mut |n, a| {
                sent.push((n, a));
                Ok(())
            })
            .unwrap();
        assert_eq!(got, Announced::InUse(42));
        assert!(sent.is_empty());

        // A created device the bridge removed: nothing to announce.
        std::fs::write(&record, "57\n").unwrap();
        let got = f
            .announcer
            .stopped("scopea0", &mut |_| false, &mut |_| false, &mut |n, a| {
                sent.push((n, a));
                Ok(())
            })
            .unwrap();
        assert_eq!(got, Announced::Gone(57));
        assert!(sent.is_empty());

        let got = f
            .announcer
            .stopped(
                "scopea0",
                &mut |_| false,
                &mut |_| false,
                &mut |_, _| Ok(()),
            )
            .unwrap();
        assert_eq!(got, Announced::NothingRecorded);
    }

    #[test]
    fn stop_adds_the_node_back_once_its_openers_closed_it() {
        let f = fixture();
        add_node(&f, 42, true);
        std::fs::create_dir_all(&f.announcer.records).unwrap();
        std::fs::write(f.announcer.records.join("scopea0"), "42\n").unwrap();
        let events = std::cell::RefCell::new(Vec::new());
        // PipeWire's node holds the device until it has seen `remove` and two polls.
        let mut polls_after_remove = 0;
        let got = f
            .announcer
            .stopped(
                "scopea0",
                &mut |_| false,
                &mut |_| {
                    let removed = events.borrow().contains(&"remove");
                    if removed {
                        polls_after_remove += 1;
                    }
                    events.borrow_mut().push("held?");
                    !removed || polls_after_remove <= 2
                },
                &mut |_, action| {
                    events.borrow_mut().push(action);
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(got, Announced::Node(42));
        assert_eq!(
            *events.borrow(),
            ["remove", "held?", "held?", "held?", "add"],
            "add only after the holder let go"
        );
    }

    #[test]
    fn start_without_a_camera_or_with_a_foreign_node_fails_clearly() {
        let f = fixture();
        add_node(&f, 0, false);
        let mut sent = Vec::new();
        write_state(&f, "scopea0", None);
        let got = f.announcer.started("scopea0", None, &mut |n, a| {
            sent.push((n, a));
            Ok(())
        });
        assert!(
            matches!(got, Err(AnnounceError::NoCamera { .. })),
            "{got:?}"
        );
        let dev = f.announcer.tree.video_node(0);
        write_state(&f, "scopea0", Some(dev.to_str().unwrap()));
        let got = f.announcer.started("scopea0", None, &mut |n, a| {
            sent.push((n, a));
            Ok(())
        });
        assert!(
            matches!(got, Err(AnnounceError::NotLoopback { .. })),
            "{got:?}"
        );
        assert!(sent.is_empty());
        assert!(matches!(
            f.announcer.started("../x", None, &mut |_, _| Ok(())),
            Err(AnnounceError::BadInterface(_))
        ));
    }
}
