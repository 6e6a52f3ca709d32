//! Where frames go: one [`Sink`] trait for every output.
//!
//! A sink is opened once at startup from a [`SinkSpec`] (parsed from the command line,
//! e.g. `y4m:-`), then gets every frame as an [`OutFrame`]: the original JPEG bytes and,
//! when the sink asked for it with [`Sink::needs_yuyv`] or [`Sink::needs_planar`], the
//! decoded picture, packed YUYV or planar 4:2:2. The pipeline skips decoding when no sink
//! needs a picture. The v4l2loopback sink (`v4l2`) has a
//! fixed geometry from startup ([`Sink::fixed_geometry`]): the pipeline scales to it.
//! With `format = "mjpeg"` it takes the scope's JPEGs as they are instead (it does not
//! need YUYV): the pipeline then decodes nothing and gives it idle frames as JPEG too.

mod mjpeg;
mod null;
pub mod v4l2;
mod y4m;

pub use mjpeg::MjpegSink;
pub use null::NullSink;
pub use v4l2::{V4l2Error, V4l2Sink};
pub use y4m::Y4mSink;

use crate::picture::decode::{Planar422Frame, YuyvFrame};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// What one frame offers a sink.
#[derive(Debug, Clone, Copy)]
pub struct OutFrame<'a> {
    /// The frame exactly as the scope sent it.
    pub jpeg: &'a [u8],
    /// The decoded picture; `None` when no sink needs it (or decoding was skipped).
    pub yuyv: Option<&'a YuyvFrame>,
    /// The decoded picture as planes, for sinks that ask with [`Sink::needs_planar`].
    pub planar: Option<&'a Planar422Frame>,
}

/// One output of the bridge.
pub trait Sink: Send {
    /// Human-readable target for logs, e.g. "y4m to stdout", "mjpeg to /tmp/x.mjpeg".
    fn describe(&self) -> String;
    /// Whether this sink needs decoded YUYV (false = the pipeline may skip decoding).
    fn needs_yuyv(&self) -> bool;
    /// Whether this sink takes the decoded picture as planar 4:2:2 instead (a stream
    /// output: cameras, which have a fixed geometry, get YUYV).
    fn needs_planar(&self) -> bool {
        false
    }
    /// Write one frame. [`SinkError::GeometryChanged`] and [`SinkError::MissingPicture`]
    /// concern this frame only: the sink stays usable. [`SinkError::Closed`] means stop.
    fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError>;
    fn flush(&mut self) -> Result<(), SinkError>;
    /// The size every frame must have, fixed at open (`None`: the sink follows the
    /// stream). A sink with a fixed size is a camera: the pipeline scales/letterboxes
    /// to it and keeps writing "no signal" frames while the scope is silent, because
    /// apps give up on a camera that stops delivering.
    fn fixed_geometry(&self) -> Option<(u32, u32)> {
        None
    }
    /// The device node apps open (cameras only), for `scopecam status` to count readers.
    fn device(&self) -> Option<&Path> {
        None
    }
}

/// Where a file-like sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputPath {
    /// `-` on the command line.
    Stdout,
    File(PathBuf),
}

/// Which v4l2loopback device the camera output writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V4l2Target {
    /// `v4l2`: the device labelled `card_label`, created at start when allowed.
    Auto,
    /// `v4l2:/dev/videoN`.
    Device(PathBuf),
}

/// An output as given on the command line: `y4m:PATH`, `mjpeg:PATH`, `v4l2[:DEVICE]` or
/// `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    Y4m(OutputPath),
    Mjpeg(OutputPath),
    V4l2(V4l2Target),
    Null,
}

/// The pixel format of the camera (v4l2) output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CameraFormat {
    /// Decoded, framed to the output size, limited-range YUYV: what every app accepts.
    #[default]
    Yuyv,
    /// The scope's JPEGs as they come (no decoding, scaling or rotation): frames must
    /// already have the output size. For apps that read MJPEG (ffmpeg, OBS, Chrome).
    Mjpeg,
}

impl FromStr for CameraFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yuyv" => Ok(CameraFormat::Yuyv),
            "mjpeg" => Ok(CameraFormat::Mjpeg),
            other => Err(format!("'{other}' is not \"yuyv\" or \"mjpeg\"")),
        }
    }
}

