use super::*;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use proptest::prelude::*;

fn gradient(width: u16, height: u16) -> Vec<u8> {
    let mut rgb = Vec::new();
    for y in 0..height {
        for x in 0..width {
            rgb.extend_from_slice(&[(x * 7) as u8, (y * 5) as u8, (x ^ y) as u8]);
        }
    }
    rgb
}

fn encode(width: u16, height: u16, configure: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 80);
    configure(&mut encoder);
    encoder
        .encode(&gradient(width, height), width, height, ColorType::Rgb)
        .unwrap();
    out
}

/// `FF D8`, `segments` (hand-made), `FF D9`.
fn with_segments(segments: &[&[u8]]) -> Vec<u8> {
    let mut jpeg = START_OF_IMAGE.to_vec();
    for segment in segments {
        jpeg.extend_from_slice(segment);
    }
    jpeg.extend_from_slice(&END_OF_IMAGE);
    jpeg
}

#[test]
fn end_of_image_table() {
    use JpegError::*;
    let cases: &[(&str, &[u8], Result<usize, JpegError>)] = &[
        ("empty", &[], Err(NoStartOfImage)),
        ("not a JPEG", b"GIF89a", Err(NoStartOfImage)),
        ("start only", &[0xFF, 0xD8], Err(Truncated { len: 2 })),
        ("minimal", &[0xFF, 0xD8, 0xFF, 0xD9], Ok(4)),
        (
            "filler after the end",
            &[0xFF, 0xD8, 0xFF, 0xD9, 0, 0, 7, 0xFF],
            Ok(4),
        ),
        (
            "fill bytes before a marker",
            &[0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xD9],
            Ok(6),
        ),
        (
            "TEM stands alone",
            &[0xFF, 0xD8, 0xFF, 0x01, 0xFF, 0xD9],
            Ok(6),
        ),
        (
            "RST stands alone",
            &[0xFF, 0xD8, 0xFF, 0xD3, 0xFF, 0xD9],
            Ok(6),
        ),
        (
            "end marker hidden in APP1",
            &[
                0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xD9,
            ],
            Ok(12),
        ),
        (
            "segment length bytes that look like an end marker",
            &[0xFF, 0xD8, 0xFF, 0xFE, 0xFF, 0xD9, 0xFF, 0xD9],
            Err(Truncated { len: 8 }),
        ),
        (
            "length below 2",
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xD9],
            Err(BadLength { at: 2 }),
        ),
        (
            "segment past the end",
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xD9],
            Err(Truncated { len: 8 }),
        ),
        (
            "length field cut",
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00],
            Err(Truncated { len: 5 }),
        ),
        (
            "marker cut after fill",
            &[0xFF, 0xD8, 0xFF, 0xFF],
            Err(Truncated { len: 4 }),
        ),
        (
            "junk where a marker belongs",
            &[0xFF, 0xD8, 0x00, 0xFF, 0xD9],
            Err(NotAMarker { at: 2 }),
        ),
        (
            "FF 00 is no marker",
            &[0xFF, 0xD8, 0xFF, 0x00, 0xFF, 0xD9],
            Err(NotAMarker { at: 2 }),
        ),
        (
            "second start",
            &[0xFF, 0xD8, 0xFF, 0xD8, 0xFF, 0xD9],
            Err(NestedStartOfImage { at: 2 }),
        ),
        (
            "scan with stuffing, restarts and fill",
            &[
                0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56,
                0xFF, 0xFF, 0xD9, 0xAA,
            ],
            Ok(17),
        ),
        (
            "scan that never ends",
            &[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0x00, 0x00],
            Err(Truncated { len: 10 }),
        ),
        (
            "scan ending in FF",
            &[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF],
            Err(Truncated { len: 8 }),
        ),
        (
            "segments between scans",
            &[
                0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xC4, 0x00, 0x03, 0xD9, 0xFF, 0xDA,
                0x00, 0x02, 0x22, 0xFF, 0xD9,
            ],
            Ok(19),
        ),
        (
            "start marker inside the scan ends it",
            &[
                0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD8, 0xFF, 0xD9,
            ],
            Err(NestedStartOfImage { at: 7 }),
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(end_of_image(bytes), *expected, "{name}");
    }
}

/// A SOF payload: precision 8, `height` x `width`, and `components` (id, sampling, table).
fn sof(code: u8, width: u16, height: u16, components: &[(u8, u8, u8)]) -> Vec<u8> {
    let mut segment = vec![0xFF, code];
    let length = 8 + 3 * components.len() as u16;
    segment.extend(length.to_be_bytes());
    segment.push(8);
    segment.extend(height.to_be_bytes());
    segment.extend(width.to_be_bytes());
    segment.push(components.len() as u8);
    for &(id, sampling, table) in components {
        segment.extend([id, sampling, table]);
    }
    segment
}

