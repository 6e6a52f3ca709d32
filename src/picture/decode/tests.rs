use super::*;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use proptest::prelude::*;

const SAMPLINGS: [(SamplingFactor, &str); 3] = [
    (SamplingFactor::F_1_1, "4:4:4"),
    (SamplingFactor::F_2_1, "4:2:2"),
    (SamplingFactor::F_2_2, "4:2:0"),
];

fn encode_rgb(rgb: &[u8], width: u16, height: u16, sampling: SamplingFactor, q: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, q);
    encoder.set_sampling_factor(sampling);
    encoder
        .encode(rgb, width, height, ColorType::Rgb)
        .expect("test JPEG encodes");
    out
}

fn encode_gray(luma: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out, 100)
        .encode(luma, width, height, ColorType::Luma)
        .expect("test JPEG encodes");
    out
}

fn solid(rgb: [u8; 3], width: u16, height: u16) -> Vec<u8> {
    rgb.repeat(usize::from(width) * usize::from(height))
}

/// A smooth colourful picture: gradients in all three channels.
fn gradient(width: u16, height: u16) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            rgb.push((x * 255 / w.max(2).saturating_sub(1)).min(255) as u8);
            rgb.push((y * 255 / h.max(2).saturating_sub(1)).min(255) as u8);
            rgb.push(((x + y) * 255 / (w + h)) as u8);
        }
    }
    rgb
}

/// Float BT.601 limited-range reference for one full-range RGB pixel.
fn bt601_limited(rgb: [f64; 3]) -> [f64; 3] {
    let [r, g, b] = rgb.map(|c| c / 255.0);
    [
        16.0 + 65.481 * r + 128.553 * g + 24.966 * b,
        128.0 - 37.797 * r - 74.203 * g + 112.0 * b,
        128.0 + 112.0 * r - 93.786 * g - 18.214 * b,
    ]
}

/// Every (Y, U, V) of every pixel pair of a frame: (y0, u, y1, v).
fn pairs(frame: &YuyvFrame) -> impl Iterator<Item = [u8; 4]> + '_ {
    frame.data.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]])
}

fn assert_all_near(frame: &YuyvFrame, want: [f64; 3], tolerance: f64, what: &str) {
    for [y0, u, y1, v] in pairs(frame) {
        for (got, want, name) in [
            (y0, want[0], "Y"),
            (y1, want[0], "Y"),
            (u, want[1], "U"),
            (v, want[2], "V"),
        ] {
            assert!(
                (f64::from(got) - want).abs() <= tolerance,
                "{what}: {name} is {got}, expected {want:.1}"
            );
        }
    }
}

#[test]
fn solid_colours_map_to_bt601_limited_range_for_every_subsampling() {
    let cases = [
        ([0, 0, 0], "black"),
        ([255, 255, 255], "white"),
        ([128, 128, 128], "grey"),
        ([255, 0, 0], "red"),
        ([0, 255, 0], "green"),
        ([0, 0, 255], "blue"),
    ];
    let mut decoder = Decoder::new();
    for (sampling, sampling_name) in SAMPLINGS {
        for (rgb, name) in cases {
            let jpeg = encode_rgb(&solid(rgb, 32, 16), 32, 16, sampling, 100);
            let frame = decoder.decode(&jpeg).expect("valid JPEG decodes");
            assert_eq!((frame.width, frame.height), (32, 16));
            let want = bt601_limited(rgb.map(f64::from));
            assert_all_near(frame, want, 3.0, &format!("{name} {sampling_name}"));
        }
    }
}

