use super::*;
use std::io;

/// `2 * width * height` distinct-looking samples: the bytes of a 4:2:2 picture.
fn samples(width: u32, height: u32, seed: u8) -> Vec<u8> {
    (0..(width * 2 * height) as usize)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn frame(width: u32, height: u32, seed: u8) -> YuyvFrame {
    YuyvFrame {
        width,
        height,
        data: samples(width, height, seed),
    }
}

fn out_frame<'a>(jpeg: &'a [u8], yuyv: &'a YuyvFrame) -> OutFrame<'a> {
    OutFrame {
        jpeg,
        yuyv: Some(yuyv),
        planar: None,
    }
}

fn planar(width: u32, height: u32, seed: u8) -> Planar422Frame {
    Planar422Frame {
        width,
        height,
        data: samples(width, height, seed),
    }
}

fn planar_out<'a>(jpeg: &'a [u8], planar: &'a Planar422Frame) -> OutFrame<'a> {
    OutFrame {
        jpeg,
        yuyv: None,
        planar: Some(planar),
    }
}

/// Parses a y4m stream into (header line, frames as (Y, Cb, Cr) planes).
fn parse_y4m(bytes: &[u8], width: usize, height: usize) -> (String, Vec<[Vec<u8>; 3]>) {
    let header_end = bytes.iter().position(|&b| b == b'\n').expect("header line");
    let header = String::from_utf8(bytes[..header_end].to_vec()).expect("ASCII header");
    let mut rest = &bytes[header_end + 1..];
    let mut frames = Vec::new();
    let (luma, chroma) = (width * height, width / 2 * height);
    while !rest.is_empty() {
        assert!(rest.starts_with(b"FRAME\n"), "frame marker");
        rest = &rest[6..];
        let (y, r) = rest.split_at(luma);
        let (u, r) = r.split_at(chroma);
        let (v, r) = r.split_at(chroma);
        frames.push([y.to_vec(), u.to_vec(), v.to_vec()]);
        rest = r;
    }
    (header, frames)
}

fn file_spec(dir: &tempfile::TempDir, name: &str, kind: fn(OutputPath) -> SinkSpec) -> SinkSpec {
    kind(OutputPath::File(dir.path().join(name)))
}

#[test]
fn y4m_header_and_planes_parse_back_to_the_decoded_planes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = file_spec(&dir, "out.y4m", SinkSpec::Y4m);
    let mut sink = open(
        &spec,
        &SinkOptions {
            fps_hint: 25,
            ..SinkOptions::default()
        },
    )
    .expect("opens");
    assert!(sink.needs_planar() && !sink.needs_yuyv());
    let frames = [planar(6, 4, 1), planar(6, 4, 99)];
    for f in &frames {
        sink.write(&planar_out(b"jpeg", f)).expect("writes");
    }
    drop(sink);
    let bytes = std::fs::read(dir.path().join("out.y4m")).expect("readable");
    let (header, planes) = parse_y4m(&bytes, 6, 4);
    assert_eq!(
        header,
        "YUV4MPEG2 W6 H4 F25:1 Ip A1:1 C422 XCOLORRANGE=LIMITED"
    );
    assert_eq!(planes.len(), 2);
    for (got, f) in planes.iter().zip(&frames) {
        let (y, u, v) = f.planes();
        assert_eq!(got, &[y.to_vec(), u.to_vec(), v.to_vec()]);
    }
}

