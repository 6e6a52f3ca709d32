//! Real kernel networking: scopes in network namespaces behind veth pairs.
//!
//! Every test makes its own namespaces (names carry the test's pid and a tag) and
//! removes them when it ends, even on panic. Both ends of every veth pair are created
//! inside those namespaces (`ip -n NS link add ... peer ... netns NS2`): the host's
//! own namespace never sees them, never gets a 192.168.10.x address or route, and no
//! packet leaves the machine. The bridge side has 192.168.10.100/24 like a computer
//! with a scope plugged in, each scope namespace 192.168.10.123/24 running
//! `scopecam simulate`.
//!
//! Needs root (CAP_SYS_ADMIN for namespaces) and iproute2; without them each test
//! prints why it is skipped and passes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Proc, split_mjpeg};

/// A network namespace this test created; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    /// Creates `scopecam-PID-TAG` with loopback up and reverse-path filtering loose:
    /// the bridge namespace holds several links on one subnet, and a strict filter
    /// would drop the second scope's replies (the route back points at the first).
    fn create(tag: &str) -> Result<Netns, String> {
        let name = format!("scopecam-{}-{tag}", std::process::id());
        run_ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.exec_ok(&[
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.rp_filter=2",
            "net.ipv4.conf.default.rp_filter=2",
        ]);
        Ok(ns)
    }

    /// `ip -n NS ARGS`, failing the test on error.
    fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        if let Err(e) = run_ip(&full) {
            panic!("{e}");
        }
    }

    /// Runs a command inside the namespace and waits for it, failing on error.
    fn exec_ok(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{args:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `scopecam ARGS` inside the namespace, stdout and stderr captured.
    fn scopecam(&self, name: &'static str, args: &[&str]) -> Proc {
        self.scopecam_with(name, args, &[])
    }

    /// Like [`Netns::scopecam`], with extra environment variables.
    fn scopecam_with(&self, name: &'static str, args: &[&str], env: &[(&str, &Path)]) -> Proc {
        self.spawn(name, &[BIN], args, env)
    }

    /// `scopecam ARGS` as user nobody without any capability, as the service runs
    /// (a system user, empty CapabilityBoundingSet); as root when setpriv is missing
    /// or nobody cannot run the test binary (a build tree in a private directory).
    fn scopecam_unprivileged(&self, name: &'static str, args: &[&str]) -> Proc {
        const SETPRIV: [&str; 7] = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            BIN,
        ];
        let usable = Command::new(SETPRIV[0])
            .args(&SETPRIV[1..])
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if usable {
            self.spawn(name, &SETPRIV, args, &[])
        } else {
            eprintln!(
                "note: running {name} as root: setpriv is missing or nobody cannot run {BIN}"
            );
            self.scopecam(name, args)
        }
    }

    fn spawn(
        &self,
        name: &'static str,
        command: &[&str],
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(command)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "scopecam=info")
            .env_remove("SCOPECAM_CONFIG")
            .envs(env.iter().copied())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} in {}: {e}", self.name));
        Proc { child, name }
    }

    /// Whether a button poll from a plain UDP socket in this namespace (routed as the
    /// routing table says) gets an answer from `scope`:50000 within 5 s.
    fn button_poll_answered(&self, scope: &str) -> bool {
        let netns = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        let scope: std::net::Ipv4Addr = scope.parse().unwrap();
        // setns changes the calling thread only: a thread of its own.
        std::thread::spawn(move || {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(250)))
                .unwrap();
            let poll = scopecam::scope::protocol::ButtonRequest { counter: 0 }.to_bytes();
            let mut buf = [0u8; 64];
            (0..20).any(|_| {
                let _ = socket.send_to(&poll, (scope, 50000));
                socket.recv_from(&mut buf).is_ok()
            })
        })
        .join()
        .unwrap()
    }

    /// A simulated scope on 192.168.10.123 in this namespace.
    fn simulator(&self, width: u32, height: u32) -> Proc {
        let (w, h) = (width.to_string(), height.to_string());
        self.scopecam(
            "simulator",
            &[
                "simulate", "--bind", SCOPE, "--width", &w, "--height", &h, "--fps", "20",
            ],
        )
    }

    /// A veth pair: `local` here, `remote` in `far`, both created inside namespaces.
    /// Addresses are given with their prefix ("192.168.10.100/24"); `None` = none yet.
    fn veth(
        &self,
        local: &str,
        local_addr: Option<&str>,
        far: &Netns,
        remote: &str,
        remote_addr: &str,
    ) {
        self.ip(&[
            "link", "add", local, "type", "veth", "peer", "name", remote, "netns", &far.name,
        ]);
        for (ns, dev) in [(self, local), (far, remote)] {
            // Interfaces made before the `default` sysctl took effect keep their own value.
            ns.exec_ok(&["sysctl", "-qw", &format!("net.ipv4.conf.{dev}.rp_filter=2")]);
        }
        if let Some(addr) = local_addr {
            self.ip(&["addr", "add", addr, "dev", local]);
        }
        far.ip(&["addr", "add", remote_addr, "dev", remote]);
        self.ip(&["link", "set", local, "up"]);
        far.ip(&["link", "set", remote, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth ends in it (and their peers).
        let _ = run_ip(&["netns", "delete", &self.name]);
    }
}

const SCOPE: &str = "192.168.10.123";
const BRIDGE_ADDR: &str = "192.168.10.100/24";
const SCOPE_ADDR: &str = "192.168.10.123/24";

fn run_ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces for one test, or `None` (and a printed reason) when this machine
/// cannot make them.
fn namespaces<const N: usize>(test: &str, tags: [&str; N]) -> Option<[Netns; N]> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping {test}: network namespace tests need root (CI runs them as root)");
        return None;
    }
    let mut made = Vec::new();
    for tag in tags {
        match Netns::create(&format!("{test}-{tag}")) {
            Ok(ns) => made.push(ns),
            Err(e) => {
                eprintln!("skipping {test}: cannot create a network namespace: {e}");
                return None;
            }
        }
    }
    made.try_into().ok()
}