#[test]
fn black_and_white_hit_the_limited_range_end_points() {
    let mut decoder = Decoder::new();
    let black = decoder
        .decode(&encode_rgb(
            &solid([0; 3], 16, 8),
            16,
            8,
            SamplingFactor::F_2_1,
            100,
        ))
        .expect("decodes");
    assert!(pairs(black).all(|[y0, u, y1, v]| {
        (15..=17).contains(&y0)
            && (15..=17).contains(&y1)
            && u.abs_diff(128) <= 1
            && v.abs_diff(128) <= 1
    }));
    let white = decoder
        .decode(&encode_rgb(
            &solid([255; 3], 16, 8),
            16,
            8,
            SamplingFactor::F_2_1,
            100,
        ))
        .expect("decodes");
    assert!(
        pairs(white).all(|[y0, _, y1, _]| (234..=236).contains(&y0) && (234..=236).contains(&y1))
    );
}

#[test]
fn odd_sizes_are_padded_to_even_width_by_repeating_the_last_column() {
    let mut decoder = Decoder::new();
    for (sampling, name) in SAMPLINGS {
        let jpeg = encode_rgb(&gradient(33, 17), 33, 17, sampling, 95);
        let frame = decoder.decode(&jpeg).expect("odd-size JPEG decodes");
        assert_eq!((frame.width, frame.height), (34, 17), "{name}");
        assert_eq!(frame.data.len(), 34 * 2 * 17, "{name}");
        for row in frame.data.chunks_exact(34 * 2) {
            let last_pair = &row[32 * 2..];
            assert_eq!(
                last_pair[0], last_pair[2],
                "{name}: padded Y repeats the last column"
            );
        }
    }
}

#[test]
fn grayscale_jpegs_decode_with_neutral_chroma() {
    let (w, h) = (33u16, 9u16);
    let luma: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .map(|i| (i % usize::from(w) * 255 / 32) as u8)
        .collect();
    let mut decoder = Decoder::new();
    let frame = decoder
        .decode(&encode_gray(&luma, w, h))
        .expect("grayscale decodes");
    assert_eq!(
        (frame.width, frame.height, frame.data.len()),
        (34, 9, 34 * 2 * 9)
    );
    assert!(pairs(frame).all(|[_, u, _, v]| u == 128 && v == 128));
    let first_row = &frame.data[..34 * 2];
    assert!(
        first_row[0].abs_diff(16) <= 2,
        "black -> 16, got {}",
        first_row[0]
    );
    assert!(
        first_row[64].abs_diff(235) <= 2,
        "white -> 235, got {}",
        first_row[64]
    );
    assert_eq!(first_row[64], first_row[66], "odd column repeated");
}

#[test]
fn same_size_frames_reuse_the_output_buffer() {
    let jpeg = encode_rgb(&gradient(64, 32), 64, 32, SamplingFactor::F_2_1, 90);
    let mut decoder = Decoder::new();
    let first = decoder.decode(&jpeg).expect("decodes").data.as_ptr();
    let second = decoder.decode(&jpeg).expect("decodes").data.as_ptr();
    assert_eq!(first, second, "the YUYV buffer was reallocated");
}

/// Offset of the SOF0 height field in a baseline JPEG from jpeg-encoder.
fn sof_size_offset(jpeg: &[u8]) -> usize {
    let sof = crate::jpeg::Markers::new(jpeg)
        .map(Result::unwrap)
        .find(|segment| segment.code == crate::jpeg::marker::SOF0)
        .expect("baseline SOF0 marker");
    // Precision, then height and width.
    sof.payload_start + 1
}

fn with_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut patched = jpeg.to_vec();
    let at = sof_size_offset(&patched);
    patched[at..at + 2].copy_from_slice(&height.to_be_bytes());
    patched[at + 2..at + 4].copy_from_slice(&width.to_be_bytes());
    patched
}

