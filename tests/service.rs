//! `scopecam service lo` against the simulator on loopback, as systemd would run it:
//! readiness, status and watchdog on a notify socket the test binds, the state file,
//! `scopecam status`, camera slots, SIGTERM, and the quiet exit when nothing answers.
//! Every scope address is in 127.0.0.0/8: nothing leaves this machine.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use scopecam::service::slots::is_taken;

/// systemd's notify socket, played by the test.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    messages: Vec<String>,
    /// Whole datagrams, since systemd reads some assignments together (see below).
    datagrams: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket {
            socket,
            path,
            messages: Vec::new(),
            datagrams: Vec::new(),
        }
    }

    /// Receives until `done` holds for the messages so far, failing after `limit`.
    fn until(&mut self, limit: Duration, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !done(&self.messages) {
            assert!(
                Instant::now() < deadline,
                "no {what} within {limit:?}; got {:?}",
                self.messages
            );
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                self.messages.extend(text.lines().map(str::to_owned));
                self.datagrams.push(text.into_owned());
            }
        }
    }
}

fn count(messages: &[String], line: &str) -> usize {
    messages.iter().filter(|m| *m == line).count()
}

/// `scopecam service lo` for the simulated scope at `ip`, no config file but lo listed
/// in `scope_interfaces`, no key, state and locks in `runtime`; `tweak` adds the rest.
fn service(ip: &str, runtime: &Path, output: &str, tweak: impl FnOnce(&mut Command)) -> Proc {
    Proc::spawn_with(
        "service",
        &["service", "lo", "--config", "/dev/null"],
        |cmd| {
            // lo is no DHCP client's: the user's list makes it a scope link.
            cmd.env("SCOPECAM_SCOPE", ip)
                .env("SCOPECAM_SCOPE_INTERFACES", "lo")
                .env("SCOPECAM_OUTPUT", output)
                .env("SCOPECAM_KEY", "none")
                .env("SCOPECAM_SNAPSHOT_DIR", runtime.join("snapshots"))
                .env("RUNTIME_DIRECTORY", runtime)
                .env_remove("NOTIFY_SOCKET")
                .env_remove("WATCHDOG_USEC")
                .env_remove("WATCHDOG_PID")
                .env_remove("STATE_DIRECTORY");
            tweak(cmd);
        },
    )
}

