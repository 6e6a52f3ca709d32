//! Settings: built-in defaults < `/etc/scopecam/config.toml` < `SCOPECAM_*`
//! environment variables < command-line flags.
//!
//! Every key is documented in `packaging/config.toml`. Unknown keys and bad
//! values are errors that name the key, so a typo never silently falls back
//! to a default.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::output::key::{KeyCode, parse_key};
#[cfg(test)]
use crate::output::sinks::V4l2Target;
use crate::output::sinks::{CameraFormat, SinkSpec};
use crate::output::snapshot::SnapshotLimits;
use crate::picture::Rotation;
use crate::scope::protocol::{DEFAULT_CONTROL_PORT, DEFAULT_SCOPE_ADDR, DEFAULT_VIDEO_PORT};

/// Where the service looks for its configuration unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/scopecam/config.toml";
/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "SCOPECAM_";
/// Environment variable naming the config file (not a setting itself).
pub const CONFIG_PATH_ENV: &str = "SCOPECAM_CONFIG";

/// The validated settings of one bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub scope: Ipv4Addr,
    pub video_port: u16,
    pub control_port: u16,
    pub interface: Option<String>,
    pub output: SinkSpec,
    pub snapshot_dir: Option<PathBuf>,
    /// How often and how much the button may save.
    pub snapshot_limits: SnapshotLimits,
    pub fps_hint: u32,
    pub heartbeat_interval: Duration,
    pub button_poll_interval: Duration,
    pub stall_timeout: Duration,
    pub frame_timeout: Duration,
    pub max_frame_bytes: usize,
    pub summary_interval: Option<Duration>,
    pub log_level: String,
    /// Camera (v4l2) output: fixed geometry apps see, whatever the scope sends.
    pub width: u32,
    pub height: u32,
    /// Camera (v4l2) pixel format: decoded YUYV, or the scope's JPEGs passed through.
    pub format: CameraFormat,
    /// Clockwise rotation of the scope's picture (`rotation`: 0, 90, 180 or 270).
    pub rotation: Rotation,
    /// Mirror the picture left-right (after rotation).
    pub mirror: bool,
    /// The loopback device to write; `None` = find the one labelled `card_label`.
    pub device: Option<PathBuf>,
    pub card_label: String,
    /// On v4l2loopback 0.13+, create the device at start and remove it at exit.
    pub create_device: bool,
    /// Rate of the "no signal" picture while the scope sends nothing.
    pub no_signal_fps: u32,
    /// How long the last picture is repeated during a stall before "no signal".
    pub hold_last_frame: Duration,
    /// The key a button press sends (`key`: an evdev name such as "KEY_CAMERA"); `None`
    /// for "none".
    pub key: Option<KeyCode>,
    /// `scopecam service`: how long to wait for an IPv4 address on the interface.
    pub address_timeout: Duration,
    /// `scopecam service`: how long the scope has to answer the first button poll (or,
    /// when its button port is silent, the video heartbeat).
    pub probe_timeout: Duration,
    /// `scopecam service`: links the user declared to be scope links (by interface name
    /// or MAC address); any other link needs a DHCP lease from the scope.
    pub scope_interfaces: Vec<ScopeLinkId>,
    /// `scopecam service`: how long to wait, once the link has an address, for the
    /// network manager to record its DHCP lease.
    pub lease_wait: Duration,
}

/// One entry of `scope_interfaces`: a link the user says is a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeLinkId {
    /// The interface name, e.g. "enx00e04c680001".
    Name(String),
    /// The link's MAC address, e.g. 00:e0:4c:68:00:01 (survives a renamed interface).
    Mac([u8; 6]),
}

impl ScopeLinkId {
    /// Whether this entry names the link `name` with MAC address `mac`.
    pub fn matches(&self, name: &str, mac: Option<[u8; 6]>) -> bool {
        match self {
            ScopeLinkId::Name(n) => n == name,
            ScopeLinkId::Mac(m) => mac == Some(*m),
        }
    }
}

