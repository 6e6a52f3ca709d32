//! The camera output: a v4l2loopback device that apps (browsers, Zoom, OBS, Cheese) see
//! as an ordinary webcam.
//!
//! What apps accept (see the module notes below):
//! YUYV at one fixed, even size, limited-range BT.601, written at a steady rate with plain
//! `write()` of whole frames on one long-lived fd. The format is set before the first
//! scope frame, so consumers that start early already see the right size.
//!
//! The `v4l` crate opens the node and does QUERYCAP and S_PARM. Its `Format` type has no
//! `ycbcr_enc` field (it would send 0 = "default"), so S_FMT and STREAMON/OFF use the
//! crate's raw ioctl layer with the full kernel structs. The v4l2loopback control device
//! (create/remove) is outside the V4L2 API and goes through `nix` (see `control.rs`).

mod control;
mod discover;

pub use control::{CONTROL_DEVICE, CreateError, CreatedDevice, LoopbackConfig};
pub use discover::{DeviceTree, LoopbackVersion, VideoNode};

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{debug, info, warn};
use v4l::capability::Flags as CapFlags;
use v4l::device::Device;
use v4l::v4l_sys;
use v4l::video::Output;

use super::{CameraFormat, OutFrame, Sink, SinkError, SinkOptions, V4l2Target};

/// The driver name QUERYCAP reports for v4l2loopback nodes.
pub const LOOPBACK_DRIVER: &str = "v4l2 loopback";

/// YUYV ('YUYV' little-endian fourcc).
pub const PIX_FMT_YUYV: u32 = u32::from_le_bytes(*b"YUYV");
/// Motion-JPEG ('MJPG'): each frame one whole JPEG.
pub const PIX_FMT_MJPEG: u32 = u32::from_le_bytes(*b"MJPG");

/// The fourcc of a camera format.
pub fn fourcc(format: CameraFormat) -> u32 {
    match format {
        CameraFormat::Yuyv => PIX_FMT_YUYV,
        CameraFormat::Mjpeg => PIX_FMT_MJPEG,
    }
}

/// Buffer size announced for MJPEG: a JPEG of a camera picture stays well below two
/// bytes a pixel (the YUYV size), even at top quality.
pub fn mjpeg_buffer_size(width: u32, height: u32) -> u32 {
    width.saturating_mul(height).saturating_mul(2)
}

/// The OUTPUT format for `format`: YUYV as [`output_format`], or MJPEG at the same size.
pub fn output_format_for(format: CameraFormat, width: u32, height: u32) -> v4l_sys::v4l2_format {
    let mut out = output_format(width, height);
    if format == CameraFormat::Mjpeg {
        // SAFETY: output_format fills the `pix` member.
        let mut pix = unsafe { out.fmt.pix };
        pix.pixelformat = PIX_FMT_MJPEG;
        pix.bytesperline = 0;
        pix.sizeimage = mjpeg_buffer_size(width, height);
        pix.colorspace = v4l_sys::v4l2_colorspace_V4L2_COLORSPACE_JPEG;
        pix.__bindgen_anon_1.ycbcr_enc = v4l_sys::v4l2_ycbcr_encoding_V4L2_YCBCR_ENC_DEFAULT;
        pix.quantization = v4l_sys::v4l2_quantization_V4L2_QUANTIZATION_DEFAULT;
        pix.xfer_func = v4l_sys::v4l2_xfer_func_V4L2_XFER_FUNC_DEFAULT;
        out.fmt.pix = pix;
    }
    out
}

/// How to make a loopback device appear, for error messages.
fn modprobe_hint(label: &str) -> String {
    format!(
        "load the module with `sudo modprobe v4l2loopback exclusive_caps=1 card_label={label}` \
         (Debian/Ubuntu: `sudo apt install v4l2loopback-dkms`; Fedora: RPM Fusion's \
         v4l2loopback), or name a device with --output v4l2:/dev/videoN"
    )
}

