use super::*;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use proptest::prelude::*;

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

fn encode(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 95);
    encoder.set_sampling_factor(SamplingFactor::F_1_1);
    encoder
        .encode(rgb, width as u16, height as u16, ColorType::Rgb)
        .expect("test JPEG encodes");
    out
}

/// A JPEG painted by `colour_at(x, y)`.
fn picture(width: u32, height: u32, colour_at: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let rgb: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .flat_map(|(x, y)| colour_at(x, y))
        .collect();
    encode(&rgb, width, height)
}

fn solid(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
    picture(width, height, |_, _| colour)
}

fn placement(rotation: Rotation, mirror: bool, width: u32, height: u32) -> Placement {
    Placement {
        rotation,
        mirror,
        output: Geometry { width, height },
    }
}

fn frame(placement: Placement, jpeg: &[u8]) -> YuyvFrame {
    Framer::new(placement)
        .frame_jpeg(&mut Decoder::new(), jpeg)
        .expect("frames")
        .clone()
}

/// (Y, U, V) of pixel (x, y): its own luma and its pair's chroma.
fn yuv_at(frame: &YuyvFrame, x: u32, y: u32) -> [u8; 3] {
    let pair = (y * frame.width + (x & !1)) as usize * 2;
    let d = &frame.data[pair..pair + 4];
    [d[(x & 1) as usize * 2], d[1], d[3]]
}

fn is_black_bar(frame: &YuyvFrame, x: u32, y: u32) -> bool {
    yuv_at(frame, x, y) == [16, 128, 128]
}

/// Limited-range BT.601 red is about (81, 90, 240), blue about (41, 240, 110).
fn is_red(yuv: [u8; 3]) -> bool {
    yuv[2] > 200 && yuv[1] < 120
}

fn is_blue(yuv: [u8; 3]) -> bool {
    yuv[1] > 200 && yuv[2] < 140
}

#[test]
fn rotation_from_degrees_accepts_quarter_turns_only() {
    assert_eq!(Rotation::from_degrees(0), Some(Rotation::None));
    assert_eq!(Rotation::from_degrees(90), Some(Rotation::Cw90));
    assert_eq!(Rotation::from_degrees(180), Some(Rotation::Cw180));
    assert_eq!(Rotation::from_degrees(270), Some(Rotation::Cw270));
    for bad in [1, 45, 360, 450, u16::MAX] {
        assert_eq!(Rotation::from_degrees(bad), None, "{bad}");
    }
}