/// `scopecam status [--json]` reading `runtime`: (exit code, stdout).
fn status(runtime: &Path, json: bool) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("status").env("RUNTIME_DIRECTORY", runtime);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn wait_for(limit: Duration, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_state(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[test]
fn service_notifies_publishes_its_state_and_stops_cleanly() {
    let ip = "127.76.0.1";
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let output = dir.path().join("out.mjpeg");
    let mut notify = NotifySocket::bind(dir.path());
    let _scope = simulator(ip, &[]);
    let mut svc = service(
        ip,
        &runtime,
        &format!("mjpeg:{}", output.display()),
        |cmd| {
            cmd.env("NOTIFY_SOCKET", &notify.path)
                .env("WATCHDOG_USEC", "2000000");
        },
    );

    notify.until(Duration::from_secs(20), "READY=1", |m| {
        count(m, "READY=1") == 1
    });
    notify.until(Duration::from_secs(20), "a streaming STATUS", |m| {
        m.iter().any(|l| {
            l.starts_with("STATUS=streaming 640x480 ") && l.contains("fps; output mjpeg to")
        })
    });
    // A 2 s watchdog is fed about every second, from the frame path.
    notify.until(Duration::from_secs(10), "three WATCHDOG=1", |m| {
        count(m, "WATCHDOG=1") >= 3
    });
    assert_eq!(
        count(&notify.messages, "READY=1"),
        1,
        "{:?}",
        notify.messages
    );

    let state_file = runtime.join("lo.json");
    // More than a second of frames at 15 fps: the rate of the sample read then spans a
    // whole sampling interval of streaming, not the moment the stream began.
    wait_for(Duration::from_secs(10), "a state file with frames", || {
        read_state(&state_file).is_some_and(|s| s["frames_out"].as_u64() > Some(20))
    });
    let state = read_state(&state_file).unwrap();
    assert_eq!(state["interface"], "lo");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(svc.child.id())));
    assert_eq!(state["slot"], 1);
    assert_eq!(state["card_label"], "Borescope");
    assert_eq!(state["scope"], ip);
    assert_eq!(state["link_state"], "streaming");
    assert_eq!(state["device"], serde_json::Value::Null);
    let fps = state["scope_fps"].as_f64().unwrap();
    assert!(
        (5.0..=30.0).contains(&fps),
        "scope_fps {fps} (simulator: 15)"
    );
    assert!(state["frames_in"].as_u64() >= state["frames_out"].as_u64());
    assert!(state["latency_ms"]["p50"].as_f64().is_some(), "{state}");
    assert!(is_taken(&runtime, 1), "slot 1 is locked while running");

    let (code, json) = status(&runtime, true);
    assert_eq!(code, 0, "{json}");
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed[0]["interface"], "lo");
    assert_eq!(listed[0]["stale"], false);
    assert_eq!(
        listed[0]["consumers"]["kind"], "none",
        "a file is no camera"
    );
    let (code, text) = status(&runtime, false);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("lo: streaming, mjpeg to "), "{text}");

    svc.terminate();
    let exit = svc.wait_for_exit(Duration::from_secs(10));
    let log = svc.stderr();
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    assert!(!state_file.exists(), "state file removed at exit");
    assert!(!is_taken(&runtime, 1), "slot released at exit");
    assert!(log.contains("sent stop to the scope"), "{log}");
    assert!(
        std::fs::metadata(&output).unwrap().len() > 0,
        "frames were written"
    );
    let (code, text) = status(&runtime, false);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("no borescope bridge is running"), "{text}");
}

#[test]
fn two_services_get_two_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().to_owned();
    let _first_scope = simulator("127.76.0.2", &[]);
    let _second_scope = simulator("127.76.0.3", &[]);
    // The first one's watchdog belongs to another process (WATCHDOG_PID): it must not feed it.
    let mut notify = NotifySocket::bind(dir.path());
    let mut first = service("127.76.0.2", &runtime, "null", |cmd| {
        cmd.env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "200000")
            .env("WATCHDOG_PID", "1");
    });
    wait_for(Duration::from_secs(15), "the first slot", || {
        is_taken(&runtime, 1)
    });
    let mut second = service("127.76.0.3", &runtime, "null", |_| {});
    wait_for(Duration::from_secs(15), "the second slot", || {
        is_taken(&runtime, 2)
    });
    notify.until(Duration::from_secs(10), "READY=1", |m| {
        count(m, "READY=1") == 1
    });
    // 0.2 s watchdog: fed every 0.1 s if it were ours. Give it a second to show up.
    let deadline = Instant::now() + Duration::from_secs(1);
    notify.until(Duration::from_secs(2), "a second to pass", |_| {
        Instant::now() > deadline
    });
    assert_eq!(
        count(&notify.messages, "WATCHDOG=1"),
        0,
        "{:?}",
        notify.messages
    );
    for svc in [&mut first, &mut second] {
        svc.terminate();
        assert!(svc.wait_for_exit(Duration::from_secs(10)).success());
    }
    let (first_log, second_log) = (first.stderr(), second.stderr());
    assert!(
        first_log.contains("camera slot 1 ('Borescope')"),
        "{first_log}"
    );
    assert!(
        second_log.contains("camera slot 2 ('Borescope 2')"),
        "{second_log}"
    );
    assert!(!is_taken(&runtime, 1) && !is_taken(&runtime, 2));
}