impl fmt::Display for CameraFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CameraFormat::Yuyv => "YUYV",
            CameraFormat::Mjpeg => "MJPEG",
        })
    }
}

/// Settings shared by all sinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkOptions {
    /// Frame rate written into the y4m header (the scope does not announce one). Default 30.
    pub fps_hint: u32,
    /// Camera (v4l2) size apps see, whatever the scope sends. Default 1280x720.
    pub width: u32,
    pub height: u32,
    /// Camera frame rate announced with S_PARM. Default 30.
    pub fps: u32,
    /// Label of the loopback device to find (or create) for `v4l2`. Default "Borescope".
    pub card_label: String,
    /// Whether `v4l2` may create its device through v4l2loopback 0.13+'s control node.
    pub create_device: bool,
    /// Pixel format of the camera (v4l2) output; other outputs ignore it. Default YUYV.
    pub format: CameraFormat,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            fps_hint: 30,
            width: 1280,
            height: 720,
            fps: 30,
            card_label: "Borescope".to_owned(),
            create_device: true,
            format: CameraFormat::Yuyv,
        }
    }
}

/// An output string that is not one of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkSpecError {
    #[error(
        "unknown output '{0}': expected v4l2, v4l2:/dev/videoN, y4m:PATH, mjpeg:PATH or null \
         ('-' is stdout)"
    )]
    Unknown(String),
    #[error("output '{0}' has no path: give a file name, or '-' for stdout (e.g. '{0}-')")]
    MissingPath(String),
    #[error(
        "output 'v4l2:{0}' does not name a device node: use v4l2:/dev/videoN, or plain v4l2 \
         to find the device by its label"
    )]
    BadV4l2Device(String),
}

/// Why a sink could not take a frame.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot create output file {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write to {target}: {source}")]
    Io { target: String, source: io::Error },
    /// The reader went away (EPIPE, e.g. `ffplay` was closed): stop cleanly.
    #[error("{target}: the reader closed the stream")]
    Closed { target: String },
    /// A stream's geometry is fixed by its first frame; this frame was skipped.
    #[error(
        "{target}: frame is {width}x{height} but the stream was started at \
         {stream_width}x{stream_height} and cannot change size; frame skipped"
    )]
    GeometryChanged {
        target: String,
        width: u32,
        height: u32,
        stream_width: u32,
        stream_height: u32,
    },
    /// A JPEG for the MJPEG camera that is not the camera's size (nothing scales it).
    #[error(
        "{target}: frame is {width}x{height} but the MJPEG camera is {camera_width}x\
         {camera_height} and passes frames through unscaled; frame skipped (use \
         format = \"yuyv\" to scale)"
    )]
    WrongJpegSize {
        target: String,
        width: u32,
        height: u32,
        camera_width: u32,
        camera_height: u32,
    },
    /// A frame for the MJPEG camera whose header gives no picture size.
    #[error("{target}: frame has no readable JPEG frame header; frame skipped")]
    UnreadableJpeg { target: String },
    /// A JPEG larger than the camera's buffer (the driver would cut it off).
    #[error(
        "{target}: JPEG of {len} bytes exceeds the camera's {limit}-byte buffer; frame skipped"
    )]
    FrameTooLarge {
        target: String,
        len: usize,
        limit: usize,
    },
    /// The pipeline did not decode a frame for a sink that needs a picture (a pipeline bug).
    #[error("{target} needs a decoded picture but the frame came without it; frame skipped")]
    MissingPicture { target: String },
    /// A decoded frame whose buffer does not match its stated size (a decoder bug).
    #[error("{target}: decoded frame of {width}x{height} has {len} bytes instead of {expected}")]
    BadFrame {
        target: String,
        width: u32,
        height: u32,
        len: usize,
        expected: usize,
    },
    /// The camera output could not be opened (the message says how to fix it).
    #[error(transparent)]
    V4l2(#[from] V4l2Error),
}

impl SinkError {
    /// Whether only this frame was refused and the sink stays usable (the
    /// pipeline counts it and goes on), as opposed to the output failing.
    pub fn concerns_one_frame(&self) -> bool {
        matches!(
            self,
            SinkError::GeometryChanged { .. }
                | SinkError::WrongJpegSize { .. }
                | SinkError::UnreadableJpeg { .. }
                | SinkError::FrameTooLarge { .. }
                | SinkError::MissingPicture { .. }
                | SinkError::BadFrame { .. }
        )
    }