#[test]
fn identity_placement_gives_exactly_the_decoders_yuyv() {
    let jpeg = picture(96, 64, |x, y| {
        [(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8]
    });
    let expected = Decoder::new().decode(&jpeg).expect("decodes").clone();
    assert_eq!(
        frame(placement(Rotation::None, false, 96, 64), &jpeg),
        expected
    );
}

#[test]
fn four_by_three_into_hd_is_pillarboxed_by_160_pixel_bars() {
    let out = frame(
        placement(Rotation::None, false, 1280, 720),
        &solid(640, 480, WHITE),
    );
    assert_eq!(
        (out.width, out.height, out.data.len()),
        (1280, 720, 1280 * 2 * 720)
    );
    for y in [0, 359, 719] {
        for x in (0..160).chain(1120..1280) {
            assert!(
                is_black_bar(&out, x, y),
                "bar at {x},{y}: {:?}",
                yuv_at(&out, x, y)
            );
        }
        for x in 160..1120 {
            let [luma, u, v] = yuv_at(&out, x, y);
            assert!(
                luma > 225 && u.abs_diff(128) <= 3 && v.abs_diff(128) <= 3,
                "content at {x},{y}"
            );
        }
    }
}

#[test]
fn hd_into_four_by_three_is_letterboxed_top_and_bottom() {
    let out = frame(
        placement(Rotation::None, false, 640, 480),
        &solid(1280, 720, WHITE),
    );
    for x in [0, 320, 639] {
        for y in (0..60).chain(420..480) {
            assert!(is_black_bar(&out, x, y), "bar at {x},{y}");
        }
        for y in 60..420 {
            assert!(yuv_at(&out, x, y)[0] > 225, "content at {x},{y}");
        }
    }
}

/// Left half red, right half blue.
fn red_left_blue_right() -> Vec<u8> {
    picture(64, 32, |x, _| if x < 32 { RED } else { BLUE })
}

/// Top half red, bottom half blue.
fn red_top_blue_bottom() -> Vec<u8> {
    picture(64, 32, |_, y| if y < 16 { RED } else { BLUE })
}

/// Colours at the centres of the top and bottom halves of the content.
fn top_and_bottom(out: &YuyvFrame) -> ([u8; 3], [u8; 3]) {
    let x = out.width / 2;
    (
        yuv_at(out, x, out.height / 4),
        yuv_at(out, x, out.height * 3 / 4),
    )
}

/// Colours at the centres of the left and right halves of the content (square output).
fn left_and_right(out: &YuyvFrame) -> ([u8; 3], [u8; 3]) {
    let y = out.height / 2;
    (
        yuv_at(out, out.width * 3 / 8, y),
        yuv_at(out, out.width * 5 / 8, y),
    )
}

#[test]
fn clockwise_90_puts_the_left_side_on_top() {
    let out = frame(
        placement(Rotation::Cw90, false, 64, 64),
        &red_left_blue_right(),
    );
    let (top, bottom) = top_and_bottom(&out);
    assert!(
        is_red(top) && is_blue(bottom),
        "top {top:?} bottom {bottom:?}"
    );
    // 64x32 turned is 32x64: centred with 16-pixel bars.
    assert!(is_black_bar(&out, 15, 32) && is_black_bar(&out, 48, 32));
    assert!(!is_black_bar(&out, 16, 32) && !is_black_bar(&out, 47, 32));
}

#[test]
fn clockwise_270_puts_the_right_side_on_top() {
    let out = frame(
        placement(Rotation::Cw270, false, 64, 64),
        &red_left_blue_right(),
    );
    let (top, bottom) = top_and_bottom(&out);
    assert!(
        is_blue(top) && is_red(bottom),
        "top {top:?} bottom {bottom:?}"
    );
}

#[test]
fn half_turn_swaps_left_and_right_and_top_and_bottom() {
    let out = frame(
        placement(Rotation::Cw180, false, 64, 64),
        &red_left_blue_right(),
    );
    let (left, right) = left_and_right(&out);
    assert!(
        is_blue(left) && is_red(right),
        "left {left:?} right {right:?}"
    );
    let out = frame(
        placement(Rotation::Cw180, false, 64, 64),
        &red_top_blue_bottom(),
    );
    let (top, bottom) = (yuv_at(&out, 32, 20), yuv_at(&out, 32, 44));
    assert!(
        is_blue(top) && is_red(bottom),
        "top {top:?} bottom {bottom:?}"
    );
}

#[test]
fn mirror_swaps_left_and_right_only() {
    let out = frame(
        placement(Rotation::None, true, 64, 64),
        &red_left_blue_right(),
    );
    let (left, right) = left_and_right(&out);
    assert!(
        is_blue(left) && is_red(right),
        "left {left:?} right {right:?}"
    );
    let out = frame(
        placement(Rotation::None, true, 64, 64),
        &red_top_blue_bottom(),
    );
    let (top, bottom) = (yuv_at(&out, 32, 20), yuv_at(&out, 32, 44));
    assert!(
        is_red(top) && is_blue(bottom),
        "top {top:?} bottom {bottom:?}"
    );
}

#[test]
fn mirror_applies_after_rotation() {
    // Clockwise, the source's top ends up on the right; mirrored after that, on the left.
    let turned = frame(
        placement(Rotation::Cw90, false, 64, 64),
        &red_top_blue_bottom(),
    );
    let (left, right) = left_and_right(&turned);
    assert!(
        is_blue(left) && is_red(right),
        "left {left:?} right {right:?}"
    );
    let both = frame(
        placement(Rotation::Cw90, true, 64, 64),
        &red_top_blue_bottom(),
    );
    let (left, right) = left_and_right(&both);
    assert!(
        is_red(left) && is_blue(right),
        "left {left:?} right {right:?}"
    );
}

#[test]
fn rotation_works_whether_turned_before_or_after_scaling() {
    // Small source into a big output turns before scaling; big into small turns after.
    for (width, height) in [(128, 128), (16, 16)] {
        let out = frame(
            placement(Rotation::Cw90, false, width, height),
            &red_left_blue_right(),
        );
        let (top, bottom) = top_and_bottom(&out);
        assert!(
            is_red(top) && is_blue(bottom),
            "{width}x{height}: {top:?} {bottom:?}"
        );
    }
}

#[test]
fn odd_source_sizes_frame_with_black_bars() {
    let out = frame(
        placement(Rotation::None, false, 1280, 720),
        &solid(33, 17, WHITE),
    );
    assert_eq!(out.data.len(), 1280 * 2 * 720);
    // 33x17 scaled to 720 high is 1397.6 wide: full width, bars above and below.
    assert!(is_black_bar(&out, 640, 0) && is_black_bar(&out, 640, 719));
    assert!(yuv_at(&out, 640, 360)[0] > 225);
}

#[test]
fn extreme_sizes_give_valid_frames() {
    let mut framer = Framer::new(placement(Rotation::None, false, 1280, 720));
    let mut decoder = Decoder::new();
    // The largest scope pictures decoded: 2592 wide, 1944 high.
    for (w, h) in [(1, 1), (2592, 16), (16, 1944), (2592, 1), (1, 1944), (3, 1)] {
        let out = framer
            .frame_jpeg(&mut decoder, &solid(w, h, WHITE))
            .expect("frames");
        assert_eq!(out.data.len(), 1280 * 2 * 720, "{w}x{h}");
        assert!(
            out.data.iter().step_by(2).any(|&y| y > 225),
            "{w}x{h}: some content"
        );
    }
}

#[test]
fn bars_are_repainted_when_the_source_size_changes() {
    let mut framer = Framer::new(placement(Rotation::None, false, 1280, 720));
    let mut decoder = Decoder::new();
    framer
        .frame_jpeg(&mut decoder, &solid(1280, 720, WHITE))
        .expect("frames");
    let out = framer
        .frame_jpeg(&mut decoder, &solid(640, 480, WHITE))
        .expect("frames");
    assert!(is_black_bar(out, 0, 0) && is_black_bar(out, 1279, 719));
    let out = framer
        .frame_jpeg(&mut decoder, &solid(1280, 360, WHITE))
        .expect("frames");
    assert!(is_black_bar(out, 0, 0) && is_black_bar(out, 100, 719));
    assert!(
        !is_black_bar(out, 0, 360),
        "the old bars were covered by new content"
    );
}

#[test]
fn same_size_frames_reuse_every_buffer() {
    let mut framer = Framer::new(placement(Rotation::Cw90, true, 320, 240));
    let mut decoder = Decoder::new();
    let jpeg = red_left_blue_right();
    framer.frame_jpeg(&mut decoder, &jpeg).expect("frames");
    let pointers = |f: &Framer| {
        (
            f.canvas.output.data.as_ptr(),
            f.canvas.content_yuyv.as_ptr(),
            f.work.scaled.as_ptr(),
            f.work.rotated.as_ptr(),
        )
    };
    let before = pointers(&framer);
    framer.frame_jpeg(&mut decoder, &jpeg).expect("frames");
    assert_eq!(pointers(&framer), before);
}

#[test]
fn last_is_the_last_good_frame() {
    let mut framer = Framer::new(placement(Rotation::None, false, 64, 48));
    let mut decoder = Decoder::new();
    assert!(framer.last().is_none());
    let good = framer
        .frame_jpeg(&mut decoder, &solid(64, 48, WHITE))
        .expect("frames")
        .clone();
    assert!(framer.frame_jpeg(&mut decoder, b"garbage").is_err());
    assert_eq!(framer.last(), Some(&good));
}

#[test]
fn no_signal_is_a_readable_card_at_the_output_size() {
    let mut framer = Framer::new(placement(Rotation::Cw90, false, 1280, 720));
    let card = framer.no_signal().clone();
    assert_eq!(
        (card.width, card.height, card.data.len()),
        (1280, 720, 1280 * 2 * 720)
    );
    assert!(
        card.data.iter().step_by(2).any(|&y| y == 235),
        "white letters"
    );
    assert_eq!(
        yuv_at(&card, 0, 0),
        no_signal::BACKGROUND,
        "background in the corner"
    );
    assert_ne!(yuv_at(&card, 0, 0), [16, 128, 128], "not black");
    assert!(
        std::ptr::eq(framer.no_signal(), framer.no_signal()),
        "cached"
    );
}

#[test]
fn bad_output_geometries_are_corrected_not_refused() {
    for (w, h, expected) in [
        (641, 0, (640, 1)),
        (0, 0, (2, 1)),
        (1, 5, (2, 5)),
        (9999, 9999, (4096, 4096)),
    ] {
        let mut framer = Framer::new(placement(Rotation::None, false, w, h));
        assert_eq!(
            framer.output(),
            Geometry {
                width: expected.0,
                height: expected.1
            }
        );
        let out = framer
            .frame_jpeg(&mut Decoder::new(), &solid(8, 8, WHITE))
            .expect("frames");
        assert_eq!(out.data.len(), (expected.0 * 2 * expected.1) as usize);
        assert_eq!(
            framer.no_signal().data.len(),
            (expected.0 * 2 * expected.1) as usize
        );
    }
}

fn any_rotation() -> impl Strategy<Value = Rotation> {
    prop_oneof![
        Just(Rotation::None),
        Just(Rotation::Cw90),
        Just(Rotation::Cw180),
        Just(Rotation::Cw270),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_sizes_give_a_valid_output(
        (sw, sh) in (1u32..=200, 1u32..=200),
        (ow, oh) in (0u32..=300, 0u32..=300),
        rotation in any_rotation(),
        mirror in any::<bool>(),
    ) {
        let mut framer = Framer::new(placement(rotation, mirror, ow, oh));
        let Geometry { width, height } = framer.output();
        prop_assert!(width % 2 == 0 && width >= 2 && height >= 1);
        let out = framer
            .frame_jpeg(&mut Decoder::new(), &solid(sw, sh, WHITE))
            .expect("frames");
        prop_assert_eq!((out.width, out.height), (width, height));
        prop_assert_eq!(out.data.len(), (width * 2 * height) as usize);
        prop_assert!(out.data.iter().step_by(2).any(|&y| y > 200), "some content shows");
        prop_assert!(out.data.iter().step_by(2).all(|&y| y == 16 || y > 200), "bars or white only");
    }
}
