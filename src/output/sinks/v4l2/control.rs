//! The v4l2loopback control device (`/dev/v4l2loopback`, 0.13 and later): creates and
//! removes loopback devices at run time, so the service needs no module options.
//!
//! The `v4l` crate only knows the V4L2 API of video nodes, not this driver-private control
//! node, so these ioctls go through `nix` directly.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use tracing::{info, warn};

/// Where v4l2loopback 0.13+ puts its control node.
pub const CONTROL_DEVICE: &str = "/dev/v4l2loopback";

/// ADD, 0.15 number: `_IOW('~', 1, struct v4l2_loopback_config)`.
pub const CTL_ADD: u32 = 0x4048_7e01;
/// ADD, legacy number (0.13, still accepted by 0.15).
pub const CTL_ADD_LEGACY: u32 = 0x4C80;
/// REMOVE, 0.15 number: `_IOW('~', 2, __u32)`; the device number is passed by value.
pub const CTL_REMOVE: u32 = 0x4004_7e02;
/// REMOVE, legacy number (0.13).
pub const CTL_REMOVE_LEGACY: u32 = 0x4C81;

/// Buffers of each camera scopecam creates. v4l2loopback's default is 2, and a reader
/// cannot get more than the device has: PipeWire's camera node (GNOME Snapshot, Firefox's
/// camera portal, GStreamer's pipewiresrc) asks VIDIOC_REQBUFS for the count its client
/// negotiated, 16 for pipewiresrc, and fails the stream ("can't allocate enough buffers
/// 2 < 16") when it gets fewer. The driver allocates them once a writer sets the format:
/// 16 frames of kernel memory (9.4 MiB at 640x480, 28 MiB at 1280x720 YUYV).
pub const CAMERA_BUFFERS: i32 = 16;

/// Longest card label the driver keeps (32 bytes with the terminating NUL).
pub const MAX_LABEL_BYTES: usize = 31;

/// `struct v4l2_loopback_config`, stable from 0.13 to 0.15 (72 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopbackConfig {
    /// `/dev/video<output_nr>`; -1 lets the driver pick a free number.
    pub output_nr: i32,
    /// `capture_nr` in old headers; must be -1 or equal to `output_nr`.
    pub unused: i32,
    /// NUL-terminated name apps show.
    pub card_label: [u8; 32],
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
    /// <= 0: driver default (2).
    pub max_buffers: i32,
    /// <= 0: driver default.
    pub max_openers: i32,
    pub debug: i32,
    /// 0 = exclusive caps: the node announces only OUTPUT until a writer attaches, then
    /// only CAPTURE, which is what Chromium needs to list it as a camera.
    pub announce_all_caps: i32,
}

impl LoopbackConfig {
    /// A device with exclusive caps whose size limits admit `width` x `height`, numbered
    /// by the driver. A label longer than [`MAX_LABEL_BYTES`] is cut (config validation
    /// already refuses such labels).
    pub fn exclusive(label: &str, width: u32, height: u32) -> Self {
        let mut card_label = [0u8; 32];
        let bytes = label.as_bytes();
        let len = bytes.len().min(MAX_LABEL_BYTES);
        card_label[..len].copy_from_slice(&bytes[..len]);
        LoopbackConfig {
            output_nr: -1,
            unused: -1,
            card_label,
            min_width: 0,
            max_width: width,
            min_height: 0,
            max_height: height,
            max_buffers: CAMERA_BUFFERS,
            max_openers: -1,
            debug: 0,
            announce_all_caps: 0,
        }
    }
}

nix::ioctl_write_ptr_bad!(ctl_add, CTL_ADD, LoopbackConfig);
nix::ioctl_write_ptr_bad!(ctl_add_legacy, CTL_ADD_LEGACY, LoopbackConfig);
nix::ioctl_write_int_bad!(ctl_remove, CTL_REMOVE);
nix::ioctl_write_int_bad!(ctl_remove_legacy, CTL_REMOVE_LEGACY);