/// Why the camera output could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    #[error(
        "v4l2loopback is not loaded (no /sys/module/v4l2loopback): {}",
        modprobe_hint(label)
    )]
    ModuleMissing { label: String },
    #[error("no v4l2loopback device labelled '{label}': {}", modprobe_hint(label))]
    NoLabelledDevice { label: String },
    #[error(
        "cannot open {}: {source}{}",
        path.display(),
        access_hint(source)
    )]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "{} is not a v4l2loopback device (driver '{driver}'): pick the loopback node \
         (`v4l2-ctl --list-devices`) or use --output v4l2 to find it by its label",
        path.display()
    )]
    NotLoopback { path: PathBuf, driver: String },
    #[error(
        "{} is already in use by another producer (it only offers capture): stop that \
         program, or use another loopback device",
        path.display()
    )]
    Busy { path: PathBuf },
    #[error(
        "{} accepts no writer: v4l2loopback 0.12 left it capture-less after an earlier \
         producer; reload the module (`sudo modprobe -r v4l2loopback && sudo modprobe \
         v4l2loopback exclusive_caps=1 card_label=...`) or upgrade to v4l2loopback 0.13+",
        path.display()
    )]
    Stuck { path: PathBuf },
    #[error("{}: {step} failed: {source}", path.display())]
    Setup {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error(
        "{} refused {width}x{height} {format} (it offers {got_width}x{got_height} '{got_fourcc}'): \
         another producer may have fixed the format, or the device's max_width/max_height \
         are too small",
        path.display()
    )]
    FormatRefused {
        path: PathBuf,
        width: u32,
        height: u32,
        format: CameraFormat,
        got_width: u32,
        got_height: u32,
        got_fourcc: String,
    },
}

fn access_hint(source: &io::Error) -> &'static str {
    match source.kind() {
        io::ErrorKind::PermissionDenied => {
            " (add the user to the 'video' group: `sudo usermod -aG video $USER`, then log in again)"
        }
        io::ErrorKind::NotFound => " (no such device: check `v4l2-ctl --list-devices`)",
        _ => "",
    }
}

/// The OUTPUT format apps expect for YUYV: fixed size, progressive, limited-range BT.601.
pub fn output_format(width: u32, height: u32) -> v4l_sys::v4l2_format {
    // SAFETY: v4l2_format is a plain C struct/union for which all-zero bytes are valid.
    let mut format: v4l_sys::v4l2_format = unsafe { std::mem::zeroed() };
    format.type_ = v4l_sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT;
    let pix = v4l_sys::v4l2_pix_format {
        width,
        height,
        pixelformat: PIX_FMT_YUYV,
        field: v4l_sys::v4l2_field_V4L2_FIELD_NONE,
        bytesperline: 2 * width,
        sizeimage: 2 * width * height,
        colorspace: v4l_sys::v4l2_colorspace_V4L2_COLORSPACE_SMPTE170M,
        __bindgen_anon_1: v4l_sys::v4l2_pix_format__bindgen_ty_1 {
            ycbcr_enc: v4l_sys::v4l2_ycbcr_encoding_V4L2_YCBCR_ENC_601,
        },
        quantization: v4l_sys::v4l2_quantization_V4L2_QUANTIZATION_LIM_RANGE,
        xfer_func: v4l_sys::v4l2_xfer_func_V4L2_XFER_FUNC_709,
        // SAFETY: as above; the remaining fields (priv, flags) are zero.
        ..unsafe { std::mem::zeroed() }
    };
    format.fmt.pix = pix;
    format
}

fn fourcc_text(code: u32) -> String {
    String::from_utf8_lossy(&code.to_le_bytes()).into_owned()
}

