//! The command line: `scopecam run` (the bridge), `scopecam service` (what the
//! systemd unit runs), `scopecam status`, `scopecam probe` (is a scope there?) and
//! `scopecam simulate` (a fake scope for trying everything without hardware).

mod announce;
mod assets;
mod capture;
mod exit;
mod probe;
mod run;
mod service;
mod simulate;
mod status;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use exit::{EXIT_FAILURE, EXIT_USAGE};
use exit::{Failure, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "scopecam",
    version,
    about = "Turns a J103/J106/J108-OTG USB borescope into a normal Linux camera",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bridge the scope's MJPEG stream to an output (the service's main job).
    Run(RunArgs),
    /// Pretend to be a scope: stream a test pattern or an .mjpeg file over UDP.
    Simulate(SimulateArgs),
    /// Check whether a scope answers, its frame size and rate, and the camera side.
    ///
    /// One line per check; each failure says what to do. Exit 0 when the scope answered
    /// with video, 1 otherwise.
    Probe(ProbeArgs),
    /// Record every datagram to and from the scope into a pcapng file (for a bug report).
    ///
    /// Talks to the scope as the bridge does (video heartbeats, button polls) for up to
    /// --seconds, and writes every datagram to and from the scope's two ports, with
    /// timestamps, as IPv4/UDP that Wireshark opens; nothing else on the network is
    /// recorded. Its own command rather than a `probe` flag: probe is a quick checklist
    /// that leaves the scope alone when it can, a capture is a deliberate recording with
    /// its own time and size limits and a file to send. Stop a running bridge first.
    /// `scopecam simulate --replay FILE` plays the file back to a bridge.
    Capture(CaptureArgs),
    /// Serve the scope on one network interface (what scopecam@IFACE.service runs).
    ///
    /// Waits up to address_timeout_s for an IPv4 address on IFACE, checks that a
    /// borescope answers within probe_timeout_s (if none does, exits 0 without touching
    /// anything), claims a camera slot ("Borescope", "Borescope 2", ...) and bridges the
    /// scope to it. Under systemd it reports readiness, status and watchdog
    /// (Type=notify), and keeps its state in $RUNTIME_DIRECTORY/IFACE.json for
    /// `scopecam status`. The default output is v4l2.
    Service(ServiceArgs),
    /// Show the running bridges: interface, camera, link state, rates, drops, readers.
    ///
    /// Reads the state files of running services ($RUNTIME_DIRECTORY, else
    /// /run/scopecam and $XDG_RUNTIME_DIR/scopecam). Exits 0 if at least one bridge
    /// runs, 3 if none does.
    Status(StatusArgs),
    /// Make the desktop's camera services (PipeWire) look at the bridge's camera again.
    ///
    /// What scopecam@IFACE.service runs as root after the bridge is ready
    /// (ExecStartPost) and after it stopped (ExecStopPost, with --stopped): sends a
    /// `remove` and an `add` uevent for exactly the v4l2loopback node the bridge of IFACE
    /// writes, so PipeWire lists it while the scope streams and drops it afterwards.
    Announce(AnnounceArgs),
    /// Write man pages and shell completions to DIR (for packaging).
    #[command(hide = true)]
    GenerateAssets(GenerateAssetsArgs),
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The scope's network interface (e.g. enx00e04c680001).
    #[arg(value_name = "IFACE")]
    pub interface: String,
    /// Configuration file [default: /etc/scopecam/config.toml if it exists].
    #[arg(long, value_name = "PATH", env = "SCOPECAM_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AnnounceArgs {
    /// The scope's network interface, as for `scopecam service`.
    #[arg(value_name = "IFACE")]
    pub interface: String,
    /// The bridge has stopped: announce its node again unless another producer feeds it.
    #[arg(long)]
    pub stopped: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the state of every bridge as JSON (the state files, plus stale, consumers
    /// and uptime_s).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateAssetsArgs {
    /// Output directory: man pages go to DIR/man, completions to DIR/completions.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Configuration file [default: /etc/scopecam/config.toml if it exists].
    #[arg(long, value_name = "PATH", env = "SCOPECAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// The scope's IPv4 address [default: 192.168.10.123].
    #[arg(long, value_name = "IP")]
    pub scope: Option<String>,
    /// The scope's network interface (enx...): checked, and the sockets are bound to it.
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Longest wait for the interface's address and for the scope's answer, each.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_seconds)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The capture file to create (pcapng; an existing file is not overwritten).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Configuration file [default: /etc/scopecam/config.toml if it exists].
    #[arg(long, value_name = "PATH", env = "SCOPECAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// The scope's IPv4 address [default: 192.168.10.123].
    #[arg(long, value_name = "IP")]
    pub scope: Option<String>,
    /// The scope's video UDP port [default: 8030].
    #[arg(long, value_name = "N")]
    pub video_port: Option<u16>,
    /// The scope's command UDP port [default: 50000].
    #[arg(long, value_name = "N")]
    pub control_port: Option<u16>,
    /// The scope's network interface (enx...): the sockets are bound to it.
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Longest recording, in seconds (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_capture_seconds)]
    pub seconds: f64,
    /// Largest file, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_mib: u64,
}

