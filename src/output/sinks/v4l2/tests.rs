use super::*;
use crate::picture::decode::YuyvFrame;

fn options() -> SinkOptions {
    SinkOptions {
        width: 640,
        height: 480,
        ..SinkOptions::default()
    }
}

fn fake_tree(dir: &tempfile::TempDir) -> DeviceTree {
    let tree = DeviceTree {
        sys: dir.path().join("sys"),
        dev: dir.path().join("dev"),
    };
    std::fs::create_dir_all(&tree.dev).unwrap();
    tree
}

fn load_fake_module(tree: &DeviceTree) {
    std::fs::create_dir_all(tree.sys.join("module/v4l2loopback")).unwrap();
}

#[test]
fn output_format_is_fixed_size_limited_range_bt601_yuyv() {
    let format = output_format(1280, 720);
    assert_eq!(format.type_, 2, "V4L2_BUF_TYPE_VIDEO_OUTPUT");
    // SAFETY: output_format fills the `pix` member.
    let pix = unsafe { format.fmt.pix };
    assert_eq!((pix.width, pix.height), (1280, 720));
    assert_eq!(pix.pixelformat, 0x5659_5559, "'YUYV'");
    assert_eq!(pix.field, 1, "V4L2_FIELD_NONE");
    assert_eq!(pix.bytesperline, 2560);
    assert_eq!(pix.sizeimage, 2560 * 720);
    assert_eq!(pix.colorspace, 1, "V4L2_COLORSPACE_SMPTE170M");
    // SAFETY: ycbcr_enc is the member output_format sets.
    assert_eq!(
        unsafe { pix.__bindgen_anon_1.ycbcr_enc },
        1,
        "V4L2_YCBCR_ENC_601"
    );
    assert_eq!(pix.quantization, 2, "V4L2_QUANTIZATION_LIM_RANGE");
    assert_eq!(pix.xfer_func, 1, "V4L2_XFER_FUNC_709");
    assert_eq!((pix.flags, pix.priv_), (0, 0));
}

#[test]
fn fourcc_reads_as_text() {
    assert_eq!(fourcc_text(PIX_FMT_YUYV), "YUYV");
}

#[test]
fn node_state_follows_exclusive_caps() {
    let caps = |output, capture| NodeCaps {
        driver: LOOPBACK_DRIVER.into(),
        output,
        capture,
    };
    assert_eq!(node_state(&caps(true, false)), NodeState::Writable);
    assert_eq!(node_state(&caps(true, true)), NodeState::Writable);
    assert_eq!(node_state(&caps(false, true)), NodeState::HeldByProducer);
    assert_eq!(node_state(&caps(false, false)), NodeState::Stuck);
}

#[test]
fn frames_of_another_size_are_geometry_changes() {
    let frame = YuyvFrame {
        width: 320,
        height: 240,
        data: vec![0; 320 * 2 * 240],
    };
    let err = check_frame("/dev/video9", &frame, 640, 480).unwrap_err();
    assert!(matches!(
        err,
        SinkError::GeometryChanged {
            width: 320,
            height: 240,
            stream_width: 640,
            stream_height: 480,
            ..
        }
    ));
    let short = YuyvFrame {
        width: 640,
        height: 480,
        data: vec![0; 10],
    };
    assert!(matches!(
        check_frame("/dev/video9", &short, 640, 480),
        Err(SinkError::BadFrame { len: 10, .. })
    ));
    let good = YuyvFrame {
        width: 640,
        height: 480,
        data: vec![0; 640 * 2 * 480],
    };
    assert!(check_frame("/dev/video9", &good, 640, 480).is_ok());
}

#[test]
fn without_the_module_the_error_says_how_to_load_it() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fake_tree(&dir);
    let err = V4l2Sink::open_in(&tree, &V4l2Target::Auto, &options())
        .err()
        .expect("no module");
    let text = err.to_string();
    assert!(matches!(err, V4l2Error::ModuleMissing { .. }), "{text}");
    assert!(
        text.contains("sudo modprobe v4l2loopback exclusive_caps=1 card_label=Borescope"),
        "{text}"
    );
    assert!(text.contains("v4l2loopback-dkms"), "{text}");
}