    /// Maps a write error, telling a vanished reader (EPIPE) apart from real failures.
    pub(crate) fn from_write(target: &str, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::BrokenPipe {
            SinkError::Closed {
                target: target.to_owned(),
            }
        } else {
            SinkError::Io {
                target: target.to_owned(),
                source,
            }
        }
    }
}

fn parse_path(kind: &str, rest: &str) -> Result<OutputPath, SinkSpecError> {
    match rest {
        "" => Err(SinkSpecError::MissingPath(format!("{kind}:"))),
        "-" => Ok(OutputPath::Stdout),
        path => Ok(OutputPath::File(PathBuf::from(path))),
    }
}

/// `/dev/video3` (any absolute path: udev symlinks like /dev/v4l/by-id/... work too).
fn parse_v4l2_device(device: &str) -> Result<V4l2Target, SinkSpecError> {
    if device.starts_with('/') && device.len() > 1 {
        Ok(V4l2Target::Device(PathBuf::from(device)))
    } else {
        Err(SinkSpecError::BadV4l2Device(device.to_owned()))
    }
}

impl FromStr for SinkSpec {
    type Err = SinkSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "null" {
            return Ok(SinkSpec::Null);
        }
        if s == "v4l2" {
            return Ok(SinkSpec::V4l2(V4l2Target::Auto));
        }
        if let Some(device) = s.strip_prefix("v4l2:") {
            return parse_v4l2_device(device).map(SinkSpec::V4l2);
        }
        match s.split_once(':') {
            Some(("y4m", rest)) => parse_path("y4m", rest).map(SinkSpec::Y4m),
            Some(("mjpeg", rest)) => parse_path("mjpeg", rest).map(SinkSpec::Mjpeg),
            _ => Err(SinkSpecError::Unknown(s.to_owned())),
        }
    }
}

impl fmt::Display for OutputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputPath::Stdout => f.write_str("-"),
            OutputPath::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::Y4m(path) => write!(f, "y4m:{path}"),
            SinkSpec::Mjpeg(path) => write!(f, "mjpeg:{path}"),
            SinkSpec::V4l2(V4l2Target::Auto) => f.write_str("v4l2"),
            SinkSpec::V4l2(V4l2Target::Device(path)) => write!(f, "v4l2:{}", path.display()),
            SinkSpec::Null => f.write_str("null"),
        }
    }
}

impl OutputPath {
    /// "stdout" or the file name, for [`Sink::describe`] and errors.
    fn describe(&self) -> String {
        match self {
            OutputPath::Stdout => "stdout".to_owned(),
            OutputPath::File(path) => path.display().to_string(),
        }
    }

    /// Opens the target, buffered. Stdout is not locked for the sink's lifetime because
    /// a lock guard is not `Send`; the sinks write a whole frame and flush, so frames
    /// still reach the pipe in one piece, promptly (`| ffplay -` stays live).
    fn open(&self) -> Result<Box<dyn Write + Send>, SinkError> {
        match self {
            OutputPath::Stdout => Ok(Box::new(BufWriter::new(io::stdout()))),
            OutputPath::File(path) => Ok(Box::new(BufWriter::new(create_file(path)?))),
        }
    }
}

fn create_file(path: &Path) -> Result<File, SinkError> {
    File::create(path).map_err(|source| SinkError::Create {
        path: path.to_owned(),
        source,
    })
}

/// Opens the output a spec names; files are created or truncated now, and the camera's
/// format is set now, so a bad target fails at startup rather than on the first frame.
pub fn open(spec: &SinkSpec, options: &SinkOptions) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match spec {
        SinkSpec::Y4m(path) => Box::new(Y4mSink::new(
            path.open()?,
            format!("y4m to {}", path.describe()),
            options,
        )),
        SinkSpec::Mjpeg(path) => Box::new(MjpegSink::new(
            path.open()?,
            format!("mjpeg to {}", path.describe()),
        )),
        SinkSpec::V4l2(target) => Box::new(V4l2Sink::open(target, options)?),
        SinkSpec::Null => Box::new(NullSink),
    })
}

#[cfg(test)]
mod tests;