#[test]
fn an_interface_where_nothing_answers_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let output = dir.path().join("never.mjpeg");
    let mut notify = NotifySocket::bind(dir.path());
    let started = Instant::now();
    // Nothing listens at 127.76.0.9.
    let mut svc = service(
        "127.76.0.9",
        &runtime,
        &format!("mjpeg:{}", output.display()),
        |cmd| {
            cmd.env("SCOPECAM_PROBE_TIMEOUT_S", "1")
                .env("NOTIFY_SOCKET", &notify.path);
        },
    );
    let exit = svc.wait_for_exit(Duration::from_secs(10));
    let took = started.elapsed();
    let log = svc.stderr();
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let expected = "no borescope answers at 127.76.0.9:50000 or 8030 on lo; leaving it alone";
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line only:\n{log}");
    assert!(lines[0].contains(expected), "{log}");
    assert!(!output.exists(), "no output opened");
    assert_eq!(
        std::fs::read_dir(&runtime).unwrap().count(),
        0,
        "no slot claimed, no state file"
    );
    // A clean start and stop for systemd, so it does not restart the unit, and a
    // barrier so systemd reads them before it sees the exit (else: "protocol").
    notify.until(Duration::from_secs(2), "READY, STOPPING and BARRIER", |m| {
        count(m, "READY=1") == 1 && count(m, "STOPPING=1") == 1 && count(m, "BARRIER=1") == 1
    });
    // systemd 252 reads STOPPING=1 instead of READY=1 when one datagram has both,
    // and fails a unit that is still starting with "protocol".
    assert!(
        !notify
            .datagrams
            .iter()
            .any(|d| d.contains("READY=1") && d.contains("STOPPING=1")),
        "{:?}",
        notify.datagrams
    );
    assert!(
        notify.messages.contains(&format!("STATUS={expected}")),
        "{:?}",
        notify.messages
    );
}

/// A link that is neither listed in `scope_interfaces` nor has a lease from the scope
/// is an ordinary dongle: left alone without one packet to the scope's address, even
/// though something answers there.
#[test]
fn a_link_without_the_scopes_lease_gets_no_packet() {
    let ip = "127.76.0.12";
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    // Something at the scope's control port that would notice a probe.
    let listener = std::net::UdpSocket::bind((ip, 50000)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let _video = std::net::UdpSocket::bind((ip, 8030)).unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let mut svc = service(ip, &runtime, "null", |cmd| {
        cmd.env_remove("SCOPECAM_SCOPE_INTERFACES")
            .env("SCOPECAM_LEASE_WAIT_S", "1")
            .env("NOTIFY_SOCKET", &notify.path);
    });
    let exit = svc.wait_for_exit(Duration::from_secs(15));
    let log = svc.stderr();
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line only:\n{log}");
    assert!(
        lines[0].contains("lo is not a scope link (no DHCP lease from the scope at 127.76.0.12 within 1 s and not in scope_interfaces); leaving it alone"),
        "{log}"
    );
    let mut buf = [0u8; 64];
    assert!(
        listener.recv_from(&mut buf).is_err(),
        "a packet reached the scope's control port"
    );
    assert_eq!(std::fs::read_dir(&runtime).unwrap().count(), 0);
    // Inactive, not failed: READY=1 before the exit.
    notify.until(Duration::from_secs(2), "READY=1 and STOPPING=1", |m| {
        count(m, "READY=1") == 1 && count(m, "STOPPING=1") == 1
    });
}

#[test]
fn sigterm_while_probing_exits_0_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut svc = service("127.76.0.11", dir.path(), "null", |cmd| {
        cmd.env("SCOPECAM_PROBE_TIMEOUT_S", "30");
    });
    std::thread::sleep(Duration::from_millis(700));
    let asked = Instant::now();
    svc.terminate();
    let exit = svc.wait_for_exit(Duration::from_secs(5));
    assert!(exit.success(), "exit {exit:?}; log:\n{}", svc.stderr());
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_interface_is_an_unplugged_scope() {
    let dir = tempfile::tempdir().unwrap();
    let mut svc = Proc::spawn_with(
        "service",
        &["service", "nosuchif0", "--config", "/dev/null"],
        |cmd| {
            cmd.env("SCOPECAM_SCOPE", "127.76.0.10")
                .env("RUNTIME_DIRECTORY", dir.path())
                .env_remove("NOTIFY_SOCKET");
        },
    );
    let exit = svc.wait_for_exit(Duration::from_secs(10));
    let log = svc.stderr();
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    assert!(log.contains("nosuchif0 is gone (unplugged)"), "{log}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn status_without_bridges_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = status(dir.path(), false);
    assert_eq!(code, 3);
    assert!(text.contains("journalctl -u 'scopecam@*'"), "{text}");
    let (code, json) = status(dir.path(), true);
    assert_eq!(code, 3);
    assert_eq!(json.trim(), "[]");
}

#[test]
fn a_state_file_of_a_dead_process_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    // A pid that has exited: a child we waited for.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    std::fs::write(
        dir.path().join("enxdead.json"),
        format!(r#"{{"interface": "enxdead", "pid": {pid}, "link_state": "streaming"}}"#),
    )
    .unwrap();
    let (code, text) = status(dir.path(), false);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("enxdead: stale"), "{text}");
}