/// Raw V4L2 ioctl on the device's fd, through the `v4l` crate's ioctl layer.
fn raw_ioctl<T>(
    device: &Device,
    request: v4l::v4l2::vidioc::_IOC_TYPE,
    arg: &mut T,
) -> io::Result<()> {
    // SAFETY: `arg` is the kernel struct `request` is defined for, and lives across the call.
    unsafe {
        v4l::v4l2::ioctl(
            device.handle().fd(),
            request,
            arg as *mut T as *mut std::os::raw::c_void,
        )
    }
}

fn set_stream(device: &Device, on: bool) -> io::Result<()> {
    let mut buf_type = v4l_sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT as std::os::raw::c_int;
    let request = if on {
        v4l::v4l2::vidioc::VIDIOC_STREAMON
    } else {
        v4l::v4l2::vidioc::VIDIOC_STREAMOFF
    };
    raw_ioctl(device, request, &mut buf_type)
}

/// What QUERYCAP says about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeCaps {
    driver: String,
    output: bool,
    capture: bool,
}

fn query_caps(device: &Device, path: &Path) -> Result<NodeCaps, V4l2Error> {
    let caps = device.query_caps().map_err(|source| V4l2Error::Setup {
        path: path.to_owned(),
        step: "VIDIOC_QUERYCAP",
        source,
    })?;
    Ok(NodeCaps {
        driver: caps.driver,
        output: caps.capabilities.contains(CapFlags::VIDEO_OUTPUT),
        capture: caps.capabilities.contains(CapFlags::VIDEO_CAPTURE),
    })
}

/// Whether `path` offers only capture now: with exclusive caps, that is a loopback
/// node some producer feeds. Opening and QUERYCAP do not make this process a reader.
pub fn fed_by_a_producer(path: &Path) -> bool {
    open_node(path)
        .and_then(|device| query_caps(&device, path))
        .is_ok_and(|caps| node_state(&caps) == NodeState::HeldByProducer)
}

fn open_node(path: &Path) -> Result<Device, V4l2Error> {
    Device::with_path(path).map_err(|source| V4l2Error::Open {
        path: path.to_owned(),
        source,
    })
}

/// How long a node just created may stay unopenable while udev sets its group. Seen:
/// 3-4 s on a busy machine where udev works through a queue of events (a second scope
/// plugged in while the first streams); systemd's watchdog only runs after READY=1.
const NEW_NODE_WAIT: Duration = Duration::from_secs(10);
const NEW_NODE_POLL: Duration = Duration::from_millis(100);

/// A node just created through the control device appears at once in devtmpfs, but udev
/// may still be fixing its group; retry for up to [`NEW_NODE_WAIT`] on "missing" or
/// "denied".
fn open_new_node(path: &Path) -> Result<Device, V4l2Error> {
    let max_attempts = NEW_NODE_WAIT.as_millis() / NEW_NODE_POLL.as_millis();
    let mut attempts = 0;
    loop {
        match open_node(path) {
            Err(V4l2Error::Open { source, .. })
                if attempts < max_attempts
                    && matches!(
                        source.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                    ) =>
            {
                attempts += 1;
                std::thread::sleep(NEW_NODE_POLL);
            }
            other => return other,
        }
    }
}

/// What to do with a loopback node, judged from its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    /// Offers OUTPUT: ready for us.
    Writable,
    /// Only CAPTURE: another producer is attached (exclusive caps).
    HeldByProducer,
    /// Neither: a 0.12 node left behind by a producer that never called STREAMON.
    Stuck,
}

fn node_state(caps: &NodeCaps) -> NodeState {
    match (caps.output, caps.capture) {
        (true, _) => NodeState::Writable,
        (false, true) => NodeState::HeldByProducer,
        (false, false) => NodeState::Stuck,
    }
}