#[test]
fn absurd_dimensions_are_rejected_before_decoding() {
    let jpeg = encode_rgb(&gradient(16, 16), 16, 16, SamplingFactor::F_2_1, 90);
    let mut decoder = Decoder::new();
    for (w, h) in [(2593, 16), (16, 1945), (4096, 4096), (65535, 65535)] {
        let err = decoder
            .decode(&with_size(&jpeg, w, h))
            .expect_err("too large");
        assert!(
            matches!(err, DecodeError::TooLarge { .. }),
            "{w}x{h}: {err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "JPEG of {w}x{h} is larger than the 2592x1944 limit \
                 (a corrupt header, or not a borescope frame)"
            )
        );
    }
    assert!(decoder.decode(&with_size(&jpeg, 0, 16)).is_err());
    assert!(decoder.decode(&with_size(&jpeg, 16, 0)).is_err());
}

/// `jpeg` with its SOF0 marker code changed to `code` and its precision to `precision`.
fn with_frame_header(jpeg: &[u8], code: u8, precision: u8) -> Vec<u8> {
    let mut patched = jpeg.to_vec();
    let at = sof_size_offset(&patched);
    patched[at - 4] = code; // the marker code, before the length field
    patched[at - 1] = precision;
    patched
}

fn progressive(width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    encoder
        .encode(&gradient(width, height), width, height, ColorType::Rgb)
        .expect("encodes");
    out
}