/// Runs the 0.15 form of an ioctl and, when the driver does not know that number
/// (0.13 answers ENOSYS, other paths ENOTTY), the legacy form.
fn with_legacy_fallback<T>(
    current: impl FnOnce() -> nix::Result<T>,
    legacy: impl FnOnce() -> nix::Result<T>,
) -> nix::Result<T> {
    match current() {
        Err(Errno::ENOSYS | Errno::ENOTTY) => legacy(),
        other => other,
    }
}

/// The module's `max_buffers` parameter (read-only after load).
const MODULE_MAX_BUFFERS: &str = "/sys/module/v4l2loopback/parameters/max_buffers";

/// The module's `max_buffers` parameter; the driver's default (2) when it cannot be read.
fn module_max_buffers(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&n: &i32| n > 0)
        .unwrap_or(2)
}

/// The config for 0.13's ADD (the legacy number). 0.13 checks VIDIOC_QUERYBUF's index
/// against the module's `max_buffers` parameter instead of the device's own count, so
/// a device with more buffers than that hands readers a count they cannot query (ffmpeg:
/// "ioctl(VIDIOC_QUERYBUF): Invalid argument"). There, the camera gets at most the
/// module's count; the package's modprobe hook loads the module with `max_buffers=16`.
fn legacy_config(config: &LoopbackConfig, module_max: i32) -> LoopbackConfig {
    let mut legacy = *config;
    if legacy.max_buffers > module_max {
        warn!(
            "v4l2loopback 0.13 allows cameras only as many buffers as its max_buffers \
             option ({module_max}); the camera gets {module_max}, and PipeWire apps need \
             {}: load the module with max_buffers={}",
            config.max_buffers, config.max_buffers
        );
        legacy.max_buffers = module_max;
    }
    legacy
}

/// An open control node.
pub struct ControlDevice {
    file: File,
    path: PathBuf,
}

impl ControlDevice {
    /// Opens the control node (root-only unless a udev rule hands it to a group).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).open(path)?;
        Ok(ControlDevice {
            file,
            path: path.to_owned(),
        })
    }

    /// Creates a device; returns its number N (`/dev/videoN`).
    pub fn add(&self, config: &LoopbackConfig) -> nix::Result<u32> {
        let fd = self.file.as_raw_fd();
        // SAFETY: both configs are valid `#[repr(C)]` structs of the size the driver copies.
        let nr = with_legacy_fallback(
            || unsafe { ctl_add(fd, config) },
            || {
                let legacy =
                    legacy_config(config, module_max_buffers(Path::new(MODULE_MAX_BUFFERS)));
                unsafe { ctl_add_legacy(fd, &legacy) }
            },
        )?;
        u32::try_from(nr).map_err(|_| Errno::EINVAL)
    }

    /// Removes device N; EBUSY while any fd on it is open.
    pub fn remove(&self, nr: u32) -> nix::Result<()> {
        let fd = self.file.as_raw_fd();
        let nr = i32::try_from(nr).map_err(|_| Errno::EINVAL)?;
        // SAFETY: the device number is passed by value; no memory is shared.
        with_legacy_fallback(
            || unsafe { ctl_remove(fd, nr) },
            || unsafe { ctl_remove_legacy(fd, nr) },
        )
        .map(drop)
    }
}

/// A device this process created; removed again when dropped, so a stopped service
/// leaves no stale camera in the apps' lists.
#[derive(Debug)]
pub struct CreatedDevice {
    pub number: u32,
    control_path: PathBuf,
}

impl CreatedDevice {
    /// Creates a device through the control node at `control_path`.
    pub fn create(control_path: &Path, config: &LoopbackConfig) -> Result<Self, CreateError> {
        let control = ControlDevice::open(control_path).map_err(CreateError::Open)?;
        let number = control.add(config).map_err(CreateError::Add)?;
        info!(device = number, control = %control.path.display(), "created v4l2loopback device");
        Ok(CreatedDevice {
            number,
            control_path: control_path.to_owned(),
        })
    }
}

/// Why a device could not be created (the caller falls back to an existing one).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("cannot open the control device: {0}")]
    Open(std::io::Error),
    #[error("the control device refused to create a device: {0}")]
    Add(Errno),
}