fn parse_capture_seconds(s: &str) -> Result<f64, String> {
    match parse_seconds(s) {
        Ok(v) if v <= 600.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 600"
        )),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file [default: /etc/scopecam/config.toml if it exists].
    #[arg(long, value_name = "PATH", env = "SCOPECAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// The scope's IPv4 address [default: 192.168.10.123].
    #[arg(long, value_name = "IP")]
    pub scope: Option<String>,
    /// The scope's video UDP port [default: 8030].
    #[arg(long, value_name = "N")]
    pub video_port: Option<u16>,
    /// The scope's command UDP port [default: 50000].
    #[arg(long, value_name = "N")]
    pub control_port: Option<u16>,
    /// Bind both sockets to this network interface (the scope's enx... NIC).
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Where frames go: v4l2 (the webcam labelled card_label), v4l2:/dev/videoN,
    /// y4m:PATH, mjpeg:PATH ('-' is stdout) or null [default: null].
    #[arg(long, value_name = "SINK")]
    pub output: Option<String>,
    /// Exit 0 after N frames from the scope have been written.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: Option<u64>,
    /// Directory for snapshots taken with the scope's button.
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Try it without hardware: run a simulated scope (test pattern, button
    /// pressed every 5 s) on loopback in this process and bridge that.
    #[arg(long, conflicts_with_all = ["scope", "video_port", "control_port", "interface"])]
    pub simulate: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on. Keep it on this machine (127.0.0.0/8 or a test namespace).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub bind: IpAddr,
    /// Video UDP port.
    #[arg(long, default_value_t = crate::scope::protocol::DEFAULT_VIDEO_PORT, value_name = "N")]
    pub video_port: u16,
    /// Command (button) UDP port.
    #[arg(long, default_value_t = crate::scope::protocol::DEFAULT_CONTROL_PORT, value_name = "N")]
    pub control_port: u16,
    /// Test pattern width.
    #[arg(long, default_value_t = 640, value_parser = clap::value_parser!(u32).range(8..=4096))]
    pub width: u32,
    /// Test pattern height.
    #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(u32).range(8..=4096))]
    pub height: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 15.0, value_parser = parse_fps)]
    pub fps: f64,
    /// Chroma subsampling of the test pattern: 444, 422, 420 or gray.
    #[arg(long, default_value = "422")]
    pub subsampling: String,
    /// JPEG quality of the test pattern (1-100).
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Play back a capture made with `scopecam capture` instead: its video datagrams at
    /// their original timing while a client heartbeats, its button answers to the
    /// client's polls. The pattern, file and fault flags do not apply.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "resize_every", "flood", "vanish_mid_frame", "frames", "press_every"])]
    pub replay: Option<PathBuf>,
    /// Stream the JPEGs of this .mjpeg file (looped) instead of the test pattern.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Press the snapshot button every SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub press_every: Option<f64>,
    /// Probability of losing each fragment (0-1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub loss: f64,
    /// Probability of sending a fragment twice (0-1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub duplicate: f64,
    /// Probability of swapping a fragment with the next one (0-1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub reorder: f64,
    /// Probability of sending a junk datagram (truncated, 9000-byte, lying sizes, ...) before a fragment (0-1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub garbage: f64,
    /// Largest fragment payload in bytes.
    #[arg(long, default_value_t = 1450, value_parser = clap::value_parser!(u16).range(16..))]
    pub fragment_size: u16,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop streaming after this many seconds without a heartbeat.
    #[arg(long, default_value_t = 3.0, value_name = "SECS", value_parser = parse_seconds)]
    pub idle_timeout: f64,
    /// Stop streaming after N frames (the button keeps answering).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Probability of sending a frame's fragments interleaved with the next frame's (0-1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub interleave: f64,
    /// Switch the test pattern between its size and half of it every N frames.
    #[arg(long, value_name = "N", conflicts_with = "file", value_parser = clap::value_parser!(u64).range(1..))]
    pub resize_every: Option<u64>,
    /// Flood the client with junk from the video port, as fast as possible,
    /// for SECS seconds after it connects.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub flood: Option<f64>,
    /// After N frames, send half of the next frame and fall silent (an unplugged scope).
    #[arg(long, value_name = "N")]
    pub vanish_mid_frame: Option<u64>,
    /// Frame ids in the fragment headers, as real scopes vary them: counting,
    /// constant[:ID], step:N or shuffled.
    #[arg(long, default_value = "counting", value_name = "SCHEME")]
    pub frame_ids: crate::simulator::FrameIds,
    /// Append this many filler bytes after each JPEG's end marker, counted in
    /// the announced frame size.
    #[arg(long, default_value_t = 0, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(0..=crate::simulator::MAX_FILLER as i64))]
    pub filler: u32,
    /// Never answer button polls on the command port.
    #[arg(long)]
    pub silent_button: bool,
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{s}' is not a probability between 0 and 1")),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 86400"
        )),
    }
}