#[test]
fn frame_header_table() {
    let ycc = [(1, 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)];
    let cases: &[(u8, Process, bool, bool)] = &[
        (0xC0, Process::Baseline, false, false),
        (0xC1, Process::ExtendedSequential, false, false),
        (0xC2, Process::Progressive, false, false),
        (0xC3, Process::Lossless, false, false),
        (0xC5, Process::ExtendedSequential, false, true),
        (0xC6, Process::Progressive, false, true),
        (0xC7, Process::Lossless, false, true),
        (0xC9, Process::ExtendedSequential, true, false),
        (0xCA, Process::Progressive, true, false),
        (0xCB, Process::Lossless, true, false),
        (0xCD, Process::ExtendedSequential, true, true),
        (0xCE, Process::Progressive, true, true),
        (0xCF, Process::Lossless, true, true),
    ];
    for &(code, process, arithmetic, differential) in cases {
        let jpeg = with_segments(&[
            &[0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9],
            &sof(code, 640, 480, &ycc),
        ]);
        let header = frame_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (640, 480), "{code:#x}");
        assert_eq!(header.process(), process, "{code:#x}");
        assert_eq!(header.arithmetic(), arithmetic, "{code:#x}");
        assert_eq!(header.differential(), differential, "{code:#x}");
        assert_eq!(header.component_count, 3);
        let sampling: Vec<_> = header
            .components()
            .iter()
            .map(|c| (c.id, c.horizontal, c.vertical))
            .collect();
        assert_eq!(sampling, [(1, 2, 2), (2, 1, 1), (3, 1, 1)]);
    }
    // DHT, JPG and DAC share the SOF range but are not frame headers.
    for code in [0xC4, 0xC8, 0xCC] {
        let jpeg = with_segments(&[&sof(code, 1, 1, &[(1, 0x11, 0)])]);
        assert_eq!(
            frame_header(&jpeg),
            Err(JpegError::NoFrameHeader { at: 15 }),
            "{code:#x}"
        );
    }
}

#[test]
fn frame_header_errors() {
    let good = sof(0xC0, 8, 8, &[(1, 0x11, 0)]);
    assert_eq!(
        frame_header(&[0xFF, 0xD8, 0xFF, 0xD9]),
        Err(JpegError::NoFrameHeader { at: 2 })
    );
    let scan_first = with_segments(&[&[0xFF, 0xDA, 0x00, 0x02, 0x00], &good]);
    assert_eq!(
        frame_header(&scan_first),
        Err(JpegError::NoFrameHeader { at: 2 })
    );
    // A SOF whose own length is too small for its fields.
    let mut short = good.clone();
    short[3] = 7;
    short.truncate(9);
    let jpeg = with_segments(&[&short]);
    assert_eq!(
        frame_header(&jpeg),
        Err(JpegError::ShortFrameHeader { at: 2 })
    );
    // Announcing more components than the segment holds.
    let mut too_many = good.clone();
    too_many[9] = 2;
    assert_eq!(
        frame_header(&with_segments(&[&too_many])),
        Err(JpegError::ShortFrameHeader { at: 2 })
    );
    // The header alone is enough: the rest of the picture may be missing.
    let mut cut = START_OF_IMAGE.to_vec();
    cut.extend(&good);
    assert_eq!(frame_header(&cut).map(|h| (h.width, h.height)), Ok((8, 8)));
    assert_eq!(
        end_of_image(&cut),
        Err(JpegError::Truncated { len: cut.len() })
    );
}

/// Real encoder output: baseline at each sampling, restart markers, progressive (many
/// scans), an EXIF-like APP1 that hides a whole JPEG, and grayscale.
pub(crate) fn encoded_samples() -> Vec<(&'static str, Vec<u8>)> {
    let thumbnail = encode(8, 8, |_| {});
    vec![
        (
            "4:4:4",
            encode(48, 32, |e| e.set_sampling_factor(SamplingFactor::F_1_1)),
        ),
        (
            "4:2:2",
            encode(48, 32, |e| e.set_sampling_factor(SamplingFactor::F_2_1)),
        ),
        (
            "4:2:0",
            encode(33, 17, |e| e.set_sampling_factor(SamplingFactor::F_2_2)),
        ),
        (
            "restart markers",
            encode(48, 32, |e| e.set_restart_interval(1)),
        ),
        ("progressive", encode(48, 32, |e| e.set_progressive(true))),
        (
            "thumbnail in APP1",
            encode(48, 32, |e| e.add_app_segment(1, thumbnail).unwrap()),
        ),
        ("grayscale", {
            let mut out = Vec::new();
            Encoder::new(&mut out, 80)
                .encode(&[128; 40 * 24], 40, 24, ColorType::Luma)
                .unwrap();
            out
        }),
    ]
}