/// One row per kind of JPEG no scope sends: refused from the frame header, before zune-jpeg
/// sees it, with the reason the counters use; baseline and extended 8-bit still decode.
#[test]
fn codings_and_sizes_no_scope_sends_are_refused_before_decoding() {
    let baseline = encode_rgb(&gradient(64, 48), 64, 48, SamplingFactor::F_2_1, 90);
    assert_eq!(check_header(&baseline).unwrap(), (64, 48));
    let real_progressive = progressive(64, 48);
    assert!(
        jpeg_decoder::Decoder::new(&real_progressive[..])
            .decode()
            .is_ok(),
        "a valid progressive JPEG"
    );
    let cases: [(&str, Vec<u8>, Option<Refusal>); 11] = [
        ("baseline", baseline.clone(), None),
        (
            "extended 8-bit",
            with_frame_header(&baseline, 0xC1, 8),
            None,
        ),
        (
            "progressive",
            real_progressive,
            Some(Refusal::Coding(Unsupported::Progressive)),
        ),
        (
            "extended 12-bit",
            with_frame_header(&baseline, 0xC1, 12),
            Some(Refusal::Coding(Unsupported::Precision)),
        ),
        (
            "lossless",
            with_frame_header(&baseline, 0xC3, 8),
            Some(Refusal::Coding(Unsupported::Lossless)),
        ),
        (
            "hierarchical",
            with_frame_header(&baseline, 0xC5, 8),
            Some(Refusal::Coding(Unsupported::Hierarchical)),
        ),
        (
            "arithmetic sequential",
            with_frame_header(&baseline, 0xC9, 8),
            Some(Refusal::Coding(Unsupported::Arithmetic)),
        ),
        (
            "arithmetic progressive",
            with_frame_header(&baseline, 0xCA, 8),
            Some(Refusal::Coding(Unsupported::Arithmetic)),
        ),
        (
            "largest accepted size",
            with_size(&baseline, MAX_SCOPE_WIDTH as u16, MAX_SCOPE_HEIGHT as u16),
            None,
        ),
        (
            "4096x4096",
            with_size(&baseline, 4096, 4096),
            Some(Refusal::TooLarge),
        ),
        (
            "one row too many",
            with_size(&baseline, 640, MAX_SCOPE_HEIGHT as u16 + 1),
            Some(Refusal::TooLarge),
        ),
    ];
    let mut decoder = Decoder::new();
    for (name, jpeg, refusal) in cases {
        let checked = check_header(&jpeg);
        assert_eq!(
            checked.as_ref().err().and_then(DecodeError::refusal),
            refusal,
            "{name}: {checked:?}"
        );
        if let Some(refusal) = refusal {
            let err = decoder.decode(&jpeg).expect_err(name);
            assert_eq!(err.refusal(), Some(refusal), "{name}: {err}");
            assert!(decoder.decode_rgb(&jpeg).is_err(), "{name}");
        } else if name != "largest accepted size" {
            decoder
                .decode(&jpeg)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Buffers grown by one large picture shrink back once pictures are small again, on the
/// plane path (4:2:2 and 4:2:0, which has its own half-height chroma) and the RGB path
/// (4:4:4).
#[test]
fn a_large_picture_does_not_keep_its_buffers() {
    for sampling in [
        SamplingFactor::F_2_1,
        SamplingFactor::F_2_2,
        SamplingFactor::F_1_1,
    ] {
        let small = encode_rgb(&gradient(320, 240), 320, 240, sampling, 90);
        let large = encode_rgb(&gradient(2560, 1440), 2560, 1440, sampling, 90);
        let mut decoder = Decoder::new();
        let held = |d: &Decoder| {
            d.frame.data.capacity()
                + d.pixels.capacity()
                + d.planar.data.capacity()
                + d.rgb_scratch.capacity()
                + d.raw_scratch.capacity()
        };
        decoder.decode(&small).expect("decodes");
        decoder.decode(&large).expect("decodes");
        decoder.decode_planar(&large).expect("decodes");
        let grown = held(&decoder);
        assert!(grown >= 2560 * 1440 * 4, "{sampling:?}: {grown}");
        decoder.decode(&small).expect("decodes");
        decoder.decode_planar(&small).expect("decodes");
        let kept = held(&decoder);
        assert!(
            kept <= 3 * KEEP_BYTES,
            "{sampling:?}: {kept} bytes kept after a small picture"
        );
        decoder.decode_rgb(&large).expect("decodes");
        decoder.decode_rgb(&small).expect("decodes");
        assert!(decoder.pixels.capacity() <= KEEP_BYTES);
    }
}

#[test]
fn garbage_and_empty_input_are_errors() {
    let mut decoder = Decoder::new();
    assert!(decoder.decode(&[]).is_err());
    assert!(decoder.decode(b"not a jpeg at all").is_err());
    let err = decoder
        .decode(&[0xFF, 0xD8, 0xFF])
        .expect_err("header only");
    assert!(err.to_string().starts_with("corrupt JPEG: "), "{err}");
}

#[test]
fn truncated_frames_are_errors() {
    let jpeg = encode_rgb(&gradient(64, 48), 64, 48, SamplingFactor::F_2_1, 90);
    let mut decoder = Decoder::new();
    // zune-jpeg alone (even strict) accepts losing the scan's last ~10 bytes and returns
    // wrong bottom-right blocks; the end-of-image check catches every cut.
    for len in 0..jpeg.len() {
        assert!(
            decoder.decode(&jpeg[..len]).is_err(),
            "truncated to {len} of {} bytes decoded without error",
            jpeg.len()
        );
    }
}

#[test]
fn bytes_after_the_end_marker_are_ignored() {
    let jpeg = encode_rgb(&gradient(16, 16), 16, 16, SamplingFactor::F_2_1, 100);
    let mut decoder = Decoder::new();
    let clean = decoder.decode(&jpeg).expect("decodes").clone();
    for filler in [&[0u8; 7][..], &[0xFF; 3], b"\xFF\xD8junk", &[0x5A; 4096]] {
        let mut padded = jpeg.clone();
        padded.extend(filler);
        assert_eq!(decoder.decode(&padded).expect("decodes"), &clean);
    }
}

#[test]
fn a_frame_that_does_not_walk_is_corrupt() {
    let mut jpeg = encode_rgb(&solid([0; 3], 16, 16), 16, 16, SamplingFactor::F_2_1, 100);
    // The first marker after SOI is replaced by junk.
    jpeg[2] = 0x00;
    let err = Decoder::new().decode(&jpeg).expect_err("not a JPEG");
    assert_eq!(
        err.to_string(),
        "corrupt JPEG: no marker at byte 2, where one belongs"
    );
}

#[test]
fn a_missing_end_marker_is_reported_as_truncation() {
    let jpeg = encode_rgb(&solid([0; 3], 16, 16), 16, 16, SamplingFactor::F_2_1, 100);
    let err = Decoder::new()
        .decode(&jpeg[..jpeg.len() - 1])
        .expect_err("truncated");
    assert!(matches!(err, DecodeError::Truncated), "{err}");
}

#[test]
fn a_good_frame_after_a_bad_one_decodes() {
    let jpeg = encode_rgb(&solid([0; 3], 16, 16), 16, 16, SamplingFactor::F_2_2, 100);
    let mut decoder = Decoder::new();
    assert!(decoder.decode(&jpeg[..jpeg.len() / 2]).is_err());
    assert!(decoder.decode(&jpeg).is_ok());
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}

/// Independent reference: jpeg-decoder to RGB, float BT.601 limited range, chroma of each
/// horizontal pair averaged, odd width padded like ours.
fn reference_yuyv(jpeg: &[u8]) -> Vec<u8> {
    let mut reference = jpeg_decoder::Decoder::new(jpeg);
    let rgb = reference.decode().expect("reference decodes");
    let info = reference.info().expect("reference info");
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    let even = w.next_multiple_of(2);
    let mut out = Vec::with_capacity(even * 2 * h);
    for row in rgb.chunks_exact(w * 3) {
        for x in (0..even).step_by(2) {
            let px = |x: usize| {
                let x = x.min(w - 1) * 3;
                bt601_limited([row[x], row[x + 1], row[x + 2]].map(f64::from))
            };
            let (a, b) = (px(x), px(x + 1));
            let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
            out.extend([a[0], (a[1] + b[1]) / 2.0, b[0], (a[2] + b[2]) / 2.0].map(q));
        }
    }
    out
}

#[test]
fn output_matches_an_independent_float_reference_above_40_db() {
    let mut decoder = Decoder::new();
    for (sampling, name) in SAMPLINGS {
        for (w, h) in [(160, 120), (33, 17)] {
            let jpeg = encode_rgb(&gradient(w, h), w, h, sampling, 95);
            let ours = decoder.decode(&jpeg).expect("decodes").data.clone();
            let db = psnr(&ours, &reference_yuyv(&jpeg));
            assert!(db > 40.0, "{name} {w}x{h}: PSNR {db:.1} dB");
        }
    }
}

fn valid_jpeg() -> Vec<u8> {
    encode_rgb(&gradient(24, 16), 24, 16, SamplingFactor::F_2_2, 80)
}

fn assert_no_panic<T>(result: Result<T, DecodeError>) {
    if let Err(err) = result {
        assert!(
            !matches!(err, DecodeError::DecoderPanicked),
            "zune-jpeg panicked"
        );
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        assert_no_panic(Decoder::new().decode(&bytes));
        let mut with_jpeg_ends = vec![0xFF, 0xD8];
        with_jpeg_ends.extend(&bytes);
        with_jpeg_ends.extend([0xFF, 0xD9]);
        assert_no_panic(Decoder::new().decode(&with_jpeg_ends));
    }

    #[test]
    fn random_bytes_after_a_jpeg_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = valid_jpeg();
        let keep = sof_size_offset(&bytes) + 16;
        bytes.truncate(keep);
        bytes.extend(tail);
        // End with EOI so the bytes that walk to it reach zune-jpeg.
        bytes.extend([0xFF, 0xD9]);
        assert_no_panic(Decoder::new().decode(&bytes));
    }

    #[test]
    fn random_scan_data_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Real headers, then random entropy-coded data stuffed as an encoder would, so
        // the walk reaches the end marker and zune-jpeg gets the scan.
        let jpeg = valid_jpeg();
        let sos = crate::jpeg::Markers::new(&jpeg)
            .map(Result::unwrap)
            .find(|segment| segment.code == crate::jpeg::marker::SOS)
            .expect("a scan");
        let mut bytes = jpeg[..sos.end].to_vec();
        for byte in data {
            bytes.push(byte);
            if byte == 0xFF {
                bytes.push(0);
            }
        }
        bytes.extend(crate::jpeg::END_OF_IMAGE);
        prop_assert_eq!(crate::jpeg::end_of_image(&bytes), Ok(bytes.len()));
        assert_no_panic(Decoder::new().decode(&bytes));
    }

    #[test]
    fn truncations_and_bit_flips_never_panic(
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..8),
    ) {
        let mut bytes = valid_jpeg();
        for (at, bit) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        assert_no_panic(Decoder::new().decode(&bytes));
        bytes.extend([0xFF, 0xD9]);
        assert_no_panic(Decoder::new().decode(&bytes));
        assert_no_panic(Decoder::new().decode_planar(&bytes));
    }
}

