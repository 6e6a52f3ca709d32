//! CPU time per frame of the bridge's in-process frame path over an MJPEG file, beside
//! zune-jpeg's bare decode of the same frames (not a test; `bench/compare.sh` runs it next
//! to ffmpeg).
//!
//! `cargo run --release --example frame_path_cpu -- FILE.mjpeg [--output WxH] [--passes N]`
//!
//! Every frame is cut into 1450-byte fragments as the scope sends them (outside the
//! timing). Timed, each as the best of N passes (default 3) over all frames, in process
//! CPU time (`CLOCK_PROCESS_CPUTIME_ID`; everything runs on this one thread):
//! - `zune_rgb`: zune-jpeg alone, default options, into a reused RGB buffer;
//! - `decode`: `Decoder::decode` alone (zune-jpeg + limited-range YUYV conversion);
//! - `frame_path`: parse each datagram, `Reassembler::push`, decode (or, with `--output`,
//!   `Framer::frame_jpeg` to that camera size, as for v4l2), copy the YUYV into a
//!   pre-sized buffer (a null sink that still touches every byte), recycle the buffer.
//!
//! Prints one `name ms_per_frame` line per measurement (machine-readable), then ratios.

use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use scopecam::jpeg::stream::split_jpegs;
use scopecam::picture::decode::Decoder;
use scopecam::picture::{Framer, Geometry, Placement, Rotation};
use scopecam::scope::protocol::Fragment;
use scopecam::scope::protocol::video::fragment_frame;
use scopecam::scope::reassembly::{Reassembler, ReassemblyLimits};
use zune_core::bytestream::ZCursor;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

const FRAGMENT_PAYLOAD: usize = 1450;

fn cpu_now() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).expect("process CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Best of `passes` runs of `pass`, in ms of process CPU time per frame.
fn best_of(passes: u32, frames: usize, mut pass: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..passes {
        let start = cpu_now();
        pass();
        best = best.min(cpu_now() - start);
    }
    best.as_secs_f64() * 1000.0 / frames as f64
}

struct Args {
    file: String,
    output: Option<Geometry>,
    passes: u32,
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut output = None;
    let mut passes = 3;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--output" => {
                let size = args.next().expect("--output WxH");
                let (w, h) = size.split_once('x').expect("--output WxH");
                output = Some(Geometry {
                    width: w.parse().expect("width"),
                    height: h.parse().expect("height"),
                });
            }
            "--passes" => {
                passes = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--passes N")
            }
            _ => file = Some(arg),
        }
    }
    Args {
        file: file.expect("usage: frame_path_cpu FILE.mjpeg [--output WxH] [--passes N]"),
        output,
        passes,
    }
}

fn main() {
    let args = parse_args();
    let data = std::fs::read(&args.file).expect("reads the MJPEG file");
    let jpegs: Vec<&[u8]> = split_jpegs(&data).into_iter().map(|r| &data[r]).collect();
    assert!(!jpegs.is_empty(), "no JPEG frames in {}", args.file);
    let n = jpegs.len();
    let datagrams: Vec<Vec<Vec<u8>>> = jpegs
        .iter()
        .map(|jpeg| fragment_frame(jpeg, 0, FRAGMENT_PAYLOAD))
        .collect();
    let largest = jpegs.iter().map(|j| j.len()).max().unwrap_or(0);

    // zune-jpeg alone.
    let mut rgb = Vec::new();
    let zune_rgb = best_of(args.passes, n, || {
        for jpeg in &jpegs {
            let mut d =
                JpegDecoder::new_with_options(ZCursor::new(jpeg), DecoderOptions::default());
            d.decode_headers().expect("headers");
            let size = d.output_buffer_size().expect("size");
            rgb.resize(size, 0);
            d.decode_into(&mut rgb).expect("decodes");
        }
    });

    // The bridge's decoder alone.
    let mut decoder = Decoder::new();
    let decode = best_of(args.passes, n, || {
        for jpeg in &jpegs {
            std::hint::black_box(decoder.decode(jpeg).expect("decodes").data.len());
        }
    });

    // The whole in-process frame path.
    let mut reassembler = Reassembler::new(ReassemblyLimits {
        max_frame_bytes: largest.max(ReassemblyLimits::default().max_frame_bytes),
        ..ReassemblyLimits::default()
    });
    // The reassembler's clock advances one 30 fps frame interval per frame, so its
    // id-reuse and timeout rules see a live stream however fast this loop runs.
    let mut clock = Instant::now();
    let mut frame_id = 0u8;
    let mut framer = args.output.map(|output| {
        Framer::new(Placement {
            rotation: Rotation::None,
            mirror: false,
            output,
        })
    });
    let mut sink: Vec<u8> = Vec::new();
    let mut written = 0usize;
    let frame_path = best_of(args.passes, n, || {
        for frame in &datagrams {
            clock += Duration::from_millis(33);
            let now = clock;
            frame_id = frame_id.wrapping_add(1);
            let mut complete = None;
            for datagram in frame {
                let mut fragment = Fragment::parse(datagram).expect("fragment parses");
                // Ids keep counting up across passes, as a live stream's do.
                fragment.header.frame_id = frame_id;
                if let Some(done) = reassembler.push(&fragment, now) {
                    complete = Some(done);
                }
            }
            let complete = complete.expect("every frame completes");
            let yuyv = match &mut framer {
                Some(framer) => framer.frame_jpeg(&mut decoder, &complete.jpeg),
                None => decoder.decode(&complete.jpeg),
            }
            .expect("decodes");
            sink.clear();
            sink.extend_from_slice(&yuyv.data);
            written += 1;
            reassembler.recycle(complete.jpeg);
        }
    });
    assert_eq!(
        written,
        n * args.passes as usize,
        "every frame went through"
    );

    let what = match args.output {
        Some(g) => format!("framed to {}x{}", g.width, g.height),
        None => "decoded at source size".to_owned(),
    };
    eprintln!(
        "{n} frames from {}, {what}, best of {} passes, ms of CPU per frame:",
        args.file, args.passes
    );
    println!("zune_rgb {zune_rgb:.3}");
    println!("decode {decode:.3}");
    println!("frame_path {frame_path:.3}");
    eprintln!(
        "frame_path / zune_rgb = {:.2}x, decode / zune_rgb = {:.2}x",
        frame_path / zune_rgb,
        decode / zune_rgb
    );
}