/// Waits for a probe and returns (exit code, stdout, stderr).
fn finish(mut proc: Proc, limit: Duration) -> (i32, String, String) {
    let status = proc.wait_for_exit(limit);
    let mut stdout = String::new();
    if let Some(mut out) = proc.child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut stdout);
    }
    (status.code().unwrap_or(-1), stdout, proc.stderr())
}

fn probe_args<'a>(interface: &'a str, timeout: &'a str) -> Vec<&'a str> {
    vec![
        "probe",
        "--config",
        "/dev/null",
        "--interface",
        interface,
        "--timeout",
        timeout,
    ]
}

#[test]
fn probe_reports_frame_size_and_rate_of_the_scope_behind_the_interface() {
    let Some([bridge, scope]) = namespaces("probe", ["br", "sc"]) else {
        return;
    };
    bridge.veth("scopeA", Some(BRIDGE_ADDR), &scope, "eth0", SCOPE_ADDR);
    let _sim = scope.simulator(320, 240);
    let (code, out, err) = finish(
        bridge.scopecam("probe", &probe_args("scopeA", "5")),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("ok    interface scopeA exists"), "{out}");
    assert!(
        out.contains("ok    scopeA has the IPv4 address 192.168.10.100"),
        "{out}"
    );
    assert!(
        out.contains("ok    the scope answers at 192.168.10.123:50000"),
        "{out}"
    );
    let video = out
        .lines()
        .find(|l| l.contains("video:"))
        .expect("a video line");
    assert!(video.starts_with("ok    video: 320x240, "), "{out}");
    let fps: f64 = video
        .split(", ")
        .nth(1)
        .and_then(|f| f.strip_suffix(" fps"))
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no fps in {video}"));
    assert!((15.0..=25.0).contains(&fps), "{video}");
    assert!(out.contains("ok    no bridge runs on scopeA"), "{out}");
}

#[test]
fn probe_without_a_scope_says_no_answer_and_exits_1() {
    let Some([bridge, scope]) = namespaces("silent", ["br", "sc"]) else {
        return;
    };
    bridge.veth("scopeA", Some(BRIDGE_ADDR), &scope, "eth0", SCOPE_ADDR);
    let started = Instant::now();
    let (code, out, err) = finish(
        bridge.scopecam("probe", &probe_args("scopeA", "2")),
        Duration::from_secs(15),
    );
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("FAIL  no borescope answers at 192.168.10.123:50000 or 8030 on scopeA"),
        "{out}"
    );
    assert!(
        out.contains("skip  video: the scope did not answer"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "bounded by --timeout"
    );
}