#[test]
fn encoder_output_walks_to_its_last_byte_and_agrees_with_jpeg_decoder() {
    for (name, jpeg) in encoded_samples() {
        let layout = layout(&jpeg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(layout.end, jpeg.len(), "{name}");
        let mut reference = jpeg_decoder::Decoder::new(jpeg.as_slice());
        reference.read_info().unwrap();
        let info = reference.info().unwrap();
        assert_eq!(
            (layout.frame.width, layout.frame.height),
            (info.width, info.height),
            "{name}"
        );
        let components = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => 1,
            _ => 3,
        };
        assert_eq!(layout.frame.component_count, components, "{name}");
        let progressive = layout.frame.process() == Process::Progressive;
        assert_eq!(progressive, name == "progressive", "{name}");
        assert_eq!(
            progressive,
            layout.scans > 1,
            "{name}: {} scans",
            layout.scans
        );
        assert_eq!(frame_header(&jpeg), Ok(layout.frame), "{name}");
    }
}

#[test]
fn every_cut_of_a_real_jpeg_is_truncated() {
    for (name, jpeg) in encoded_samples() {
        for len in 0..jpeg.len() {
            assert!(end_of_image(&jpeg[..len]).is_err(), "{name} cut to {len}");
        }
    }
}

#[test]
fn markers_are_yielded_in_order_soi_first_eoi_last() {
    let jpeg = encode(16, 16, |e| e.set_restart_interval(1));
    let codes: Vec<u8> = Markers::new(&jpeg).map(|s| s.unwrap().code).collect();
    assert_eq!(codes.first(), Some(&marker::SOI));
    assert_eq!(codes.last(), Some(&marker::EOI));
    assert!(codes.contains(&marker::SOS) && codes.contains(&marker::DQT));
    assert!(codes.contains(&marker::DRI));
    // Restart markers inside the scan are data, not markers.
    assert!(!codes.iter().any(|&c| marker::is_restart(c)));
    let mut previous_end = 0;
    for segment in Markers::new(&jpeg) {
        let segment = segment.unwrap();
        assert!(segment.offset >= previous_end);
        assert!(segment.payload_start <= segment.end && segment.end <= jpeg.len());
        previous_end = segment.end;
    }
    // Nothing after an error.
    let mut broken = Markers::new(&[0xFF, 0xD8, 0x00, 0xFF, 0xD9]);
    assert!(broken.next().unwrap().is_ok());
    assert!(broken.next().unwrap().is_err());
    assert!(broken.next().is_none());
}

/// A JPEG built from random segments, random scans and random trailing bytes, with its
/// true length: segment payloads may hold `FF D9`; scan data is stuffed as an encoder
/// would, with restart markers and fill bytes mixed in.
fn structured_jpeg() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let payload = proptest::collection::vec(
        prop_oneof![any::<u8>(), Just(0xFFu8), Just(0xD9u8), Just(0xD8u8)],
        0..40,
    );
    let segment = (
        prop_oneof![0xC0u8..=0xCF, 0xDBu8..=0xDF, 0xE0u8..=0xEF, Just(0xFEu8)],
        payload,
        0usize..3,
    )
        .prop_map(|(code, payload, fill)| {
            let mut s = vec![0xFF; fill];
            s.extend([0xFF, code]);
            s.extend(((payload.len() + 2) as u16).to_be_bytes());
            s.extend(payload);
            s
        });
    let scan = proptest::collection::vec(
        prop_oneof![
            any::<u8>().prop_map(|b| vec![b]),
            (0xD0u8..=0xD7).prop_map(|r| vec![0xFF, r])
        ],
        0..60,
    )
    .prop_map(|data| {
        let mut s = vec![0xFF, 0xDA, 0x00, 0x03, 0x01];
        for chunk in data {
            match chunk.as_slice() {
                [0xFF] => s.extend([0xFF, 0x00]),
                other => s.extend(other),
            }
        }
        s
    });
    let part = prop_oneof![segment, scan];
    (
        proptest::collection::vec(part, 0..8),
        proptest::collection::vec(any::<u8>(), 0..30),
    )
        .prop_map(|(parts, trailing)| {
            let mut jpeg = START_OF_IMAGE.to_vec();
            for part in parts {
                jpeg.extend(part);
            }
            jpeg.extend(END_OF_IMAGE);
            let end = jpeg.len();
            jpeg.extend(trailing);
            (jpeg, end)
        })
}

proptest! {
    #[test]
    fn structured_jpegs_end_where_they_were_built_to((jpeg, end) in structured_jpeg()) {
        prop_assert_eq!(end_of_image(&jpeg), Ok(end));
        for len in 0..end {
            prop_assert!(end_of_image(&jpeg[..len]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_an_end_is_an_end_marker(
        data in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(0xFFu8), Just(0xD8u8), Just(0xD9u8), Just(0xDAu8), Just(0u8)],
            0..400,
        )
    ) {
        let mut jpeg = START_OF_IMAGE.to_vec();
        jpeg.extend(&data);
        if let Ok(end) = end_of_image(&jpeg) {
            prop_assert!(end <= jpeg.len());
            prop_assert_eq!(&jpeg[end - 2..end], &END_OF_IMAGE);
        }
        let _ = frame_header(&jpeg);
        if let Ok(layout) = layout(&jpeg) {
            prop_assert_eq!(end_of_image(&jpeg), Ok(layout.end));
        }
    }
}
