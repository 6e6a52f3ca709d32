//! Stands in for OBS Studio's virtual camera on Linux, for the side-by-side VM test
//! (`tests/vm/system/obs-side-by-side.sh`): the same choice of device, step by step as
//! obs-studio's `plugins/linux-v4l2/v4l2-output.c` makes it, then frames until killed.
//!
//! 1. If v4l2loopback is not in /proc/modules: `modprobe v4l2loopback exclusive_caps=1
//!    card_label='OBS Virtual Camera'` (OBS runs it through pkexec).
//! 2. Every /dev/video* in version order; the first one that works wins:
//!    open O_RDWR, QUERYCAP; a node whose device caps lack VIDEO_OUTPUT gets OBS's "caps
//!    workaround" (G_FMT, S_FMT, STREAMON, STREAMOFF on the output type, close, reopen,
//!    QUERYCAP again) and is skipped if that fails; then G_FMT, S_PARM, S_FMT YUYV, and
//!    STREAMON when the workaround was used.
//! 3. Writes grey YUYV frames at 10 fps; prints `took /dev/videoN` once it has one.
//!
//! Usage: `obs_virtualcam [WIDTH HEIGHT]` (default 320 240). Exit 1 when no device
//! takes it ("Failed to start virtual camera" in OBS).

use std::io::Write;
use std::os::raw::c_void;
use std::time::Duration;

use v4l::capability::Flags;
use v4l::device::Device;
use v4l::v4l_sys;
use v4l::v4l2::vidioc;

fn ioctl<T>(device: &Device, request: vidioc::_IOC_TYPE, arg: &mut T) -> std::io::Result<()> {
    // SAFETY: `arg` is the struct the request is defined for and outlives the call.
    unsafe { v4l::v4l2::ioctl(device.handle().fd(), request, arg as *mut T as *mut c_void) }
}

fn output_format(device: &Device) -> std::io::Result<v4l_sys::v4l2_format> {
    // SAFETY: all-zero bytes are a valid v4l2_format.
    let mut format: v4l_sys::v4l2_format = unsafe { std::mem::zeroed() };
    format.type_ = v4l_sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT;
    ioctl(device, vidioc::VIDIOC_G_FMT, &mut format)?;
    Ok(format)
}

fn stream(device: &Device, on: bool) -> std::io::Result<()> {
    let mut kind = v4l_sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT as i32;
    let request = if on {
        vidioc::VIDIOC_STREAMON
    } else {
        vidioc::VIDIOC_STREAMOFF
    };
    ioctl(device, request, &mut kind)
}

fn offers_output(device: &Device) -> bool {
    device
        .query_caps()
        .is_ok_and(|caps| caps.capabilities.contains(Flags::VIDEO_OUTPUT))
}

/// OBS's `try_reset_output_caps`.
fn try_reset_output_caps(path: &str) -> bool {
    let reset = || -> std::io::Result<bool> {
        let device = Device::with_path(path)?;
        let mut format = output_format(&device)?;
        ioctl(&device, vidioc::VIDIOC_S_FMT, &mut format)?;
        stream(&device, true)?;
        stream(&device, false)?;
        drop(device);
        Ok(offers_output(&Device::with_path(path)?))
    };
    reset().unwrap_or(false)
}

/// OBS's `try_connect`; `workaround` is its static `use_caps_workaround`.
fn try_connect(path: &str, width: u32, height: u32, workaround: &mut bool) -> Option<Device> {
    let device = Device::with_path(path).ok()?;
    if !*workaround && !offers_output(&device) {
        if !try_reset_output_caps(path) {
            return None;
        }
        *workaround = true;
    }
    let mut format = output_format(&device).ok()?;
    let params = v4l::video::output::Parameters::with_fps(10);
    v4l::video::Output::set_params(&device, &params).ok()?;
    // SAFETY: G_FMT on an output type filled the `pix` member.
    let mut pix = unsafe { format.fmt.pix };
    pix.width = width;
    pix.height = height;
    pix.pixelformat = u32::from_le_bytes(*b"YUYV");
    pix.sizeimage = width * height * 2;
    format.fmt.pix = pix;
    ioctl(&device, vidioc::VIDIOC_S_FMT, &mut format).ok()?;
    if *workaround {
        stream(&device, true).ok()?;
    }
    Some(device)
}

/// glibc's versionsort for `videoN` names: by number.
fn video_nodes() -> Vec<String> {
    let mut nodes: Vec<(u64, String)> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let number = name.strip_prefix("video")?.parse().ok()?;
            Some((number, format!("/dev/{name}")))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (width, height) = match args[..] {
        [w, h] => (w, h),
        _ => (320, 240),
    };
    let loaded = std::fs::read_to_string("/proc/modules")
        .is_ok_and(|modules| modules.contains("v4l2loopback"));
    if !loaded {
        let status = std::process::Command::new("modprobe")
            .args([
                "v4l2loopback",
                "exclusive_caps=1",
                "card_label=OBS Virtual Camera",
            ])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("obs_virtualcam: modprobe v4l2loopback failed");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut workaround = false;
    let Some((path, mut device)) = video_nodes()
        .into_iter()
        .find_map(|path| try_connect(&path, width, height, &mut workaround).map(|d| (path, d)))
    else {
        eprintln!("obs_virtualcam: Failed to start virtual camera");
        std::process::exit(1);
    };
    println!("took {path}");
    let _ = std::io::stdout().flush();
    let frame = [128u8, 128].repeat((width * height) as usize);
    loop {
        if let Err(e) = device.write_all(&frame) {
            eprintln!("obs_virtualcam: write to {path}: {e}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