impl std::fmt::Display for ScopeLinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeLinkId::Name(n) => f.write_str(n),
            ScopeLinkId::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

/// A MAC address as `ip link` and /sys/class/net/IFACE/address write it: six hex
/// bytes separated by colons (dashes accepted too). `None` for anything else.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The file/environment representation: plain values, checked by [`RawSettings::validate`].
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    scope: String,
    video_port: u16,
    control_port: u16,
    interface: String,
    output: String,
    snapshot_dir: String,
    snapshot_min_interval_ms: u64,
    snapshot_max_files: u64,
    snapshot_max_mib: u64,
    snapshot_min_free_mib: u64,
    fps_hint: u32,
    heartbeat_interval_ms: u64,
    button_poll_interval_ms: u64,
    stall_timeout_ms: u64,
    frame_timeout_ms: u64,
    max_frame_bytes: u64,
    summary_interval_s: u64,
    log_level: String,
    width: u32,
    height: u32,
    format: String,
    rotation: u16,
    mirror: bool,
    device: String,
    card_label: String,
    create_device: bool,
    no_signal_fps: u32,
    hold_last_frame_ms: u64,
    key: String,
    address_timeout_s: u64,
    probe_timeout_s: u64,
    #[serde(deserialize_with = "string_or_list")]
    scope_interfaces: Vec<String>,
    lease_wait_s: u64,
}

/// `scope_interfaces` from the file is a TOML list; from the environment
/// (`SCOPECAM_SCOPE_INTERFACES=enx1,enx2`) it is one string, split at commas and
/// spaces. (The config crate splits lists only with `try_parsing`, which would also
/// turn strings such as "00100" into numbers, see `load_for`.)
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(text) => text
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(list) => list,
    })
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            scope: DEFAULT_SCOPE_ADDR.to_string(),
            video_port: DEFAULT_VIDEO_PORT,
            control_port: DEFAULT_CONTROL_PORT,
            interface: String::new(),
            output: "null".into(),
            snapshot_dir: String::new(),
            snapshot_min_interval_ms: 500,
            snapshot_max_files: 1000,
            snapshot_max_mib: 512,
            snapshot_min_free_mib: 256,
            fps_hint: 30,
            heartbeat_interval_ms: 500,
            button_poll_interval_ms: 100,
            stall_timeout_ms: 2000,
            frame_timeout_ms: 1000,
            max_frame_bytes: 4 * 1024 * 1024,
            summary_interval_s: 30,
            log_level: "info".into(),
            width: 1280,
            height: 720,
            format: "yuyv".into(),
            rotation: 0,
            mirror: false,
            device: String::new(),
            card_label: "Borescope".into(),
            create_device: true,
            no_signal_fps: 5,
            hold_last_frame_ms: 1500,
            key: "KEY_CAMERA".into(),
            address_timeout_s: 20,
            probe_timeout_s: 5,
            scope_interfaces: Vec::new(),
            lease_wait_s: 15,
        }
    }
}

/// A setting that is missing, unknown or out of range.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    #[error(
        "unknown environment variable {0}: scopecam settings are SCOPECAM_ plus a key of \
         /etc/scopecam/config.toml in capitals, e.g. SCOPECAM_VIDEO_PORT"
    )]
    UnknownVariable(String),
    #[error("bad value for `{key}`: {reason}")]
    Value { key: &'static str, reason: String },
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub scope: Option<String>,
    pub video_port: Option<u16>,
    pub control_port: Option<u16>,
    pub interface: Option<String>,
    pub output: Option<String>,
    pub snapshot_dir: Option<PathBuf>,
}

/// Where the configuration file comes from.
#[derive(Debug, Clone)]
pub enum ConfigFile {
    /// The default path: read if it exists.
    Default,
    /// Named by the user: must exist.
    Explicit(PathBuf),
}