#[test]
fn decode_rgb_lends_the_rgb_intermediate() {
    let mut decoder = Decoder::new();
    let jpeg = encode_rgb(
        &solid([200, 40, 10], 16, 8),
        16,
        8,
        SamplingFactor::F_1_1,
        100,
    );
    let view = decoder.decode_rgb(&jpeg).expect("decodes");
    assert_eq!(
        (view.width, view.height, view.pixels.len()),
        (16, 8, 16 * 8 * 3)
    );
    for px in view.pixels.chunks_exact(3) {
        assert!(px[0].abs_diff(200) <= 3 && px[1].abs_diff(40) <= 3 && px[2].abs_diff(10) <= 3);
    }
    assert!(
        decoder.frame().data.is_empty(),
        "the YUYV frame is untouched"
    );
}

#[test]
fn decode_rgb_widens_grayscale_to_grey_rgb() {
    let view_len = {
        let mut decoder = Decoder::new();
        let view = decoder
            .decode_rgb(&encode_gray(&[128; 9 * 5], 9, 5))
            .expect("decodes");
        assert!(
            view.pixels
                .chunks_exact(3)
                .all(|p| p[0] == p[1] && p[1] == p[2] && p[0].abs_diff(128) <= 2)
        );
        view.pixels.len()
    };
    assert_eq!(view_len, 9 * 5 * 3);
}

