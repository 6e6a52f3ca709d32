//! `scopecam probe`: is a scope there, what does it send, and is the camera side ready?
//!
//! One line per check, in the order a person would debug it: the interface, its
//! address, the scope's answer to a button poll, a 2-second look at its video, then
//! v4l2loopback, the labelled device and whether a bridge already runs on the
//! interface. Every failing line says what to do. Exit 0 when the scope answered with
//! video (or answered while a running bridge streams from it: then the video is not
//! touched), 1 otherwise, 130 after Ctrl-C (a video look under way still sends the
//! scope its stop packet); the camera-side lines are advice and do not change the code.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use super::exit::{EXIT_FAILURE, Outcome};
use super::{ProbeArgs, Started, config_file, quiet_logs, start};
use crate::config::{self, Overrides, Settings};
use crate::link::address::{AddressError, wait_for_ipv4};
use crate::link::measure::{VideoMeasurement, measure_video};
use crate::link::probe::{ProbeError, ProbeTarget, probe_scope};
use crate::output::sinks::v4l2::DeviceTree;
use crate::scope::probe::{ProbeAnswer, ProbeReply};
use crate::service::state::{BridgePresence, bridge_presence};
use crate::service::unit::unit_name_for_shell;

/// How long video is watched: long enough for a rate over ~30 frames at 15 fps.
const VIDEO_LOOK: Duration = Duration::from_secs(2);

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Ok,
    Fail,
    /// Works, but something else is using it.
    Busy,
    /// Not checked because an earlier check failed or it does not apply.
    Skip,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Mark::Ok => "ok",
            Mark::Fail => "FAIL",
            Mark::Busy => "busy",
            Mark::Skip => "skip",
        })
    }
}

/// One printed line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    mark: Mark,
    text: String,
}