/// What runs with the settings: only the defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `scopecam run`: output `null` unless told otherwise.
    Run,
    /// `scopecam service`: output `v4l2` (the camera) unless the file or environment says
    /// otherwise; that is what the systemd unit is for.
    Service,
}

/// Loads and validates the settings from every layer for `scopecam run`.
pub fn load(
    file: &ConfigFile,
    env: &HashMap<String, String>,
    flags: &Overrides,
) -> Result<Settings, ConfigError> {
    load_for(Mode::Run, file, env, flags)
}

/// Loads and validates the settings from every layer, with the defaults of `mode`.
pub fn load_for(
    mode: Mode,
    file: &ConfigFile,
    env: &HashMap<String, String>,
    flags: &Overrides,
) -> Result<Settings, ConfigError> {
    let mut builder = config::Config::builder();
    if mode == Mode::Service {
        // A builder default sits below the file and the environment, above serde's.
        builder = builder.set_default("output", "v4l2")?;
    }
    builder = match file {
        ConfigFile::Default => builder.add_source(
            config::File::new(DEFAULT_CONFIG_PATH, config::FileFormat::Toml).required(false),
        ),
        ConfigFile::Explicit(path) => {
            // Read it ourselves: clearer errors, and `--config /dev/null` works.
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Value {
                key: "--config",
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            builder.add_source(config::File::from_str(&text, config::FileFormat::Toml))
        }
    };
    // No `try_parsing`: it would turn SCOPECAM_SNAPSHOT_DIR=00100 into "100";
    // numbers and booleans are still converted when the settings are read.
    builder =
        builder.add_source(config::Environment::default().source(Some(settings_from_env(env)?)));
    builder = apply_flags(builder, flags)?;
    let raw: RawSettings =
        builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| match file {
                ConfigFile::Explicit(path) => ConfigError::File {
                    path: path.clone(),
                    source: e,
                },
                ConfigFile::Default => ConfigError::Load(e),
            })?;
    raw.validate()
}

/// Reads the process environment's `SCOPECAM_*` variables.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}

/// `SCOPECAM_VIDEO_PORT=8031` becomes `video_port = 8031`; the variable that
/// names the config file is not a setting and is left out. A variable that
/// names no setting is an error that names the variable.
fn settings_from_env(
    env: &HashMap<String, String>,
) -> Result<HashMap<String, String>, ConfigError> {
    let known = known_keys();
    let mut settings = HashMap::new();
    for (name, value) in env {
        let Some(key) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == CONFIG_PATH_ENV {
            continue;
        }
        let key = key.to_ascii_lowercase();
        if !known.contains(&key) {
            return Err(ConfigError::UnknownVariable(name.clone()));
        }
        settings.insert(key, value.clone());
    }
    Ok(settings)
}

/// Every setting's name, from the defaults themselves so the list cannot drift.
/// (Through serde_json: the config crate's serializer leaves out an empty list.)
fn known_keys() -> Vec<String> {
    match serde_json::to_value(RawSettings::default()) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().map(|(k, _)| k).collect(),
        _ => Vec::new(),
    }
}

fn apply_flags(
    mut builder: config::ConfigBuilder<config::builder::DefaultState>,
    flags: &Overrides,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    if let Some(v) = &flags.scope {
        builder = builder.set_override("scope", v.as_str())?;
    }
    if let Some(v) = flags.video_port {
        builder = builder.set_override("video_port", u64::from(v))?;
    }
    if let Some(v) = flags.control_port {
        builder = builder.set_override("control_port", u64::from(v))?;
    }
    if let Some(v) = &flags.interface {
        builder = builder.set_override("interface", v.as_str())?;
    }
    if let Some(v) = &flags.output {
        builder = builder.set_override("output", v.as_str())?;
    }
    if let Some(v) = &flags.snapshot_dir {
        builder = builder.set_override("snapshot_dir", v.to_string_lossy().as_ref())?;
    }
    Ok(builder)
}