#[test]
fn unprivileged_probe_waits_for_an_address_that_comes_late() {
    let Some([bridge, scope]) = namespaces("late", ["br", "sc"]) else {
        return;
    };
    // The link is up but has no address yet, as before the scope's DHCP answers.
    bridge.veth("scopeA", None, &scope, "eth0", SCOPE_ADDR);
    let _sim = scope.simulator(320, 240);
    let started = Instant::now();
    // Unprivileged, like the service: netlink notifications and SO_BINDTODEVICE on an
    // unbound socket need no capability.
    let probe = bridge.scopecam_unprivileged("probe", &probe_args("scopeA", "8"));
    std::thread::sleep(Duration::from_millis(1500));
    bridge.ip(&["addr", "add", BRIDGE_ADDR, "dev", "scopeA"]);
    let (code, out, err) = finish(probe, Duration::from_secs(25));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("ok    scopeA has the IPv4 address 192.168.10.100"),
        "{out}"
    );
    assert!(out.contains("ok    video: 320x240"), "{out}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn probe_fails_on_a_missing_link_no_address_and_a_deleted_link() {
    let Some([bridge, scope]) = namespaces("gone", ["br", "sc"]) else {
        return;
    };
    let started = Instant::now();
    let (code, out, _) = finish(
        bridge.scopecam("probe", &probe_args("nosuch0", "10")),
        Duration::from_secs(15),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  interface nosuch0 does not exist"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no waiting for a missing link"
    );

    bridge.veth("scopeA", None, &scope, "eth0", SCOPE_ADDR);
    // A link that never gets an address: the wait ends at --timeout.
    let started = Instant::now();
    let (code, out, _) = finish(
        bridge.scopecam("probe", &probe_args("scopeA", "1")),
        Duration::from_secs(15),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ok    interface scopeA exists"), "{out}");
    assert!(
        out.contains("FAIL  scopeA has no IPv4 address after 1.0 s"),
        "{out}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    let started = Instant::now();
    let probe = bridge.scopecam("probe", &probe_args("scopeA", "10"));
    std::thread::sleep(Duration::from_millis(1000));
    bridge.ip(&["link", "del", "scopeA"]);
    let (code, out, err) = finish(probe, Duration::from_secs(15));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("FAIL  interface scopeA went away"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "stopped when the link went"
    );
}

/// Runs the bridge on `interface` for 5 frames into an MJPEG file; returns the sizes.
fn bridged_frame_sizes(bridge: &Netns, interface: &str, dir: &Path) -> Vec<(u32, u32)> {
    let file = dir.join(format!("{interface}.mjpeg"));
    let output = format!("mjpeg:{}", file.display());
    let run = bridge.scopecam(
        "bridge",
        &[
            "run",
            "--config",
            "/dev/null",
            "--interface",
            interface,
            "--scope",
            SCOPE,
            "--output",
            &output,
            "--frames",
            "5",
        ],
    );
    let (code, out, err) = finish(run, Duration::from_secs(30));
    assert_eq!(
        code, 0,
        "bridge on {interface}: stdout:\n{out}\nstderr:\n{err}"
    );
    let data = std::fs::read(&file).expect("mjpeg output");
    let frames = split_mjpeg(&data);
    assert!(
        frames.len() >= 5,
        "{} frames from {interface}",
        frames.len()
    );
    frames
        .iter()
        .map(|f| scopecam::jpeg::dimensions(f).expect("a JPEG header"))
        .collect()
}

#[test]
fn two_scopes_and_a_home_lan_on_the_same_subnet_stay_apart() {
    let Some([bridge, scope_a, scope_b, lan]) = namespaces("two", ["br", "sa", "sb", "lan"]) else {
        return;
    };
    bridge.veth("scopeA", Some(BRIDGE_ADDR), &scope_a, "eth0", SCOPE_ADDR);
    bridge.veth("scopeB", Some(BRIDGE_ADDR), &scope_b, "eth0", SCOPE_ADDR);
    // A home network that also uses 192.168.10.0/24, with a decoy at .123.
    bridge.veth("lan0", Some("192.168.10.5/24"), &lan, "eth0", SCOPE_ADDR);
    let _sim_a = scope_a.simulator(320, 240);
    let _sim_b = scope_b.simulator(640, 480);
    let _decoy = lan.simulator(160, 120);
    let dir = tempfile::tempdir().unwrap();

    let sizes = bridged_frame_sizes(&bridge, "scopeA", dir.path());
    assert!(sizes.iter().all(|&s| s == (320, 240)), "scope A: {sizes:?}");
    let sizes = bridged_frame_sizes(&bridge, "scopeB", dir.path());
    assert!(sizes.iter().all(|&s| s == (640, 480)), "scope B: {sizes:?}");

    // The probe, too, asks the scope behind the interface it is given; the decoy is
    // really there (so the runs above were not just lucky).
    for (interface, size) in [("scopeB", "640x480"), ("lan0", "160x120")] {
        let (code, out, err) = finish(
            bridge.scopecam("probe", &probe_args(interface, "5")),
            Duration::from_secs(20),
        );
        assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
        assert!(out.contains(&format!("ok    video: {size}, ")), "{out}");
    }
}

#[test]
fn probe_leaves_the_stream_of_a_running_bridge_alone() {
    let Some([bridge, scope]) = namespaces("busy", ["br", "sc"]) else {
        return;
    };
    bridge.veth("scopeA", Some(BRIDGE_ADDR), &scope, "eth0", SCOPE_ADDR);
    let mut sim = scope.simulator(320, 240);
    // A state file as a running bridge leaves it, with the live pid of a process named
    // scopecam (a copy of sleep): probe and status check the name when /proc shows it.
    let runtime = tempfile::tempdir().unwrap();
    let fake = runtime.path().join("scopecam");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut fake_bridge = std::process::Command::new(&fake).arg("60").spawn().unwrap();
    let state = format!(r#"{{"interface":"scopeA","pid":{}}}"#, fake_bridge.id());
    std::fs::write(runtime.path().join("scopeA.json"), state).unwrap();
    let probe = bridge.scopecam_with(
        "probe",
        &probe_args("scopeA", "5"),
        &[("RUNTIME_DIRECTORY", runtime.path())],
    );
    let (code, out, err) = finish(probe, Duration::from_secs(20));
    let _ = fake_bridge.kill();
    let _ = fake_bridge.wait();
    assert_eq!(
        code, 0,
        "the scope answered; stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("ok    the scope answers"), "{out}");
    assert!(
        out.contains("skip  video: not measured while the bridge"),
        "{out}"
    );
    assert!(
        out.contains("busy  a bridge already runs on scopeA"),
        "{out}"
    );
    sim.terminate();
    sim.wait_for_exit(Duration::from_secs(10));
    let log = sim.stderr();
    assert!(
        log.contains("heartbeats: 0,") && log.contains("stops: 0,"),
        "{log}"
    );
}

/// An RTL8152 link that never gets an address (a dongle without a cable, or a link no
/// network manager configures) is left alone like one where nothing answers: one
/// line, exit 0 so systemd does not restart the unit every few seconds for ever.
#[test]
fn service_leaves_a_link_without_an_address_alone() {
    let Some([bridge, scope]) = namespaces("noaddr", ["bridge", "scope"]) else {
        return;
    };
    bridge.veth("scopeA", None, &scope, "eth0", SCOPE_ADDR);
    let runtime = tempfile::tempdir().unwrap();
    let proc = bridge.scopecam_with(
        "service",
        &["service", "scopeA"],
        &[
            ("RUNTIME_DIRECTORY", runtime.path()),
            ("SCOPECAM_ADDRESS_TIMEOUT_S", Path::new("1")),
        ],
    );
    let (code, _, log) = finish(proc, Duration::from_secs(15));
    assert_eq!(code, 0, "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line only:\n{log}");
    assert!(
        lines[0].contains("no IPv4 address on scopeA after 1 s; leaving it alone"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_dir(runtime.path()).unwrap().count(),
        0,
        "no slot claimed, no state file"
    );
}

/// An ordinary dongle on a LAN whose default router leads to a host at 192.168.10.123
/// (a router does not answer ARP for addresses behind it): packets to the scope never
/// take that route. The service does not send at all (the scope's address is not on
/// the link), and even `scopecam probe`, pointed at the link by hand, gets no answer
/// because its sockets do not route (SO_DONTROUTE), though an ordinary ping does.
#[test]
fn the_scope_is_never_reached_through_a_gateway() {
    let Some([bridge, lan]) = namespaces("gateway", ["br", "lan"]) else {
        return;
    };
    bridge.veth("lan0", Some("10.77.0.5/24"), &lan, "eth0", "10.77.0.1/24");
    bridge.ip(&["route", "add", "default", "via", "10.77.0.1", "dev", "lan0"]);
    lan.ip(&["addr", "add", "192.168.10.123/32", "dev", "lo"]);
    lan.exec_ok(&["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"]);
    let mut decoy = lan.simulator(160, 120);
    let runtime = tempfile::tempdir().unwrap();
    let service = bridge.scopecam_with(
        "service",
        &["service", "lan0"],
        &[
            ("RUNTIME_DIRECTORY", runtime.path()),
            // Even listed as the user's scope link: not on the link, no packet.
            ("SCOPECAM_SCOPE_INTERFACES", Path::new("lan0")),
        ],
    );
    let (code, _, log) = finish(service, Duration::from_secs(15));
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("192.168.10.123 is not on the link of lan0 (its addresses: 10.77.0.5/24)"),
        "{log}"
    );
    assert_eq!(std::fs::read_dir(runtime.path()).unwrap().count(), 0);

    let (code, out, err) = finish(
        bridge.scopecam("probe", &probe_args("lan0", "2")),
        Duration::from_secs(15),
    );
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("FAIL  no borescope answers at 192.168.10.123:50000 or 8030 on lan0"),
        "{out}"
    );
    decoy.terminate();
    decoy.wait_for_exit(Duration::from_secs(10));
    let log = decoy.stderr();
    assert!(log.contains("button_polls: 0,"), "{log}");

    // The route is there: an ordinary socket reaches a decoy through the router.
    let _decoy = lan.simulator(160, 120);
    assert!(
        bridge.button_poll_answered(SCOPE),
        "the decoy behind the router does not answer an ordinary socket"
    );
}