impl Line {
    fn new(mark: Mark, text: impl Into<String>) -> Self {
        Line {
            mark,
            text: text.into(),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {}", self.mark, self.text)
    }
}

/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

pub fn probe(args: ProbeArgs) -> Outcome {
    let file = config_file(args.config);
    let overrides = Overrides {
        scope: args.scope,
        interface: args.interface,
        ..Overrides::default()
    };
    let loaded = quiet_logs(config::load(&file, &config::process_env(), &overrides));
    let Started {
        settings,
        rt,
        shutdown,
    } = start(loaded)?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let (runtime_dir, proc) = (
        state_dir_of(settings.interface.as_deref()),
        Path::new("/proc"),
    );
    // A running bridge owns the stream: the scope sends to whoever heartbeats last and
    // a stop packet stops it for everyone, so the video look is skipped then.
    let busy = match settings
        .interface
        .as_deref()
        .map(|iface| bridge_presence(&runtime_dir, iface, proc))
    {
        Some(BridgePresence::Running { pid, .. }) => Some(pid),
        _ => None,
    };
    let scope_ok = rt.block_on(check_scope(
        &settings,
        timeout,
        busy,
        shutdown.subscribe(),
        &mut |line| println!("{line}"),
    ));
    if *shutdown.borrow() {
        return Ok(EXIT_INTERRUPTED);
    }
    for line in camera_lines(&settings, &DeviceTree::default(), &runtime_dir, proc) {
        println!("{line}");
    }
    Ok(if scope_ok { 0 } else { EXIT_FAILURE })
}

/// The network checks; returns whether the scope answered with video (or answered
/// while the bridge with pid `busy` streams from it). Stops early, `false`, when
/// `shutdown` turns true; a video look under way still sends the scope its stop packet.
async fn check_scope(
    settings: &Settings,
    timeout: Duration,
    busy: Option<u32>,
    shutdown: watch::Receiver<bool>,
    out: &mut dyn FnMut(Line),
) -> bool {
    let interrupted = || {
        let mut stop = shutdown.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let interface = settings.interface.as_deref();
    let control = SocketAddr::from((settings.scope, settings.control_port));
    let video = SocketAddr::from((settings.scope, settings.video_port));
    match interface {
        Some(iface) => {
            let address = tokio::select! {
                _ = interrupted() => return false,
                address = wait_for_ipv4(iface, timeout) => address,
            };
            let (lines, usable) = address_lines(iface, address);
            lines.into_iter().for_each(&mut *out);
            if !usable {
                out(Line::new(
                    Mark::Skip,
                    format!("asking the scope at {control}: no usable interface"),
                ));
                out(Line::new(Mark::Skip, "video: no usable interface"));
                return false;
            }
        }
        None => out(Line::new(
            Mark::Skip,
            "no --interface given: the sockets are not pinned to the scope's interface \
             (give --interface enx... when another network also uses the scope's subnet)",
        )),
    }
    // While a bridge streams from the scope only its button is asked: the heartbeat's
    // stop packet would take the stream away from the bridge.
    let target = ProbeTarget {
        control,
        video,
        ask_video: busy.is_none(),
        interface: interface.map(str::to_owned),
    };
    let answer = tokio::select! {
        _ = interrupted() => return false,
        answer = probe_scope(&target, timeout) => answer,
    };
    let answered = answer.is_ok();
    out(answer_line(&answer, settings));
    if !answered {
        out(Line::new(Mark::Skip, "video: the scope did not answer"));
        return false;
    }
    if let Some(pid) = busy {
        out(Line::new(
            Mark::Skip,
            format!(
                "video: not measured while the bridge (pid {pid}) streams from this scope: \
                 heartbeats from here would take the stream away from it; `scopecam status` \
                 shows its frame rate"
            ),
        ));
        return true;
    }
    let measured = measure_video(
        video,
        interface,
        VIDEO_LOOK,
        settings.heartbeat_interval,
        shutdown.clone(),
    )
    .await;
    if *shutdown.borrow() {
        return false;
    }
    match measured {
        Ok(measured) => {
            let line = video_line(&measured, video);
            let ok = line.mark == Mark::Ok;
            out(line);
            ok
        }
        Err(e) => {
            out(Line::new(Mark::Fail, format!("video: {e}")));
            false
        }
    }
}

/// Lines for the interface and its address; `true` when the scope can be asked.
fn address_lines(
    iface: &str,
    result: Result<std::net::Ipv4Addr, AddressError>,
) -> (Vec<Line>, bool) {
    let exists = Line::new(Mark::Ok, format!("interface {iface} exists"));
    match result {
        Ok(address) => (
            vec![
                exists,
                Line::new(Mark::Ok, format!("{iface} has the IPv4 address {address}")),
            ],
            true,
        ),
        Err(AddressError::NoSuchInterface(_)) => (
            vec![Line::new(
                Mark::Fail,
                format!(
                    "interface {iface} does not exist: check the name with `ip link` (the scope's \
                     is usually enx... and appears when the scope is plugged in)"
                ),
            )],
            false,
        ),
        Err(AddressError::Vanished(_)) => (
            vec![Line::new(
                Mark::Fail,
                format!(
                    "interface {iface} went away during the probe: was the scope unplugged? Plug it in and try again"
                ),
            )],
            false,
        ),
        Err(AddressError::Timeout { waited, .. }) => (
            vec![
                exists,
                Line::new(
                    Mark::Fail,
                    format!(
                        "{iface} has no IPv4 address after {:.1} s: the scope's DHCP did not answer \
                         or the network manager ignores the interface; wait a few seconds, or set one \
                         by hand: `sudo ip addr add 192.168.10.100/24 dev {iface}`",
                        waited.as_secs_f64()
                    ),
                ),
            ],
            false,
        ),
        // Netlink unusable (a sandbox?): say so, but still try to reach the scope.
        Err(e @ AddressError::Netlink(_)) => (vec![Line::new(Mark::Skip, format!("{e}"))], true),
    }
}

fn answer_line(answer: &Result<ProbeReply, ProbeError>, settings: &Settings) -> Line {
    match answer {
        Ok(ProbeReply {
            answer: ProbeAnswer::Button(button),
            answered_after,
            ..
        }) => Line::new(
            Mark::Ok,
            format!(
                "the scope answers at {}:{} after {} ms (button counter {})",
                settings.scope,
                settings.control_port,
                answered_after.as_millis(),
                button.presses
            ),
        ),
        Ok(ProbeReply {
            answer: ProbeAnswer::Video { .. },
            answered_after,
            ..
        }) => Line::new(
            Mark::Ok,
            format!(
                "the scope answers the video heartbeat at {}:{} after {} ms, but not button \
                 polls at port {}: its snapshot button will do nothing. This model differs \
                 from the known ones: `scopecam capture` records its traffic for a bug report",
                settings.scope,
                settings.video_port,
                answered_after.as_millis(),
                settings.control_port
            ),
        ),
        Err(e @ ProbeError::NoAnswer { .. }) => Line::new(
            Mark::Fail,
            format!(
                "{e}: is the scope plugged in and its light on? `ping {}` should answer; \
                 close the vendor app or other viewers; a plain USB-Ethernet adapter never \
                 answers",
                settings.scope
            ),
        ),
        Err(e) => Line::new(Mark::Fail, format!("cannot ask the scope: {e}")),
    }
}

fn video_line(m: &VideoMeasurement, video: SocketAddr) -> Line {
    let Some((width, height)) = m.size.filter(|_| m.frames > 0) else {
        let what = if m.frames > 0 {
            "frames that are not readable JPEGs"
        } else {
            "no complete frame"
        };
        return Line::new(
            Mark::Fail,
            format!(
                "video: {what} from {video} in {:.1} s although the scope answers polls \
                 ({} incomplete): check `video_port` (some models use 8031 or 8032), close \
                 other viewers, and set rp_filter to 0 or 2 if frames are lost",
                m.listened.as_secs_f64(),
                m.dropped
            ),
        );
    };
    let fps = m
        .fps
        .map(|f| format!("{f:.1} fps"))
        .unwrap_or_else(|| "fps unknown (one frame)".into());
    let kb = m.mean_frame_bytes.unwrap_or(0) as f64 / 1024.0;
    let mut text = format!(
        "video: {width}x{height}, {fps}, {kb:.1} KB a frame ({} frames in {:.1} s)",
        m.frames,
        m.listened.as_secs_f64()
    );
    if m.sizes.len() > 1 {
        let others: Vec<String> = m.sizes[1..]
            .iter()
            .map(|((w, h), n)| format!("{w}x{h} x{n}"))
            .collect();
        text.push_str(&format!("; also {}", others.join(", ")));
    }
    if m.dropped > 0 {
        text.push_str(&format!("; {} frames incomplete (packet loss)", m.dropped));
    }
    Line::new(Mark::Ok, text)
}

/// The camera side: module, labelled device, a bridge already on the interface.
/// Where a bridge on `interface` would keep its state file: the first place
/// `scopecam status` looks that has one, else the first place it looks.
pub(super) fn state_dir_of(interface: Option<&str>) -> std::path::PathBuf {
    let dirs = crate::service::status_dirs();
    let has_file = |dir: &&std::path::PathBuf| {
        interface.is_some_and(|iface| crate::service::state::state_path(dir, iface).exists())
    };
    dirs.iter()
        .find(has_file)
        .or(dirs.first())
        .cloned()
        .unwrap_or_default()
}

fn camera_lines(settings: &Settings, tree: &DeviceTree, runtime: &Path, proc: &Path) -> Vec<Line> {
    let mut lines = Vec::new();
    if !tree.module_loaded() {
        lines.push(Line::new(
            Mark::Fail,
            "v4l2loopback is not loaded: install it (v4l2loopback-dkms) and \
             `sudo modprobe v4l2loopback`; see the README section \"The camera device\"",
        ));
    } else {
        let version = tree
            .module_version()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "0.12.x (no version file)".into());
        lines.push(Line::new(
            Mark::Ok,
            format!("v4l2loopback {version} is loaded"),
        ));
        lines.push(device_line(settings, tree));
    }
    if let Some(iface) = settings.interface.as_deref() {
        lines.push(match bridge_presence(runtime, iface, proc) {
            BridgePresence::NotRunning => Line::new(Mark::Ok, format!("no bridge runs on {iface}")),
            BridgePresence::Stale { pid, file } => Line::new(
                Mark::Ok,
                format!(
                    "no bridge runs on {iface} (stale state file {} of pid {})",
                    file.display(),
                    pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                ),
            ),
            BridgePresence::Running { pid, file } => Line::new(
                Mark::Busy,
                format!(
                    "a bridge already runs on {iface} (pid {pid}, {}): the scope streams to it \
                     as well; `sudo systemctl stop {}` (or stop that scopecam) to probe \
                     alone, or use `scopecam status`",
                    file.display(),
                    unit_name_for_shell(iface)
                ),
            ),
        });
    }
    lines
}

fn device_line(settings: &Settings, tree: &DeviceTree) -> Line {
    let label = &settings.card_label;
    if let Some(device) = &settings.device {
        return if device.exists() {
            Line::new(
                Mark::Ok,
                format!("the configured device {} exists", device.display()),
            )
        } else {
            Line::new(
                Mark::Fail,
                format!(
                    "the configured device {} does not exist: fix `device` in the config or \
                     load v4l2loopback with that video_nr",
                    device.display()
                ),
            )
        };
    }
    if let Some(node) = tree.nodes_labelled(label).first() {
        return Line::new(
            Mark::Ok,
            format!("{} is labelled '{label}'", node.path.display()),
        );
    }
    if settings.create_device && tree.control_device().is_some() {
        return Line::new(
            Mark::Ok,
            format!(
                "no device labelled '{label}' yet; the bridge creates it through /dev/v4l2loopback"
            ),
        );
    }
    Line::new(
        Mark::Fail,
        format!(
            "no v4l2loopback device labelled '{label}': load the module with \
             card_label=\"{label}\" (see /etc/modprobe.d/scopecam.conf), or set `card_label` \
             to the label `v4l2-ctl --list-devices` shows"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use std::collections::HashMap;

    fn settings(interface: Option<&str>) -> Settings {
        config::load(
            &ConfigFile::Explicit("/dev/null".into()),
            &HashMap::new(),
            &Overrides {
                interface: interface.map(str::to_owned),
                ..Overrides::default()
            },
        )
        .unwrap()
    }

    fn tree() -> (tempfile::TempDir, DeviceTree) {
        let dir = tempfile::tempdir().unwrap();
        let tree = DeviceTree {
            sys: dir.path().join("sys"),
            dev: dir.path().join("dev"),
        };
        std::fs::create_dir_all(&tree.dev).unwrap();
        (dir, tree)
    }

    #[test]
    fn lines_are_aligned() {
        assert_eq!(Line::new(Mark::Ok, "x").to_string(), "ok    x");
        assert_eq!(Line::new(Mark::Fail, "x").to_string(), "FAIL  x");
    }

    #[test]
    fn missing_module_and_free_interface() {
        let (dir, tree) = tree();
        let lines = camera_lines(&settings(Some("enx1")), &tree, dir.path(), dir.path());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].mark, Mark::Fail);
        assert!(
            lines[0].text.contains("modprobe v4l2loopback"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], Line::new(Mark::Ok, "no bridge runs on enx1"));
    }

    #[test]
    fn labelled_device_and_busy_interface() {
        let (dir, tree) = tree();
        std::fs::create_dir_all(tree.sys.join("module/v4l2loopback")).unwrap();
        std::fs::write(tree.sys.join("module/v4l2loopback/version"), "0.15.1\n").unwrap();
        let node = tree.sys.join("class/video4linux/video42");
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("name"), "Borescope\n").unwrap();
        // A live pid named scopecam in the given /proc.
        let me = std::process::id();
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(proc.join(me.to_string())).unwrap();
        std::fs::write(proc.join(me.to_string()).join("comm"), "scopecam\n").unwrap();
        std::fs::write(dir.path().join("enx1.json"), format!(r#"{{"pid":{me}}}"#)).unwrap();
        let lines = camera_lines(&settings(Some("enx1")), &tree, dir.path(), &proc);
        let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "ok    v4l2loopback 0.15.1 is loaded");
        assert!(
            shown[1].ends_with("video42 is labelled 'Borescope'"),
            "{shown:?}"
        );
        assert!(
            shown[2].starts_with(&format!("busy  a bridge already runs on enx1 (pid {me}")),
            "{shown:?}"
        );
        assert!(
            shown[2].contains("`sudo systemctl stop scopecam@enx1.service`"),
            "{shown:?}"
        );
    }

    #[test]
    fn no_labelled_device_says_how_to_get_one() {
        let (dir, tree) = tree();
        std::fs::create_dir_all(tree.sys.join("module/v4l2loopback")).unwrap();
        let lines = camera_lines(&settings(None), &tree, dir.path(), dir.path());
        assert_eq!(
            lines[0].text,
            "v4l2loopback 0.12.x (no version file) is loaded"
        );
        assert_eq!(lines[1].mark, Mark::Fail);
        assert!(
            lines[1].text.contains("card_label=\"Borescope\""),
            "{}",
            lines[1]
        );
        assert_eq!(lines.len(), 2, "no interface, no busy check");
        // With the 0.13+ control device the bridge creates its own.
        std::fs::write(tree.dev.join("v4l2loopback"), "").unwrap();
        let lines = camera_lines(&settings(None), &tree, dir.path(), dir.path());
        assert_eq!(lines[1].mark, Mark::Ok);
    }

    #[test]
    fn address_failures_say_what_to_do() {
        let (lines, usable) =
            address_lines("enx1", Err(AddressError::NoSuchInterface("enx1".into())));
        assert!(!usable && lines.len() == 1 && lines[0].text.contains("ip link"));
        let (lines, usable) = address_lines(
            "enx1",
            Err(AddressError::Timeout {
                iface: "enx1".into(),
                waited: Duration::from_secs(5),
            }),
        );
        assert!(!usable);
        assert_eq!(lines[0], Line::new(Mark::Ok, "interface enx1 exists"));
        assert!(lines[1].text.contains("ip addr add"), "{}", lines[1]);
        let (lines, usable) = address_lines("enx1", Ok("192.168.10.100".parse().unwrap()));
        assert!(usable);
        assert_eq!(lines[1].text, "enx1 has the IPv4 address 192.168.10.100");
    }

    #[test]
    fn video_line_reports_size_rate_and_loss() {
        let m = VideoMeasurement {
            listened: Duration::from_secs(2),
            frames: 30,
            first_frame_after: Some(Duration::from_millis(60)),
            fps: Some(15.04),
            size: Some((640, 480)),
            sizes: vec![((640, 480), 29), ((320, 240), 1)],
            mean_frame_bytes: Some(25 * 1024),
            dropped: 2,
            malformed: 0,
            foreign: 0,
        };
        let video: SocketAddr = "192.168.10.123:8030".parse().unwrap();
        let line = video_line(&m, video);
        assert_eq!(line.mark, Mark::Ok);
        assert_eq!(
            line.text,
            "video: 640x480, 15.0 fps, 25.0 KB a frame (30 frames in 2.0 s); also 320x240 x1; \
             2 frames incomplete (packet loss)"
        );
        let none = VideoMeasurement {
            frames: 0,
            fps: None,
            size: None,
            sizes: vec![],
            mean_frame_bytes: None,
            ..m
        };
        let line = video_line(&none, video);
        assert_eq!(line.mark, Mark::Fail);
        assert!(line.text.contains("no complete frame") && line.text.contains("video_port"));
    }

    /// A sender that turns true after `after`, and lives on until the test ends.
    fn signal_after(after: Duration) -> watch::Receiver<bool> {
        let (shutdown, signalled) = watch::channel(false);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            shutdown.send_replace(true);
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        signalled
    }

    #[tokio::test]
    async fn ctrl_c_while_asking_stops_at_once() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut s = settings(None);
        s.scope = std::net::Ipv4Addr::LOCALHOST;
        s.control_port = silent.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let mut lines = Vec::new();
        let signalled = signal_after(Duration::from_millis(300));
        let ok = check_scope(&s, Duration::from_secs(20), None, signalled, &mut |l| {
            lines.push(l)
        })
        .await;
        assert!(!ok);
        assert!(started.elapsed() < Duration::from_secs(3), "{lines:?}");
    }