impl Drop for CreatedDevice {
    fn drop(&mut self) {
        let nr = self.number;
        let control = match ControlDevice::open(&self.control_path) {
            Ok(control) => control,
            Err(e) => {
                warn!(
                    "cannot reopen {} to remove /dev/video{nr}: {e}",
                    self.control_path.display()
                );
                return;
            }
        };
        match control.remove(nr) {
            Ok(()) => info!("removed /dev/video{nr}, the v4l2loopback device we created"),
            Err(Errno::EBUSY) => {
                warn!("an app still holds /dev/video{nr}: leaving the device in place")
            }
            Err(e) => warn!("cannot remove /dev/video{nr}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_struct_is_the_drivers_72_bytes() {
        assert_eq!(std::mem::size_of::<LoopbackConfig>(), 72);
        assert_eq!(std::mem::align_of::<LoopbackConfig>(), 4);
        assert_eq!(std::mem::offset_of!(LoopbackConfig, card_label), 8);
        assert_eq!(std::mem::offset_of!(LoopbackConfig, min_width), 40);
        assert_eq!(std::mem::offset_of!(LoopbackConfig, max_buffers), 56);
        assert_eq!(std::mem::offset_of!(LoopbackConfig, announce_all_caps), 68);
    }

    #[test]
    fn new_ioctl_numbers_are_the_encoded_iow_forms() {
        assert_eq!(
            u64::from(CTL_ADD),
            nix::request_code_write!(b'~', 1, std::mem::size_of::<LoopbackConfig>()) as u64
        );
        assert_eq!(
            u64::from(CTL_REMOVE),
            nix::request_code_write!(b'~', 2, std::mem::size_of::<u32>()) as u64
        );
    }

    #[test]
    fn exclusive_config_fits_the_size_and_lets_the_driver_pick() {
        let c = LoopbackConfig::exclusive("Borescope", 1280, 720);
        assert_eq!(&c.card_label[..10], b"Borescope\0");
        assert_eq!((c.output_nr, c.unused), (-1, -1));
        assert_eq!((c.max_width, c.max_height), (1280, 720));
        assert_eq!(c.announce_all_caps, 0);
        assert_eq!(
            c.max_buffers, CAMERA_BUFFERS,
            "enough for PipeWire's camera node"
        );
    }

    #[test]
    fn long_labels_keep_a_terminating_nul() {
        let c = LoopbackConfig::exclusive(&"x".repeat(40), 640, 480);
        assert_eq!(c.card_label[31], 0);
        assert_eq!(c.card_label[30], b'x');
    }

    #[test]
    fn falls_back_to_legacy_only_when_the_number_is_unknown() {
        for errno in [Errno::ENOSYS, Errno::ENOTTY] {
            assert_eq!(with_legacy_fallback(|| Err(errno), || Ok(7)), Ok(7));
        }
        assert_eq!(
            with_legacy_fallback(|| Err::<i32, _>(Errno::EPERM), || Ok(7)),
            Err(Errno::EPERM)
        );
        assert_eq!(with_legacy_fallback(|| Ok(3), || Ok(7)), Ok(3));
    }

    #[test]
    fn on_0_13_a_camera_gets_at_most_the_modules_buffer_count() {
        let config = LoopbackConfig::exclusive("Borescope", 640, 480);
        assert_eq!(legacy_config(&config, 2).max_buffers, 2);
        assert_eq!(legacy_config(&config, 16).max_buffers, CAMERA_BUFFERS);
        assert_eq!(legacy_config(&config, 32).max_buffers, CAMERA_BUFFERS);
        let dir = tempfile::tempdir().unwrap();
        let param = dir.path().join("max_buffers");
        assert_eq!(
            module_max_buffers(&param),
            2,
            "unreadable: the driver's default"
        );
        std::fs::write(&param, "16\n").unwrap();
        assert_eq!(module_max_buffers(&param), 16);
        std::fs::write(&param, "junk").unwrap();
        assert_eq!(module_max_buffers(&param), 2);
    }
}