fn parse_fps(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.1..=120.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a frame rate between 0.1 and 120")),
    }
}

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::finish(usage_error(e)),
    };
    exit::finish(match cli.command {
        Command::Run(args) => run::run(args),
        Command::Simulate(args) => simulate::simulate(args),
        Command::Probe(args) => probe::probe(args),
        Command::Capture(args) => capture::capture(args),
        Command::Service(args) => service::service(args),
        Command::Status(args) => status::status(args),
        Command::Announce(args) => announce::announce(args),
        Command::GenerateAssets(args) => assets::generate_assets(args),
    })
}

/// Help and version go to stdout with exit 0; a bad flag is one line on stderr, exit 2.
fn usage_error(e: clap::Error) -> Outcome {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            Ok(EXIT_USAGE)
        } else {
            Ok(0)
        };
    }
    let rendered = e.render().to_string();
    let reason = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ");
    Err(Failure::Usage(format!("{reason} (see `scopecam --help`)")))
}

/// Sets up logging to stderr: `RUST_LOG` if set, otherwise `default_level`.
pub fn init_logging(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("scopecam={default_level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Sets `shutdown` on the first SIGINT/SIGTERM; a second one exits at once.
pub fn stop_on_signals(
    shutdown: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen > 1 {
                    eprintln!("scopecam: second signal, exiting without cleanup");
                    std::process::exit(128 + signal);
                }
                tracing::info!("signal {signal} received, stopping");
                shutdown.send_replace(true);
            }
        })?;
    Ok(())
}

