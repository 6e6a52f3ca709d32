//! Tiny release-mode timing of `picture::Framer` (not a test).
//!
//! `cargo run --release --example framing_timing`
//! Makes its own test JPEGs (a colourful gradient with fine detail, q90, 4:2:2) and prints
//! ms per frame for the bare `Decoder::decode` of each source and for framing it.
//!
//! One run on the 2-core EPYC (AVX2) dev machine, best of 3 x 100, ms per frame
//! (figures move 30 % between runs here: read the ratios):
//!   case                              decode   framed   ratio
//!   640x480 -> 1280x720                0.684    2.147   3.14x
//!   1920x1080 -> 1280x720              4.719    7.568   1.60x
//!   1280x720 -> 1280x720 (identity)    1.888    1.894   1.00x
//!   1280x720 -> 1280x720 mirror        1.887    2.595   1.37x
//!   640x480 rot90 -> 1280x720          0.638    1.874   2.93x
//!   1920x1080 rot90 -> 1280x720        4.639    5.812   1.25x
//!   no-signal card, first render: 0.15 ms
//! The identity path costs nothing over the plain decode. Scaling (scalar bilinear, ~1.3 ms
//! for 640x480 -> 960x720, ~2.8 ms for 1920x1080 -> 1280x720) dominates the rest; every
//! case stays far inside a 33 ms (30 fps) frame budget on one core. A 16-bit horizontal
//! intermediate measured 4.0x the decode for 640x480 -> 1280x720, against 3.1x for the
//! 8-bit one kept (separate runs).
use scopecam::picture::decode::Decoder;
use scopecam::picture::{Framer, Geometry, Placement, Rotation};
use std::time::{Duration, Instant};

fn best_of<F: FnMut()>(runs: u32, mut f: F) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..runs {
            f();
        }
        best = best.min(start.elapsed() / runs);
    }
    best.as_secs_f64() * 1000.0
}

fn test_jpeg(width: u16, height: u16) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let checker = if (x / 8 + y / 8) % 2 == 0 { 40 } else { 0 };
            rgb.push((x * 215 / w + checker) as u8);
            rgb.push((y * 215 / h + checker) as u8);
            rgb.push(((x ^ y) & 0xFF) as u8);
        }
    }
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_1);
    encoder
        .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("test JPEG encodes");
    out
}

fn main() {
    let output = Geometry {
        width: 1280,
        height: 720,
    };
    let runs = 100;
    let cases = [
        ("640x480 -> 1280x720", 640, 480, Rotation::None, false),
        ("1920x1080 -> 1280x720", 1920, 1080, Rotation::None, false),
        (
            "1280x720 -> 1280x720 (identity)",
            1280,
            720,
            Rotation::None,
            false,
        ),
        (
            "1280x720 -> 1280x720 mirror",
            1280,
            720,
            Rotation::None,
            true,
        ),
        ("640x480 rot90 -> 1280x720", 640, 480, Rotation::Cw90, false),
        (
            "1920x1080 rot90 -> 1280x720",
            1920,
            1080,
            Rotation::Cw90,
            false,
        ),
    ];
    println!("ms per frame, best of 3 x {runs}:");
    println!(
        "{:<34} {:>8} {:>8} {:>7}",
        "case", "decode", "framed", "ratio"
    );
    for (name, w, h, rotation, mirror) in cases {
        let jpeg = test_jpeg(w, h);
        let mut decoder = Decoder::new();
        let t_decode = best_of(runs, || {
            decoder.decode(&jpeg).expect("decodes");
        });
        let mut framer = Framer::new(Placement {
            rotation,
            mirror,
            output,
        });
        let t_framed = best_of(runs, || {
            framer.frame_jpeg(&mut decoder, &jpeg).expect("frames");
        });
        println!(
            "{name:<34} {t_decode:>8.3} {t_framed:>8.3} {:>6.2}x",
            t_framed / t_decode
        );
    }
    let mut framer = Framer::new(Placement {
        rotation: Rotation::None,
        mirror: false,
        output,
    });
    let start = Instant::now();
    framer.no_signal();
    println!(
        "no-signal card, first render: {:.3} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
}