fn bad(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key,
        reason: reason.into(),
    }
}

fn millis(key: &'static str, value: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(bad(key, format!("{value} is outside {min}..={max} ms")));
    }
    Ok(Duration::from_millis(value))
}

fn seconds(key: &'static str, value: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(bad(key, format!("{value} is outside {min}..={max} s")));
    }
    Ok(Duration::from_secs(value))
}

fn port(key: &'static str, value: u16) -> Result<u16, ConfigError> {
    if value == 0 {
        return Err(bad(key, "port 0 is not a port the scope listens on"));
    }
    Ok(value)
}

impl RawSettings {
    fn validate(self) -> Result<Settings, ConfigError> {
        self.validate_camera()?;
        let format = self.camera_format()?;
        let snapshot_limits = self.snapshot_limits()?;
        let scope = self.scope.parse::<Ipv4Addr>().map_err(|_| {
            bad(
                "scope",
                format!(
                    "'{}' is not an IPv4 address (e.g. 192.168.10.123)",
                    self.scope
                ),
            )
        })?;
        let output = self
            .output
            .parse::<SinkSpec>()
            .map_err(|e| bad("output", e.to_string()))?;
        let interface = non_empty(self.interface);
        if let Some(name) = &interface {
            validate_interface_name(name)?;
        }
        if !(1..=240).contains(&self.fps_hint) {
            return Err(bad(
                "fps_hint",
                format!("{} is outside 1..=240", self.fps_hint),
            ));
        }
        if !(64 * 1024..=64 * 1024 * 1024).contains(&self.max_frame_bytes) {
            return Err(bad(
                "max_frame_bytes",
                format!("{} is outside 65536..=67108864", self.max_frame_bytes),
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(bad(
                "log_level",
                format!(
                    "'{}' is not one of error, warn, info, debug, trace",
                    self.log_level
                ),
            ));
        }
        Ok(Settings {
            scope,
            video_port: port("video_port", self.video_port)?,
            control_port: port("control_port", self.control_port)?,
            interface,
            output,
            snapshot_dir: non_empty(self.snapshot_dir).map(PathBuf::from),
            snapshot_limits,
            fps_hint: self.fps_hint,
            heartbeat_interval: millis(
                "heartbeat_interval_ms",
                self.heartbeat_interval_ms,
                50,
                5000,
            )?,
            button_poll_interval: millis(
                "button_poll_interval_ms",
                self.button_poll_interval_ms,
                20,
                5000,
            )?,
            stall_timeout: millis("stall_timeout_ms", self.stall_timeout_ms, 200, 60_000)?,
            frame_timeout: millis("frame_timeout_ms", self.frame_timeout_ms, 50, 10_000)?,
            max_frame_bytes: self.max_frame_bytes as usize,
            summary_interval: match self.summary_interval_s {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            log_level: self.log_level,
            width: self.width,
            height: self.height,
            format,
            rotation: Rotation::from_degrees(self.rotation).ok_or_else(|| {
                bad(
                    "rotation",
                    format!("{} is not 0, 90, 180 or 270", self.rotation),
                )
            })?,
            mirror: self.mirror,
            device: non_empty(self.device).map(PathBuf::from),
            card_label: self.card_label,
            create_device: self.create_device,
            no_signal_fps: self.no_signal_fps,
            hold_last_frame: millis("hold_last_frame_ms", self.hold_last_frame_ms, 0, 60_000)?,
            key: parse_key(&self.key).map_err(|e| bad("key", e.to_string()))?,
            address_timeout: seconds("address_timeout_s", self.address_timeout_s, 1, 120)?,
            probe_timeout: seconds("probe_timeout_s", self.probe_timeout_s, 1, 30)?,
            scope_interfaces: scope_link_ids(&self.scope_interfaces)?,
            lease_wait: seconds("lease_wait_s", self.lease_wait_s, 1, 40)?,
        })
    }

    /// The bounds on button snapshots.
    fn snapshot_limits(&self) -> Result<SnapshotLimits, ConfigError> {
        let in_range = |key: &'static str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(bad(key, format!("{value} is outside {min}..={max}")))
            }
        };
        Ok(SnapshotLimits {
            min_interval: millis(
                "snapshot_min_interval_ms",
                self.snapshot_min_interval_ms,
                0,
                3_600_000,
            )?,
            max_files: in_range("snapshot_max_files", self.snapshot_max_files, 1, 1_000_000)?,
            max_bytes: in_range("snapshot_max_mib", self.snapshot_max_mib, 1, 1 << 20)? << 20,
            min_free_bytes: in_range(
                "snapshot_min_free_mib",
                self.snapshot_min_free_mib,
                0,
                1 << 20,
            )? << 20,
        })
    }

    /// The camera format; pass-through cannot rotate or mirror (it does not decode).
    fn camera_format(&self) -> Result<CameraFormat, ConfigError> {
        let format = self
            .format
            .parse::<CameraFormat>()
            .map_err(|reason| bad("format", reason))?;
        if format == CameraFormat::Mjpeg && (self.rotation != 0 || self.mirror) {
            return Err(bad(
                "format",
                "\"mjpeg\" passes the scope's pictures through undecoded, so it cannot \
                 apply `rotation` or `mirror`: use format = \"yuyv\" or drop them",
            ));
        }
        Ok(format)
    }

    /// Checks the camera keys: apps need an even width and a sane size.
    fn validate_camera(&self) -> Result<(), ConfigError> {
        if !(16..=4096).contains(&self.width) || self.width % 2 != 0 {
            return Err(bad(
                "width",
                format!("{} is not an even number in 16..=4096", self.width),
            ));
        }
        if !(16..=4096).contains(&self.height) || self.height % 2 != 0 {
            return Err(bad(
                "height",
                format!("{} is not an even number in 16..=4096", self.height),
            ));
        }
        if self.card_label.is_empty() || self.card_label.len() > 31 {
            return Err(bad(
                "card_label",
                "must be 1 to 31 bytes (v4l2loopback's limit)",
            ));
        }
        if !(1..=30).contains(&self.no_signal_fps) {
            return Err(bad(
                "no_signal_fps",
                format!("{} is outside 1..=30", self.no_signal_fps),
            ));
        }
        Ok(())
    }
}

/// `scope_interfaces`: each entry a MAC address or else an interface name.
fn scope_link_ids(entries: &[String]) -> Result<Vec<ScopeLinkId>, ConfigError> {
    entries
        .iter()
        .map(|entry| {
            if entry.is_empty() {
                return Err(bad("scope_interfaces", "an empty entry"));
            }
            if let Some(mac) = parse_mac(entry) {
                return Ok(ScopeLinkId::Mac(mac));
            }
            if entry.contains(':') {
                return Err(bad(
                    "scope_interfaces",
                    format!("'{entry}' is neither a MAC address (00:e0:4c:68:00:01) nor an interface name"),
                ));
            }
            validate_interface_name(entry)
                .map_err(|_| {
                    bad(
                        "scope_interfaces",
                        format!(
                            "'{entry}' is not a network interface name (at most 15 \
                             characters, no '/' or spaces) or a MAC address"
                        ),
                    )
                })
                .map(|()| ScopeLinkId::Name(entry.clone()))
        })
        .collect()
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Linux interface names are 1..=15 bytes without '/', whitespace or NUL.
fn validate_interface_name(name: &str) -> Result<(), ConfigError> {
    let ok =
        name.len() <= 15 && !name.contains(['/', '\0']) && !name.chars().any(char::is_whitespace);
    if ok {
        return Ok(());
    }
    // scopecam@scope-1.service started by hand: systemd reads '-' in a unit name as '/'.
    let hint = if name.contains('/') {
        "; a unit for an interface with '-' in its name is scopecam@$(systemd-escape IFACE).service"
    } else {
        ""
    };
    Err(bad(
        "interface",
        format!(
            "'{name}' is not a network interface name (at most 15 characters, no '/' or spaces){hint}"
        ),
    ))
}

impl Settings {
    /// Where button snapshots go: the configured directory, else systemd's
    /// `StateDirectory`, else the user's pictures folder, else the current directory.
    pub fn resolved_snapshot_dir(&self) -> PathBuf {
        if let Some(dir) = &self.snapshot_dir {
            return dir.clone();
        }
        if let Some(state) = std::env::var_os("STATE_DIRECTORY") {
            // systemd may pass several colon-separated directories; the first is ours.
            let first = state
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            if !first.is_empty() {
                return PathBuf::from(first).join("snapshots");
            }
        }
        if let Some(pictures) = std::env::var_os("XDG_PICTURES_DIR") {
            return PathBuf::from(pictures).join("Borescope");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join("Pictures").join("Borescope");
        }
        PathBuf::from("borescope-snapshots")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file_with(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn load_file(
        contents: &str,
        e: &[(&str, &str)],
        flags: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let f = file_with(contents);
        load(&ConfigFile::Explicit(f.path().to_owned()), &env(e), flags)
    }

    #[test]
    fn defaults_are_the_real_scope() {
        let s = load_file("", &[], &Overrides::default()).unwrap();
        assert_eq!(s.scope, Ipv4Addr::new(192, 168, 10, 123));
        assert_eq!((s.video_port, s.control_port), (8030, 50000));
        assert_eq!(s.output, SinkSpec::Null);
        assert_eq!(s.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(s.button_poll_interval, Duration::from_millis(100));
        assert_eq!(s.format, CameraFormat::Yuyv);
        assert_eq!(s.snapshot_limits, SnapshotLimits::default());
        assert_eq!(s.snapshot_limits.max_bytes, 512 << 20);
    }

    #[test]
    fn service_mode_defaults_to_the_camera_but_file_and_env_still_choose() {
        let service = |contents: &str, e: &[(&str, &str)]| {
            let f = file_with(contents);
            load_for(
                Mode::Service,
                &ConfigFile::Explicit(f.path().to_owned()),
                &env(e),
                &Overrides::default(),
            )
            .unwrap()
        };
        assert_eq!(service("", &[]).output, SinkSpec::V4l2(V4l2Target::Auto));
        assert_eq!(service("output = \"null\"\n", &[]).output, SinkSpec::Null);
        assert_eq!(
            service("", &[("SCOPECAM_OUTPUT", "null")]).output,
            SinkSpec::Null
        );
        let s = service("", &[]);
        assert_eq!(s.address_timeout, Duration::from_secs(20));
        assert_eq!(s.probe_timeout, Duration::from_secs(5));
        let plain = load_file("", &[], &Overrides::default()).unwrap();
        assert_eq!(plain.output, SinkSpec::Null, "`run` keeps its default");
    }

    #[test]
    fn mjpeg_camera_format_is_accepted() {
        let s = load_file("format = \"mjpeg\"\n", &[], &Overrides::default()).unwrap();
        assert_eq!(s.format, CameraFormat::Mjpeg);
        let e = [("SCOPECAM_FORMAT", "mjpeg")];
        let s = load_file("", &e, &Overrides::default()).unwrap();
        assert_eq!(s.format, CameraFormat::Mjpeg);
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let file = "scope = \"127.0.0.2\"\nvideo_port = 9000\ncontrol_port = 9001\n";
        let e = [
            ("SCOPECAM_VIDEO_PORT", "9100"),
            ("SCOPECAM_SCOPE", "127.0.0.3"),
        ];
        let s = load_file(file, &e, &Overrides::default()).unwrap();
        assert_eq!(s.scope, Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!((s.video_port, s.control_port), (9100, 9001));
        let flags = Overrides {
            scope: Some("127.0.0.4".into()),
            video_port: Some(9200),
            ..Default::default()
        };
        let s = load_file(file, &e, &flags).unwrap();
        assert_eq!(s.scope, Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(s.video_port, 9200);
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let err = load_file("vidoe_port = 1\n", &[], &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("vidoe_port"), "{err}");
    }

    #[test]
    fn unknown_env_variable_is_named_but_config_path_is_not_a_key() {
        let err = load_file("", &[("SCOPECAM_BOGUS", "1")], &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("SCOPECAM_BOGUS"), "{err}");
        load_file("", &[(CONFIG_PATH_ENV, "/x")], &Overrides::default()).unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        for (contents, key) in [
            ("video_port = 70000\n", "video_port"),
            ("video_port = \"abc\"\n", "video_port"),
            ("control_port = 0\n", "control_port"),
            ("scope = \"192.168.10\"\n", "scope"),
            ("output = \"png:/x\"\n", "output"),
            ("heartbeat_interval_ms = 0\n", "heartbeat_interval_ms"),
            ("interface = \"a/b\"\n", "interface"),
            ("log_level = \"loud\"\n", "log_level"),
            ("max_frame_bytes = 1\n", "max_frame_bytes"),
            ("width = 641\n", "width"),
            ("height = 0\n", "height"),
            ("rotation = 45\n", "rotation"),
            ("card_label = \"\"\n", "card_label"),
            ("key = \"camera\"\n", "key"),
            ("mirror = \"sometimes\"\n", "mirror"),
            ("format = \"h264\"\n", "format"),
            ("format = \"mjpeg\"\nrotation = 90\n", "format"),
            ("format = \"mjpeg\"\nmirror = true\n", "format"),
            ("address_timeout_s = 0\n", "address_timeout_s"),
            ("probe_timeout_s = 31\n", "probe_timeout_s"),
            ("snapshot_max_files = 0\n", "snapshot_max_files"),
            ("snapshot_max_mib = 0\n", "snapshot_max_mib"),
            ("snapshot_min_free_mib = -1\n", "snapshot_min_free_mib"),
            (
                "snapshot_min_interval_ms = 3600001\n",
                "snapshot_min_interval_ms",
            ),
            ("lease_wait_s = 0\n", "lease_wait_s"),
            ("lease_wait_s = 41\n", "lease_wait_s"),
            ("scope_interfaces = [\"a/b\"]\n", "scope_interfaces"),
            (
                "scope_interfaces = [\"00:e0:4c:68:00\"]\n",
                "scope_interfaces",
            ),
            ("scope_interfaces = [\"\"]\n", "scope_interfaces"),
            ("scope_interfaces = 5\n", "scope_interfaces"),
        ] {
            let err = load_file(contents, &[], &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(key), "{contents}: {err}");
        }
    }

    #[test]
    fn interface_names_with_dashes_are_fine_and_a_slash_hints_at_escaping() {
        for name in ["scope-1", "-odd-name", "enx00e04c680001"] {
            let settings = load_file(
                "",
                &[],
                &Overrides {
                    interface: Some(name.into()),
                    ..Overrides::default()
                },
            )
            .unwrap();
            assert_eq!(settings.interface.as_deref(), Some(name));
        }
        // What %I gives for the unescaped scopecam@scope-1.service.
        let err = load_file(
            "",
            &[],
            &Overrides {
                interface: Some("scope/1".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("systemd-escape"), "{err}");
        let err = load_file("interface = \"a b\"\n", &[], &Overrides::default()).unwrap_err();
        assert!(!err.to_string().contains("systemd-escape"), "{err}");
    }

    #[test]
    fn scope_interfaces_are_names_or_macs_from_the_file_or_the_environment() {
        let s = load_file(
            "scope_interfaces = [\"enx00e04c680001\", \"00:E0:4C:68:00:02\"]\n",
            &[],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            s.scope_interfaces,
            [
                ScopeLinkId::Name("enx00e04c680001".into()),
                ScopeLinkId::Mac([0x00, 0xe0, 0x4c, 0x68, 0x00, 0x02]),
            ]
        );
        assert_eq!(s.scope_interfaces[1].to_string(), "00:e0:4c:68:00:02");
        let e = [("SCOPECAM_SCOPE_INTERFACES", "lo, enx1,00-e0-4c-68-00-03")];
        let s = load_file("", &e, &Overrides::default()).unwrap();
        assert_eq!(
            s.scope_interfaces,
            [
                ScopeLinkId::Name("lo".into()),
                ScopeLinkId::Name("enx1".into()),
                ScopeLinkId::Mac([0x00, 0xe0, 0x4c, 0x68, 0x00, 0x03]),
            ]
        );
        let s = load_file("", &[], &Overrides::default()).unwrap();
        assert!(
            s.scope_interfaces.is_empty(),
            "no link is a scope by default"
        );
        assert_eq!(s.lease_wait, Duration::from_secs(15));
    }

    #[test]
    fn macs_parse_strictly_and_match_only_their_link() {
        assert_eq!(
            parse_mac("00:e0:4c:68:00:01\n"),
            Some([0, 0xe0, 0x4c, 0x68, 0, 1])
        );
        for bad in [
            "",
            "00:e0:4c:68:00",
            "00:e0:4c:68:00:01:02",
            "0:e0:4c:68:00:01",
            "zz:e0:4c:68:00:01",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        let mac = ScopeLinkId::Mac([0, 0xe0, 0x4c, 0x68, 0, 1]);
        assert!(mac.matches("enxanything", Some([0, 0xe0, 0x4c, 0x68, 0, 1])));
        assert!(!mac.matches("enxanything", Some([0, 0xe0, 0x4c, 0x68, 0, 2])));
        assert!(!mac.matches("enxanything", None));
        let name = ScopeLinkId::Name("enx1".into());
        assert!(name.matches("enx1", None));
        assert!(!name.matches("enx10", None));
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        let err = load(
            &ConfigFile::Explicit("/nonexistent/scopecam.toml".into()),
            &HashMap::new(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/scopecam.toml"),
            "{err}"
        );
    }

    #[test]
    fn shipped_example_documents_every_key_with_its_default() {
        let example = include_str!("../packaging/config.toml");
        // Settings are shown commented out as `# key = default`.
        let uncommented: String = example
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .collect::<Vec<_>>()
            .join("\n");
        let documented: Vec<&str> = uncommented
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .collect();
        let every_key = known_keys();
        assert!(every_key.len() > 20);
        for key in &every_key {
            assert!(
                documented.contains(&key.as_str()),
                "example config lacks `{key}`"
            );
        }
        assert_eq!(
            load_file(&uncommented, &[], &Overrides::default()).unwrap(),
            load_file("", &[], &Overrides::default()).unwrap(),
            "the example's values must be the built-in defaults"
        );
    }
}

#[cfg(test)]
mod env_values {
    use super::*;

    #[test]
    fn env_strings_stay_strings_and_numbers_and_booleans_still_convert() {
        let env: HashMap<String, String> = [
            ("SCOPECAM_SNAPSHOT_DIR", "00100"),
            ("SCOPECAM_CARD_LABEL", "007"),
            ("SCOPECAM_VIDEO_PORT", "8031"),
            ("SCOPECAM_MIRROR", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = load(
            &ConfigFile::Explicit("/dev/null".into()),
            &env,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.snapshot_dir, Some(PathBuf::from("00100")));
        assert_eq!(s.card_label, "007");
        assert_eq!(s.video_port, 8031);
        assert!(s.mirror);
    }
}