/// What a long-running command needs once its settings are loaded.
pub(crate) struct Started {
    pub settings: crate::config::Settings,
    pub rt: tokio::runtime::Runtime,
    pub shutdown: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

/// For commands whose own lines are the output (`probe`, `capture`): logs stay quiet
/// (warnings only) unless `RUST_LOG` asks for more.
pub(crate) fn quiet_logs(
    loaded: Result<crate::config::Settings, crate::config::ConfigError>,
) -> Result<crate::config::Settings, crate::config::ConfigError> {
    loaded.map(|mut settings| {
        settings.log_level = "warn".into();
        settings
    })
}

/// Checks the loaded settings (a bad one: exit 2), then starts logging, the runtime
/// and the signal handler (failure: exit 1).
pub(crate) fn start(
    loaded: Result<crate::config::Settings, crate::config::ConfigError>,
) -> Result<Started, Failure> {
    let settings = loaded.map_err(Failure::usage)?;
    init_logging(&settings.log_level);
    let shutdown = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
    let rt = runtime_with_signals(shutdown.clone())?;
    Ok(Started {
        settings,
        rt,
        shutdown,
    })
}

/// The configuration file `--config` names, else the default one.
pub(crate) fn config_file(flag: Option<PathBuf>) -> crate::config::ConfigFile {
    match flag {
        Some(path) => crate::config::ConfigFile::Explicit(path),
        None => crate::config::ConfigFile::Default,
    }
}

/// The runtime, and `shutdown` set by the first SIGINT/SIGTERM.
pub(crate) fn runtime_with_signals(
    shutdown: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
) -> Result<tokio::runtime::Runtime, Failure> {
    runtime()
        .and_then(|rt| stop_on_signals(shutdown).map(|()| rt))
        .map_err(|e| Failure::says(format!("cannot start: {e}")))
}

/// A multi-threaded runtime small enough for a 2-core laptop.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The unit runs `scopecam service -- %I`: an interface name may contain and start
    /// with '-', and after `--` it is the name, never an option.
    #[test]
    fn service_takes_an_interface_name_with_dashes_after_double_dash() {
        for name in ["-odd-name", "scope-1", "--", "-h", "enx00e04c680001"] {
            let cli = Cli::try_parse_from(["scopecam", "service", "--", name]).unwrap();
            let Command::Service(args) = cli.command else {
                panic!("not service")
            };
            assert_eq!(args.interface, name);
            assert_eq!(args.config, None);
        }
        // Without `--` a leading '-' is read as an option and rejected.
        let err = Cli::try_parse_from(["scopecam", "service", "-odd-name"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn run_flags_have_the_documented_names() {
        let cli = Cli::try_parse_from([
            "scopecam",
            "run",
            "--config",
            "/c.toml",
            "--scope",
            "127.0.0.5",
            "--video-port",
            "1",
            "--control-port",
            "2",
            "--interface",
            "lo",
            "--output",
            "y4m:-",
            "--frames",
            "3",
            "--snapshot-dir",
            "/tmp/s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.frames, Some(3));
        assert_eq!(args.video_port, Some(1));
        assert_eq!(args.output.as_deref(), Some("y4m:-"));
    }

    #[test]
    fn probe_flags_have_the_documented_names() {
        let cli = Cli::try_parse_from([
            "scopecam",
            "probe",
            "--interface",
            "enx1",
            "--scope",
            "127.0.0.5",
            "--timeout",
            "2.5",
            "--config",
            "/c.toml",
        ])
        .unwrap();
        let Command::Probe(args) = cli.command else {
            panic!("not probe")
        };
        assert_eq!(args.interface.as_deref(), Some("enx1"));
        assert_eq!(args.timeout, 2.5);
        let Command::Probe(args) = Cli::try_parse_from(["scopecam", "probe"]).unwrap().command
        else {
            panic!("not probe")
        };
        assert_eq!(args.timeout, 5.0);
        assert!(Cli::try_parse_from(["scopecam", "probe", "--timeout", "0"]).is_err());
    }

    #[test]
    fn capture_flags_and_bounds() {
        let Command::Capture(args) = Cli::try_parse_from(["scopecam", "capture", "x.pcapng"])
            .unwrap()
            .command
        else {
            panic!("not capture")
        };
        assert_eq!((args.seconds, args.max_mib), (30.0, 64));
        let Command::Capture(args) = Cli::try_parse_from([
            "scopecam",
            "capture",
            "x.pcapng",
            "--interface",
            "enx1",
            "--seconds",
            "5",
            "--max-mib",
            "8",
        ])
        .unwrap()
        .command
        else {
            panic!("not capture")
        };
        assert_eq!(args.interface.as_deref(), Some("enx1"));
        assert_eq!((args.seconds, args.max_mib), (5.0, 8));
        for bad in [["--seconds", "601"], ["--seconds", "0"], ["--max-mib", "0"]] {
            let mut argv = vec!["scopecam", "capture", "x.pcapng"];
            argv.extend(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
        assert!(
            Cli::try_parse_from(["scopecam", "capture"]).is_err(),
            "FILE is needed"
        );
        assert!(
            Cli::try_parse_from(["scopecam", "simulate", "--replay", "a", "--file", "b"]).is_err(),
            "a replay streams no file"
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(Cli::try_parse_from(["scopecam", "run", "--frames", "0"]).is_err());
        assert!(Cli::try_parse_from(["scopecam", "run", "--video-port", "70000"]).is_err());
        assert!(Cli::try_parse_from(["scopecam", "simulate", "--loss", "1.5"]).is_err());
    }
}