#[test]
fn y4m_refuses_a_size_change_but_keeps_writing_the_original_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = file_spec(&dir, "out.y4m", SinkSpec::Y4m);
    let mut sink = open(&spec, &SinkOptions::default()).expect("opens");
    let (small, big) = (planar(4, 2, 0), planar(8, 2, 0));
    sink.write(&planar_out(b"", &small)).expect("first frame");
    let err = sink.write(&planar_out(b"", &big)).expect_err("size change");
    assert!(
        matches!(
            err,
            SinkError::GeometryChanged {
                width: 8,
                height: 2,
                stream_width: 4,
                stream_height: 2,
                ..
            }
        ),
        "{err}"
    );
    sink.write(&planar_out(b"", &small))
        .expect("original size still accepted");
    drop(sink);
    let bytes = std::fs::read(dir.path().join("out.y4m")).expect("readable");
    let (header, planes) = parse_y4m(&bytes, 4, 2);
    assert!(header.contains("W4 H2 F30:1"), "{header}");
    assert_eq!(planes.len(), 2);
}

#[test]
fn y4m_without_a_decoded_frame_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sink = open(
        &file_spec(&dir, "x.y4m", SinkSpec::Y4m),
        &SinkOptions::default(),
    )
    .expect("opens");
    let err = sink
        .write(&OutFrame {
            jpeg: b"",
            yuyv: None,
            planar: None,
        })
        .expect_err("no picture");
    assert!(matches!(err, SinkError::MissingPicture { .. }), "{err}");
    // A YUYV picture is not what y4m takes either.
    let err = sink
        .write(&out_frame(b"", &frame(4, 2, 0)))
        .expect_err("YUYV instead of planes");
    assert!(matches!(err, SinkError::MissingPicture { .. }), "{err}");
    let mut bad = planar(4, 2, 0);
    bad.data.pop();
    let err = sink
        .write(&planar_out(b"", &bad))
        .expect_err("short buffer");
    assert!(matches!(err, SinkError::BadFrame { .. }), "{err}");
    let err = sink
        .write(&planar_out(b"", &planar(3, 2, 0)))
        .expect_err("odd width");
    assert!(matches!(err, SinkError::BadFrame { .. }), "{err}");
}

struct BrokenPipe;