#[test]
fn decode_rgb_rejects_what_decode_rejects() {
    let mut decoder = Decoder::new();
    assert!(decoder.decode_rgb(&[]).is_err());
    let jpeg = encode_rgb(&gradient(16, 16), 16, 16, SamplingFactor::F_2_1, 90);
    assert!(matches!(
        decoder.decode_rgb(&with_size(&jpeg, 2593, 16)),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn a_contained_decoder_panic_is_counted() {
    let before = panics_caught();
    let outcome: Result<(), DecodeError> =
        catch_unwind(|| panic!("a decoder bug")).unwrap_or_else(contained);
    assert!(matches!(outcome, Err(DecodeError::DecoderPanicked)));
    assert!(panics_caught() > before);
}

/// A packed YUYV picture split into its Y, Cb and Cr planes, one after the other.
fn yuyv_as_planes(yuyv: &[u8]) -> Vec<u8> {
    let mut planes: Vec<u8> = yuyv.iter().step_by(2).copied().collect();
    planes.extend(yuyv.iter().skip(1).step_by(4));
    planes.extend(yuyv.iter().skip(3).step_by(4));
    planes
}

/// The planes are the very samples of the YUYV picture (same conversion, not packed), for
/// every subsampling, even and odd sizes, and in grayscale.
#[test]
fn planar_output_is_the_yuyv_output_split_into_planes() {
    let mut planar = Decoder::new();
    let mut packed = Decoder::new();
    let mut jpegs = Vec::new();
    for (sampling, name) in SAMPLINGS {
        for (w, h) in [(160, 120), (33, 17), (1, 1), (2, 9), (161, 121)] {
            jpegs.push((
                format!("{name} {w}x{h}"),
                encode_rgb(&gradient(w, h), w, h, sampling, 90),
            ));
        }
    }
    for (w, h) in [(40, 30), (9, 5)] {
        let luma: Vec<u8> = (0..usize::from(w) * usize::from(h))
            .map(|i| (i * 37 % 256) as u8)
            .collect();
        jpegs.push((format!("grayscale {w}x{h}"), encode_gray(&luma, w, h)));
    }
    for (what, jpeg) in &jpegs {
        let yuyv = packed.decode(jpeg).expect("decodes").clone();
        let frame = planar.decode_planar(jpeg).expect("decodes");
        assert_eq!(
            (frame.width, frame.height),
            (yuyv.width, yuyv.height),
            "{what}"
        );
        assert!(frame.width % 2 == 0, "{what}");
        assert_eq!(frame.data.len(), frame.expected_len(), "{what}");
        assert!(
            frame.data == yuyv_as_planes(&yuyv.data),
            "{what}: planes differ"
        );
    }
}

#[test]
fn planar_output_matches_an_independent_float_reference_above_40_db() {
    let mut decoder = Decoder::new();
    for (sampling, name) in SAMPLINGS {
        for (w, h) in [(160, 120), (33, 17)] {
            let jpeg = encode_rgb(&gradient(w, h), w, h, sampling, 95);
            let ours = decoder.decode_planar(&jpeg).expect("decodes");
            let db = psnr(&ours.data, &yuyv_as_planes(&reference_yuyv(&jpeg)));
            assert!(db > 40.0, "{name} {w}x{h}: PSNR {db:.1} dB");
        }
    }
}

#[test]
fn planar_grayscale_has_squeezed_luma_and_neutral_chroma() {
    let mut decoder = Decoder::new();
    let frame = decoder
        .decode_planar(&encode_gray(&[0; 7 * 4], 7, 4))
        .expect("decodes");
    assert_eq!((frame.width, frame.height), (8, 4));
    let (y, u, v) = frame.planes();
    assert!(y.iter().all(|&l| l.abs_diff(16) <= 1), "{y:?}");
    assert!(u.iter().chain(v).all(|&c| c == 128));
}

#[test]
fn planar_decoding_rejects_what_decode_rejects_and_recovers() {
    let mut decoder = Decoder::new();
    let jpeg = encode_rgb(&gradient(16, 16), 16, 16, SamplingFactor::F_2_1, 90);
    assert!(decoder.decode_planar(&[]).is_err());
    assert!(decoder.decode_planar(b"not a jpeg at all").is_err());
    assert!(matches!(
        decoder.decode_planar(&jpeg[..jpeg.len() - 1]),
        Err(DecodeError::Truncated)
    ));
    assert!(matches!(
        decoder.decode_planar(&with_size(&jpeg, 2593, 16)),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        decoder.decode_planar(&progressive(16, 16)),
        Err(DecodeError::Unsupported(Unsupported::Progressive))
    ));
    let frame = decoder
        .decode_planar(&jpeg)
        .expect("a good frame after bad ones");
    assert_eq!((frame.width, frame.height), (16, 16));
    assert!(
        decoder.frame().data.is_empty(),
        "the YUYV frame is untouched"
    );
}

#[test]
fn same_size_planar_frames_reuse_the_buffer_and_a_large_one_gives_it_back() {
    let mut decoder = Decoder::new();
    let small = encode_rgb(&gradient(64, 48), 64, 48, SamplingFactor::F_2_1, 80);
    let large = encode_rgb(&gradient(1280, 720), 1280, 720, SamplingFactor::F_2_1, 80);
    let first = decoder
        .decode_planar(&small)
        .expect("decodes")
        .data
        .as_ptr();
    let second = decoder
        .decode_planar(&small)
        .expect("decodes")
        .data
        .as_ptr();
    assert_eq!(first, second, "same size, same buffer");
    decoder.decode_planar(&large).expect("decodes");
    let capacity = decoder
        .decode_planar(&small)
        .expect("decodes")
        .data
        .capacity();
    assert!(
        capacity <= KEEP_BYTES,
        "{capacity} bytes kept after a large frame"
    );
}

/// JPEGs ffmpeg wrote (`tests/fixtures/jpeg/make.sh`), with the chroma layouts of many
/// webcams that the test encoder does not write: (file, goes through planes).
const FFMPEG_JPEGS: [(&str, &[u8], bool); 4] = [
    (
        "4:2:2 as 2x2 + 1x2, 64x48",
        include_bytes!("../../../tests/fixtures/jpeg/ffmpeg-422-64x48.jpg"),
        true,
    ),
    (
        "4:2:2 as 2x2 + 1x2, 33x17",
        include_bytes!("../../../tests/fixtures/jpeg/ffmpeg-422-33x17.jpg"),
        true,
    ),
    (
        "4:2:0, 33x17",
        include_bytes!("../../../tests/fixtures/jpeg/ffmpeg-420-33x17.jpg"),
        true,
    ),
    (
        "4:4:4 as 1x2 throughout, 64x48",
        include_bytes!("../../../tests/fixtures/jpeg/ffmpeg-444-64x48.jpg"),
        false,
    ),
];

/// Half-width chroma, however the encoder states it, is decoded through the planes (no
/// RGB buffer is ever filled), other layouts through RGB; both match the float reference
/// and give the same samples packed and planar.
#[test]
fn webcam_chroma_layouts_take_the_plane_path_and_match_the_reference() {
    for (what, jpeg, through_planes) in FFMPEG_JPEGS {
        let mut decoder = Decoder::new();
        let yuyv = decoder.decode(jpeg).expect("decodes").clone();
        let planar = decoder.decode_planar(jpeg).expect("decodes").clone();
        assert_eq!(
            decoder.pixels.is_empty(),
            through_planes,
            "{what}: RGB buffer of {} bytes",
            decoder.pixels.len()
        );
        let db = psnr(&yuyv.data, &reference_yuyv(jpeg));
        assert!(db > 40.0, "{what}: PSNR {db:.1} dB");
        assert!(
            planar.data == yuyv_as_planes(&yuyv.data),
            "{what}: planes differ"
        );
    }
}

/// The plane path refuses exactly the damaged frames the RGB path refuses (scans cut
/// anywhere, bytes flipped anywhere), and the decoder goes on with the next good frame.
#[test]
fn plane_path_refuses_what_the_rgb_path_refuses() {
    let mut planes = Decoder::new();
    let mut rgb = Decoder::new();
    let mut refused = 0;
    for (what, jpeg, _) in FFMPEG_JPEGS.into_iter().filter(|(_, _, p)| *p) {
        let mut damaged = Vec::new();
        for at in (2..jpeg.len() - 2).step_by(7) {
            let mut cut = jpeg[..at].to_vec();
            cut.extend_from_slice(&[0xFF, 0xD9]);
            damaged.push((format!("cut at {at}"), cut));
            let mut flipped = jpeg.to_vec();
            flipped[at] ^= 0x5A;
            damaged.push((format!("byte {at} flipped"), flipped));
        }
        for (how, bytes) in &damaged {
            let by_planes = planes.decode_planar(bytes).map(|_| ());
            let by_rgb = rgb.decode_rgb(bytes).map(|_| ());
            assert_eq!(
                by_planes.is_err(),
                by_rgb.is_err(),
                "{what}, {how}: {by_planes:?} {by_rgb:?}"
            );
            assert!(
                !matches!(by_planes, Err(DecodeError::DecoderPanicked)),
                "{what}, {how}"
            );
            refused += usize::from(by_planes.is_err());
            planes
                .decode_planar(jpeg)
                .expect("a good frame after a damaged one");
        }
    }
    assert!(refused > 50, "only {refused} damaged frames refused");
}