#[test]
fn generate_assets_writes_renderable_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("generate-assets")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for page in [
        "scopecam.1",
        "scopecam-run.1",
        "scopecam-simulate.1",
        "scopecam-service.1",
        "scopecam-status.1",
    ] {
        let path = dir.path().join("man").join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
        assert!(text.contains(".TH "), "{page} has no .TH header");
        if Path::new("/usr/bin/groff").exists() {
            let rendered = Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(rendered.status.success(), "{page}: {rendered:?}");
            assert!(
                String::from_utf8_lossy(&rendered.stderr).trim().is_empty(),
                "{page}: groff warns: {}",
                String::from_utf8_lossy(&rendered.stderr)
            );
            assert!(String::from_utf8_lossy(&rendered.stdout).contains("SYNOPSIS"));
        }
    }
    assert!(
        !dir.path().join("man/scopecam-generate-assets.1").exists(),
        "the hidden command gets no page"
    );
    for file in ["scopecam.bash", "_scopecam", "scopecam.fish"] {
        let path = dir.path().join("completions").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("status"), "{file} completes subcommands");
    }
    if Path::new("/bin/bash").exists() {
        let checked = Command::new("bash")
            .arg("-n")
            .arg(dir.path().join("completions/scopecam.bash"))
            .status()
            .unwrap();
        assert!(checked.success(), "bash completion parses");
    }
}

#[test]
fn a_scope_whose_button_port_is_silent_is_served_by_its_video() {
    let ip = "127.76.0.13";
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir(&runtime).unwrap();
    let output = dir.path().join("out.mjpeg");
    let mut scope = simulator(
        ip,
        &["--silent-button", "--width", "160", "--height", "120"],
    );
    let started = Instant::now();
    let mut svc = service(ip, &runtime, &format!("mjpeg:{}", output.display()), |_| {});
    // Frames flow, and the button link has had its 3 s to say it is silent.
    wait_for(Duration::from_secs(20), "frames in the output", || {
        std::fs::metadata(&output).is_ok_and(|m| m.len() > 0)
    });
    while started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    svc.terminate();
    let exit = svc.wait_for_exit(Duration::from_secs(10));
    let log = svc.stderr();
    assert!(exit.success(), "exit {exit:?}; log:\n{log}");
    assert!(
        log.contains("answered the video heartbeat (not button polls) on lo"),
        "{log}"
    );
    assert_eq!(
        log.matches("has not answered a button poll").count(),
        1,
        "said once, not per poll:\n{log}"
    );
    assert!(!split_mjpeg(&std::fs::read(&output).unwrap()).is_empty());
    scope.terminate();
    scope.wait_for_exit(Duration::from_secs(5));
    let scope_log = scope.stderr();
    // One stop after the probe's heartbeat, one from the bridge at SIGTERM.
    assert!(scope_log.contains("stops: 2,"), "{scope_log}");
}