    #[tokio::test]
    async fn ctrl_c_during_the_video_look_still_stops_the_scope() {
        let scope = crate::simulator::testing::Running::on_free_ports().await;
        let mut s = settings(None);
        s.scope = std::net::Ipv4Addr::LOCALHOST;
        s.video_port = scope.video.port();
        s.control_port = scope.control.port();
        let mut lines = Vec::new();
        // The answer comes within milliseconds; the signal lands in the 2 s look.
        let signalled = signal_after(Duration::from_millis(700));
        let started = std::time::Instant::now();
        let ok = check_scope(&s, Duration::from_secs(3), None, signalled, &mut |l| {
            lines.push(l)
        })
        .await;
        let elapsed = started.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = scope.shut_down().await;
        assert!(!ok);
        assert!(
            elapsed < Duration::from_millis(1500),
            "{elapsed:?} {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.text.contains("the scope answers")),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l.text.starts_with("video:")),
            "no verdict on a cut-short look: {lines:?}"
        );
        assert_eq!(stats.stops, 1, "the stop packet was sent: {stats:?}");
    }

    #[tokio::test]
    async fn a_scope_with_a_silent_button_port_passes_by_its_video() {
        use crate::simulator::SimulatorConfig;
        let scope = crate::simulator::testing::Running::start(SimulatorConfig {
            video_port: 0,
            control_port: 0,
            silent_button: true,
            ..SimulatorConfig::default()
        })
        .await;
        let mut s = settings(None);
        s.scope = std::net::Ipv4Addr::LOCALHOST;
        s.video_port = scope.video.port();
        s.control_port = scope.control.port();
        let (_keep, never) = watch::channel(false);
        let mut lines = Vec::new();
        let ok = check_scope(&s, Duration::from_secs(3), None, never, &mut |l| {
            lines.push(l)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = scope.shut_down().await;
        assert!(ok, "{lines:?}");
        assert!(
            lines.iter().any(|l| l.mark == Mark::Ok
                && l.text.contains("answers the video heartbeat")
                && l.text.contains("snapshot button will do nothing")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.text.starts_with("video: 640x480")),
            "{lines:?}"
        );
        assert_eq!(
            stats.stops, 2,
            "one stop after the probe's heartbeat, one after the look: {stats:?}"
        );
    }
}