/// Opens a loopback node for writing, checking it is one and that it takes a writer.
///
/// v4l2loopback 0.12 marks an fd as the writer only on STREAMON; a producer that just
/// writes (like ours before this fix, or ffmpeg) leaves the node without OUTPUT caps when
/// it closes, and nobody can write to it until the module is reloaded. As OBS does
/// (obs-studio PR #11906), such a node is reset by STREAMON + STREAMOFF on a fresh fd
/// and a close, then reopened.
fn open_writable(path: &Path, freshly_created: bool) -> Result<Device, V4l2Error> {
    let device = if freshly_created {
        open_new_node(path)?
    } else {
        open_node(path)?
    };
    let caps = query_caps(&device, path)?;
    if caps.driver != LOOPBACK_DRIVER {
        return Err(V4l2Error::NotLoopback {
            path: path.to_owned(),
            driver: caps.driver,
        });
    }
    match node_state(&caps) {
        NodeState::Writable => Ok(device),
        NodeState::HeldByProducer => Err(V4l2Error::Busy {
            path: path.to_owned(),
        }),
        NodeState::Stuck => {
            warn!(path = %path.display(), "loopback node lost its output side; resetting it");
            let reset = set_stream(&device, true).and_then(|()| set_stream(&device, false));
            if let Err(e) = reset {
                debug!("STREAMON/STREAMOFF reset failed: {e}");
            }
            drop(device);
            let device = open_node(path)?;
            if query_caps(&device, path)?.output {
                Ok(device)
            } else {
                Err(V4l2Error::Stuck {
                    path: path.to_owned(),
                })
            }
        }
    }
}

/// S_FMT with the full struct, then a check that the driver kept our size and fourcc.
/// Returns the buffer size the driver settled on (the largest frame it takes whole).
fn set_output_format(
    device: &Device,
    path: &Path,
    pixels: CameraFormat,
    width: u32,
    height: u32,
) -> Result<usize, V4l2Error> {
    let mut format = output_format_for(pixels, width, height);
    raw_ioctl(device, v4l::v4l2::vidioc::VIDIOC_S_FMT, &mut format).map_err(|source| {
        V4l2Error::Setup {
            path: path.to_owned(),
            step: match pixels {
                CameraFormat::Yuyv => "VIDIOC_S_FMT (YUYV output format)",
                CameraFormat::Mjpeg => "VIDIOC_S_FMT (MJPEG output format)",
            },
            source,
        }
    })?;
    // SAFETY: for an OUTPUT type the driver fills the `pix` member of the union.
    let got = unsafe { format.fmt.pix };
    if (got.width, got.height, got.pixelformat) != (width, height, fourcc(pixels)) {
        return Err(V4l2Error::FormatRefused {
            path: path.to_owned(),
            width,
            height,
            format: pixels,
            got_width: got.width,
            got_height: got.height,
            got_fourcc: fourcc_text(got.pixelformat),
        });
    }
    Ok(got.sizeimage as usize)
}

/// S_PARM: the frame rate consumers read with G_PARM. Not fatal: the picture still flows.
fn set_frame_rate(device: &Device, path: &Path, fps: u32) {
    let wanted = v4l::video::output::Parameters::with_fps(fps.max(1));
    match Output::set_params(device, &wanted) {
        Ok(got) => debug!(
            path = %path.display(),
            "frame interval {}/{}",
            got.interval.numerator,
            got.interval.denominator
        ),
        Err(e) => warn!(path = %path.display(), "cannot set {fps} fps (VIDIOC_S_PARM): {e}"),
    }
}

/// A v4l2loopback device fed YUYV frames of one fixed size.
pub struct V4l2Sink {
    // Field order matters: the device fd is closed before `created` removes the device
    // (REMOVE fails with EBUSY while any fd is open).
    device: Device,
    path: PathBuf,
    label: String,
    width: u32,
    height: u32,
    fps: u32,
    format: CameraFormat,
    /// Largest frame the driver takes whole (it cuts longer writes off).
    buffer_size: usize,
    /// STREAMON was issued (the 0.12 workaround), so STREAMOFF is due before close.
    streaming: bool,
    created: Option<CreatedDevice>,
}