impl io::Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn a_vanished_reader_is_reported_as_closed() {
    let f = frame(4, 2, 0);
    let mut y4m = Y4mSink::new(
        Box::new(BrokenPipe),
        "y4m to stdout".into(),
        &SinkOptions::default(),
    );
    let err = y4m
        .write(&planar_out(b"x", &planar(4, 2, 0)))
        .expect_err("EPIPE");
    assert!(matches!(err, SinkError::Closed { .. }), "{err}");
    let mut mjpeg = MjpegSink::new(Box::new(BrokenPipe), "mjpeg to stdout".into());
    let err = mjpeg.write(&out_frame(b"x", &f)).expect_err("EPIPE");
    assert!(matches!(err, SinkError::Closed { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "mjpeg to stdout: the reader closed the stream"
    );
}

#[test]
fn mjpeg_output_is_the_concatenated_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = file_spec(&dir, "out.mjpeg", SinkSpec::Mjpeg);
    let mut sink = open(&spec, &SinkOptions::default()).expect("opens");
    assert!(!sink.needs_yuyv());
    let jpegs: [&[u8]; 3] = [b"\xFF\xD8first\xFF\xD9", b"\xFF\xD8second\xFF\xD9", b""];
    for jpeg in jpegs {
        sink.write(&OutFrame {
            jpeg,
            yuyv: None,
            planar: None,
        })
        .expect("writes");
    }
    sink.flush().expect("flushes");
    let bytes = std::fs::read(dir.path().join("out.mjpeg")).expect("readable");
    assert_eq!(bytes, jpegs.concat());
}

#[test]
fn null_discards_and_needs_nothing() {
    let mut sink = open(&SinkSpec::Null, &SinkOptions::default()).expect("opens");
    assert!(!sink.needs_yuyv());
    sink.write(&OutFrame {
        jpeg: b"x",
        yuyv: None,
        planar: None,
    })
    .expect("discards");
    sink.flush().expect("flushes");
    assert_eq!(sink.describe(), "null (frames discarded)");
}

#[test]
fn specs_round_trip_through_their_string_form() {
    for text in [
        "y4m:-",
        "y4m:/tmp/a.y4m",
        "mjpeg:-",
        "mjpeg:rel/x.mjpeg",
        "null",
        "y4m:a:b",
    ] {
        let spec: SinkSpec = text.parse().expect("valid spec");
        assert_eq!(spec.to_string(), text);
    }
    assert_eq!("y4m:-".parse(), Ok(SinkSpec::Y4m(OutputPath::Stdout)));
    assert_eq!(
        "mjpeg:/x.mjpeg".parse(),
        Ok(SinkSpec::Mjpeg(OutputPath::File("/x.mjpeg".into())))
    );
}

#[test]
fn bad_specs_say_what_is_accepted() {
    let err = |s: &str| s.parse::<SinkSpec>().expect_err(s).to_string();
    assert_eq!(
        err("foo"),
        "unknown output 'foo': expected v4l2, v4l2:/dev/videoN, y4m:PATH, mjpeg:PATH or null \
         ('-' is stdout)"
    );
    assert!(err("y4m").starts_with("unknown output 'y4m'"));
    assert!(err("").starts_with("unknown output ''"));
    assert!(err("y4m:").contains("has no path"));
    for bad in ["v4l2:", "v4l2:video3", "v4l2:/"] {
        assert!(
            err(bad).contains("use v4l2:/dev/videoN"),
            "{bad}: {}",
            err(bad)
        );
    }
    assert!(err("v4l2x").starts_with("unknown output"));
}

#[test]
fn v4l2_specs_parse_to_auto_or_a_device() {
    assert_eq!("v4l2".parse(), Ok(SinkSpec::V4l2(V4l2Target::Auto)));
    assert_eq!(
        "v4l2:/dev/video3".parse(),
        Ok(SinkSpec::V4l2(V4l2Target::Device("/dev/video3".into())))
    );
    for text in ["v4l2", "v4l2:/dev/video10", "v4l2:/dev/v4l/by-id/x"] {
        let spec: SinkSpec = text.parse().expect("valid spec");
        assert_eq!(spec.to_string(), text);
    }
}

#[test]
fn only_the_camera_has_a_fixed_geometry() {
    let sink = open(&SinkSpec::Null, &SinkOptions::default()).expect("opens");
    assert_eq!(sink.fixed_geometry(), None);
    let sink = open(&SinkSpec::Y4m(OutputPath::Stdout), &SinkOptions::default()).expect("opens");
    assert_eq!(sink.fixed_geometry(), None);
}

#[test]
fn descriptions_name_the_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a.mjpeg");
    let sink = open(
        &SinkSpec::Mjpeg(OutputPath::File(path.clone())),
        &SinkOptions::default(),
    )
    .expect("opens");
    assert_eq!(sink.describe(), format!("mjpeg to {}", path.display()));
    let sink = open(&SinkSpec::Y4m(OutputPath::Stdout), &SinkOptions::default()).expect("opens");
    assert_eq!(sink.describe(), "y4m to stdout");
}

#[test]
fn an_uncreatable_file_names_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing-dir").join("x.y4m");
    let err = open(
        &SinkSpec::Y4m(OutputPath::File(path.clone())),
        &SinkOptions::default(),
    )
    .err()
    .expect("cannot create");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot create output file {}: No such file or directory",
            path.display()
        )),
        "{text}"
    );
}

#[test]
fn only_frame_level_refusals_let_the_pipeline_go_on() {
    let one_frame = SinkError::GeometryChanged {
        target: "t".into(),
        width: 1,
        height: 1,
        stream_width: 2,
        stream_height: 2,
    };
    assert!(one_frame.concerns_one_frame());
    assert!(!SinkError::Closed { target: "t".into() }.concerns_one_frame());
    let io = SinkError::Io {
        target: "t".into(),
        source: std::io::Error::other("disk full"),
    };
    assert!(!io.concerns_one_frame());
}