#[test]
fn no_labelled_device_and_no_control_node_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fake_tree(&dir);
    load_fake_module(&tree);
    let node = tree.sys.join("class/video4linux/video0");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(node.join("name"), "Integrated Camera\n").unwrap();
    let err = V4l2Sink::open_in(&tree, &V4l2Target::Auto, &options())
        .err()
        .expect("nothing labelled");
    let text = err.to_string();
    assert!(
        text.starts_with("no v4l2loopback device labelled 'Borescope': load the module with"),
        "{text}"
    );
}

#[test]
fn a_failing_control_node_falls_back_to_the_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fake_tree(&dir);
    load_fake_module(&tree);
    // A regular file: opening works, the ADD ioctl fails (ENOTTY), nothing is created.
    std::fs::write(tree.dev.join("v4l2loopback"), "").unwrap();
    let err = V4l2Sink::open_in(&tree, &V4l2Target::Auto, &options())
        .err()
        .expect("cannot create");
    assert!(matches!(err, V4l2Error::NoLabelledDevice { .. }), "{err}");
}

#[test]
fn a_path_that_is_not_a_video_node_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fake_tree(&dir);
    let missing = tree.dev.join("video42");
    let err = V4l2Sink::open_in(&tree, &V4l2Target::Device(missing.clone()), &options())
        .err()
        .expect("missing node");
    let text = err.to_string();
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(text.contains("v4l2-ctl --list-devices"), "{text}");

    let plain_file = tree.dev.join("video43");
    std::fs::write(&plain_file, "").unwrap();
    let err = V4l2Sink::open_in(&tree, &V4l2Target::Device(plain_file), &options())
        .err()
        .expect("not a device");
    assert!(err.to_string().contains("VIDIOC_QUERYCAP"), "{err}");
}

#[test]
fn node_label_comes_from_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let tree = fake_tree(&dir);
    let node = tree.sys.join("class/video4linux/video7");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(node.join("name"), "Borescope\n").unwrap();
    assert_eq!(
        node_label(&tree, &tree.video_node(7)).as_deref(),
        Some("Borescope")
    );
    assert_eq!(node_label(&tree, &tree.video_node(8)), None);
}

#[test]
fn mjpeg_output_format_is_mjpg_with_a_generous_buffer() {
    let format = output_format_for(CameraFormat::Mjpeg, 640, 480);
    // SAFETY: output_format_for fills the `pix` member.
    let pix = unsafe { format.fmt.pix };
    assert_eq!((pix.width, pix.height), (640, 480));
    assert_eq!(pix.pixelformat, u32::from_le_bytes(*b"MJPG"));
    assert_eq!(pix.sizeimage, 640 * 480 * 2);
    let yuyv = output_format_for(CameraFormat::Yuyv, 640, 480);
    // SAFETY: as above.
    assert_eq!(unsafe { yuyv.fmt.pix }.pixelformat, PIX_FMT_YUYV);
}

#[test]
fn mjpeg_frames_must_have_the_camera_size_and_fit_the_buffer() {
    check_jpeg(
        "cam",
        &crate::picture::decode::solid_jpeg(64, 48, 200),
        64,
        48,
        1 << 20,
    )
    .unwrap();
    assert!(matches!(
        check_jpeg(
            "cam",
            &crate::picture::decode::solid_jpeg(80, 48, 200),
            64,
            48,
            1 << 20
        ),
        Err(SinkError::WrongJpegSize {
            width: 80,
            height: 48,
            camera_width: 64,
            camera_height: 48,
            ..
        })
    ));
    assert!(matches!(
        check_jpeg("cam", b"\xFF\xD8garbage", 64, 48, 1 << 20),
        Err(SinkError::UnreadableJpeg { .. })
    ));
    assert!(matches!(
        check_jpeg(
            "cam",
            &crate::picture::decode::solid_jpeg(64, 48, 200),
            64,
            48,
            100
        ),
        Err(SinkError::FrameTooLarge { limit: 100, .. })
    ));
}