impl V4l2Sink {
    /// Finds or creates the device `target` names and sets its format and rate.
    pub fn open(target: &V4l2Target, options: &SinkOptions) -> Result<Self, V4l2Error> {
        Self::open_in(&DeviceTree::default(), target, options)
    }

    /// [`V4l2Sink::open`] on the given sysfs and /dev roots.
    pub fn open_in(
        tree: &DeviceTree,
        target: &V4l2Target,
        options: &SinkOptions,
    ) -> Result<Self, V4l2Error> {
        let (device, path, created) = match target {
            V4l2Target::Device(path) => (open_writable(path, false)?, path.clone(), None),
            V4l2Target::Auto => find_or_create(tree, options)?,
        };
        let buffer_size = set_output_format(
            &device,
            &path,
            options.format,
            options.width,
            options.height,
        )?;
        set_frame_rate(&device, &path, options.fps);
        let streaming = LoopbackVersion::needs_streamon_workaround(tree.module_version())
            && start_stream_for_0_12(&device, &path);
        let label = node_label(tree, &path).unwrap_or_else(|| options.card_label.clone());
        info!(
            path = %path.display(), label = %label,
            "camera output {}x{} {} @{} fps", options.width, options.height, options.format,
            options.fps
        );
        Ok(V4l2Sink {
            device,
            path,
            label,
            width: options.width,
            height: options.height,
            fps: options.fps,
            format: options.format,
            buffer_size,
            streaming,
            created,
        })
    }

    /// The node frames go to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// On 0.12, STREAMON marks our fd as the writer, so that closing it gives the node its
/// OUTPUT caps back (otherwise the next start fails until a module reload). 0.14+ refuses
/// STREAMON without REQBUFS, and 0.13+ does not need it, so it is only tried on 0.12.
fn start_stream_for_0_12(device: &Device, path: &Path) -> bool {
    match set_stream(device, true) {
        Ok(()) => true,
        Err(e) => {
            debug!(path = %path.display(), "STREAMON (0.12 close workaround) failed: {e}");
            false
        }
    }
}

/// The card label sysfs shows for `/dev/videoN`, for logs.
fn node_label(tree: &DeviceTree, path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let text =
        std::fs::read_to_string(tree.sys.join("class/video4linux").join(name).join("name")).ok()?;
    Some(text.trim_end().to_owned())
}

/// `v4l2` without a path: the first usable device labelled `card_label`; failing that
/// (none, or every one held by another producer such as OBS's virtual camera, or left
/// stuck), a new one through the control device (0.13+) when allowed.
fn find_or_create(
    tree: &DeviceTree,
    options: &SinkOptions,
) -> Result<(Device, PathBuf, Option<CreatedDevice>), V4l2Error> {
    let label = &options.card_label;
    if !tree.module_loaded() {
        return Err(V4l2Error::ModuleMissing {
            label: label.clone(),
        });
    }
    let existing = tree.nodes_labelled(label);
    let mut last_error = None;
    for node in &existing {
        match open_writable(&node.path, false) {
            Ok(device) => return Ok((device, node.path.clone(), None)),
            Err(e) => {
                warn!("skipping {}: {e}", node.path.display());
                last_error = Some(e);
            }
        }
    }
    if options.create_device {
        if let Some(created) = try_create(tree, options) {
            let path = tree.video_node(created.number);
            let device = open_writable(&path, true)?;
            return Ok((device, path, Some(created)));
        }
        // Someone may have created it meanwhile (another instance, a udev rule).
        if existing.is_empty() {
            if let Some(node) = tree.nodes_labelled(label).first() {
                let device = open_writable(&node.path, false)?;
                return Ok((device, node.path.clone(), None));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| V4l2Error::NoLabelledDevice {
        label: label.clone(),
    }))
}

/// Creates a device with the control node; `None` (logged) when there is no control node
/// (0.12) or it refuses (no permission, old version).
fn try_create(tree: &DeviceTree, options: &SinkOptions) -> Option<CreatedDevice> {
    let control = tree.control_device()?;
    let config = LoopbackConfig::exclusive(&options.card_label, options.width, options.height);
    match CreatedDevice::create(&control, &config) {
        Ok(created) => Some(created),
        Err(e) => {
            warn!(
                "cannot create a v4l2loopback device through {}: {e}; looking for an existing one",
                control.display()
            );
            None
        }
    }
}

impl Sink for V4l2Sink {
    fn device(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn describe(&self) -> String {
        let origin = if self.created.is_some() {
            ", created by scopecam"
        } else {
            ""
        };
        format!(
            "v4l2loopback {} ('{}', {}x{} {} @{} fps{origin})",
            self.path.display(),
            self.label,
            self.width,
            self.height,
            self.format,
            self.fps
        )
    }

    /// MJPEG takes the scope's JPEGs as they are: nothing to decode.
    fn needs_yuyv(&self) -> bool {
        self.format == CameraFormat::Yuyv
    }

    fn fixed_geometry(&self) -> Option<(u32, u32)> {
        Some((self.width, self.height))
    }

    fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
        let target = || self.path.display().to_string();
        let bytes = match self.format {
            CameraFormat::Yuyv => {
                let yuyv = frame
                    .yuyv
                    .ok_or_else(|| SinkError::MissingPicture { target: target() })?;
                check_frame(&target(), yuyv, self.width, self.height)?;
                &yuyv.data[..]
            }
            CameraFormat::Mjpeg => {
                check_jpeg(
                    &target(),
                    frame.jpeg,
                    self.width,
                    self.height,
                    self.buffer_size,
                )?;
                frame.jpeg
            }
        };
        // One write() per frame: the driver takes each write as one whole frame, so a
        // short write must not be continued (the rest would become a bogus next frame).
        let written = self
            .device
            .write(bytes)
            .map_err(|e| SinkError::from_write(&target(), e))?;
        if written != bytes.len() {
            return Err(SinkError::Io {
                target: target(),
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {written} of {} bytes", bytes.len()),
                ),
            });
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A frame must have exactly the device's size and a consistent buffer.
fn check_frame(
    target: &str,
    yuyv: &crate::picture::decode::YuyvFrame,
    width: u32,
    height: u32,
) -> Result<(), SinkError> {
    if (yuyv.width, yuyv.height) != (width, height) {
        return Err(SinkError::GeometryChanged {
            target: target.to_owned(),
            width: yuyv.width,
            height: yuyv.height,
            stream_width: width,
            stream_height: height,
        });
    }
    let expected = width as usize * 2 * height as usize;
    if yuyv.data.len() != expected {
        return Err(SinkError::BadFrame {
            target: target.to_owned(),
            width,
            height,
            len: yuyv.data.len(),
            expected,
        });
    }
    Ok(())
}

/// A JPEG for the MJPEG camera must announce exactly the device's size (nothing scales
/// it) and fit the driver's buffer.
pub(crate) fn check_jpeg(
    target: &str,
    jpeg: &[u8],
    width: u32,
    height: u32,
    buffer_size: usize,
) -> Result<(), SinkError> {
    let Some((got_width, got_height)) = crate::jpeg::dimensions(jpeg) else {
        return Err(SinkError::UnreadableJpeg {
            target: target.to_owned(),
        });
    };
    if (got_width, got_height) != (width, height) {
        return Err(SinkError::WrongJpegSize {
            target: target.to_owned(),
            width: got_width,
            height: got_height,
            camera_width: width,
            camera_height: height,
        });
    }
    if jpeg.len() > buffer_size {
        return Err(SinkError::FrameTooLarge {
            target: target.to_owned(),
            len: jpeg.len(),
            limit: buffer_size,
        });
    }
    Ok(())
}

impl Drop for V4l2Sink {
    fn drop(&mut self) {
        if self.streaming {
            if let Err(e) = set_stream(&self.device, false) {
                debug!("STREAMOFF on {}: {e}", self.path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests;
