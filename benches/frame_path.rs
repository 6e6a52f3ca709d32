//! Criterion benchmarks of every step of the frame path, over scope-like frames.
//!
//! `cargo bench --bench frame_path` (a few minutes on 2 cores); one group:
//! `cargo bench --bench frame_path -- decode/`. Test frames are made at start: a smooth
//! vignetted gradient (a lit pipe wall) with fine texture, sensor noise and hard-edged
//! shapes, encoded with jpeg-encoder at quality 82 in 4:2:2 and 4:2:0, at 640x480,
//! 1280x720 and 1920x1080 (about the size of the scope's own frames at webcam quality).
//! Figures move 30 % between runs on shared machines: compare within one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scopecam::picture::decode::{Decoder, RgbScratch, rgb_to_yuyv_limited};
use scopecam::picture::{Framer, Geometry, Placement, Rotation, rotate_rgb};
use scopecam::scope::protocol::Fragment;
use scopecam::scope::protocol::video::{FragmentHeader, fragment_frame};
use scopecam::scope::reassembly::{Reassembler, ReassemblyLimits};

/// The simulator's (and the real scope's) fragment payload size.
const FRAGMENT_PAYLOAD: usize = 1450;
const SIZES: [(u16, u16); 3] = [(640, 480), (1280, 720), (1920, 1080)];

#[derive(Clone, Copy)]
enum Chroma {
    S422,
    S420,
}

impl Chroma {
    fn label(self) -> &'static str {
        match self {
            Chroma::S422 => "422",
            Chroma::S420 => "420",
        }
    }
}

struct TestFrame {
    name: String,
    width: u32,
    height: u32,
    jpeg: Vec<u8>,
}

/// A deterministic xorshift for the (mild, +-2) sensor noise, so every run encodes the same
/// bytes. With it the 1280x720 4:2:2 frame is about 57 KB, like the scope's own frames.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> i32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 % 5) as i32 - 2
    }
}

/// Natural-looking RGB: vignetted colour gradient, texture, noise, and edges.
fn scene_rgb(width: u16, height: u16) -> Vec<u8> {
    let (w, h) = (f32::from(width), f32::from(height));
    let mut noise = Noise(0x9E37_79B9);
    let mut rgb = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (f32::from(x) / w, f32::from(y) / h);
            let (dx, dy) = (fx - 0.5, (fy - 0.5) * h / w);
            let radius = (dx * dx + dy * dy).sqrt();
            let light = (1.0 - radius * 1.4).clamp(0.15, 1.0);
            let texture = (f32::from(x) * 0.11).sin() * (f32::from(y) * 0.07).sin() * 8.0;
            // A dark crack and a bright rivet: hard edges JPEG has to keep.
            let crack = (fy - 0.3 - 0.25 * fx).abs() < 0.004;
            let rivet = ((fx - 0.7).powi(2) + (fy - 0.6).powi(2)).sqrt() < 0.05;
            let base = [
                170.0 + 60.0 * (fx * 3.0 + fy).sin(),
                140.0 + 50.0 * (fy * 2.5).cos(),
                100.0 + 40.0 * (fx * 2.0 - fy * 1.5).sin(),
            ];
            let n = noise.next() as f32;
            for channel in base {
                let value = if crack {
                    20.0
                } else if rivet {
                    235.0
                } else {
                    channel * light + texture + n
                };
                rgb.push(value.clamp(0.0, 255.0) as u8);
            }
        }
    }
    rgb
}

fn encode(rgb: &[u8], width: u16, height: u16, chroma: Chroma) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 82);
    encoder.set_sampling_factor(match chroma {
        Chroma::S422 => jpeg_encoder::SamplingFactor::F_2_1,
        Chroma::S420 => jpeg_encoder::SamplingFactor::F_2_2,
    });
    encoder
        .encode(rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("test JPEG encodes");
    out
}

fn test_frames() -> Vec<TestFrame> {
    let mut frames = Vec::new();
    for (width, height) in SIZES {
        let rgb = scene_rgb(width, height);
        for chroma in [Chroma::S422, Chroma::S420] {
            let jpeg = encode(&rgb, width, height, chroma);
            frames.push(TestFrame {
                name: format!("{width}x{height}_{}", chroma.label()),
                width: u32::from(width),
                height: u32::from(height),
                jpeg,
            });
        }
    }
    frames
}

/// One frame's fragments as the scope sends them (datagram bytes).
fn datagrams(jpeg: &[u8], shuffled: bool) -> Vec<Vec<u8>> {
    let mut datagrams = fragment_frame(jpeg, 0, FRAGMENT_PAYLOAD);
    if shuffled {
        // A fixed, thorough reordering: reversed halves interleaved.
        let n = datagrams.len();
        let mut order: Vec<usize> = (0..n).rev().step_by(2).collect();
        order.extend((0..n).step_by(2));
        order.dedup();
        let mut seen = vec![false; n];
        let order: Vec<usize> = order
            .into_iter()
            .filter(|&i| !std::mem::replace(&mut seen[i], true))
            .collect();
        datagrams = order.into_iter().map(|i| datagrams[i].clone()).collect();
    }
    datagrams
}

/// The scope's frame interval: the reassembler's clock advances by this per frame, so its
/// id-reuse and timeout rules see a 30 fps stream however fast the benchmark loops.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// Feeds a whole frame (with the next frame id each time) and returns its JPEG buffer.
struct FrameFeeder {
    reassembler: Reassembler,
    headers: Vec<FragmentHeader>,
    datagrams: Vec<Vec<u8>>,
    next_id: u8,
    clock: Instant,
}

impl FrameFeeder {
    fn new(jpeg: &[u8], shuffled: bool) -> Self {
        let datagrams = datagrams(jpeg, shuffled);
        let headers = datagrams
            .iter()
            .map(|d| Fragment::parse(d).expect("fragment parses").header)
            .collect();
        FrameFeeder {
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            headers,
            datagrams,
            next_id: 0,
            clock: Instant::now(),
        }
    }

    fn feed(&mut self) -> Vec<u8> {
        let frame_id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.clock += FRAME_INTERVAL;
        let now = self.clock;
        let mut complete = None;
        for (header, datagram) in self.headers.iter().zip(&self.datagrams) {
            let fragment = Fragment {
                header: FragmentHeader {
                    frame_id,
                    ..*header
                },
                payload: &datagram[scopecam::scope::protocol::video::HEADER_LEN..],
            };
            if let Some(frame) = self.reassembler.push(&fragment, now) {
                complete = Some(frame);
            }
        }
        complete.expect("the frame completes").jpeg
    }
}

/// Small samples: the whole suite stays within a few minutes on 2 cores.
fn configure() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
}

fn reassembly(c: &mut Criterion, frames: &[TestFrame]) {
    let mut group = c.benchmark_group("reassembly");
    for frame in frames.iter().filter(|f| f.name.ends_with("422")) {
        group.throughput(Throughput::Bytes(frame.jpeg.len() as u64));
        for (order, shuffled) in [("in_order", false), ("shuffled", true)] {
            let mut feeder = FrameFeeder::new(&frame.jpeg, shuffled);
            group.bench_function(BenchmarkId::new(order, &frame.name), |b| {
                b.iter(|| {
                    let jpeg = feeder.feed();
                    black_box(jpeg.len());
                    feeder.reassembler.recycle(jpeg);
                })
            });
        }
    }
    group.finish();
}

fn decode(c: &mut Criterion, frames: &[TestFrame]) {
    let mut group = c.benchmark_group("decode");
    for frame in frames {
        let mut decoder = Decoder::new();
        group.bench_function(BenchmarkId::new("yuyv", &frame.name), |b| {
            b.iter(|| black_box(decoder.decode(&frame.jpeg).expect("decodes").data.len()))
        });
        group.bench_function(BenchmarkId::new("planar", &frame.name), |b| {
            b.iter(|| {
                black_box(
                    decoder
                        .decode_planar(&frame.jpeg)
                        .expect("decodes")
                        .data
                        .len(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("rgb", &frame.name), |b| {
            b.iter(|| {
                black_box(
                    decoder
                        .decode_rgb(&frame.jpeg)
                        .expect("decodes")
                        .pixels
                        .len(),
                )
            })
        });
    }
    group.finish();
}

fn convert(c: &mut Criterion, frames: &[TestFrame]) {
    let mut group = c.benchmark_group("convert_rgb_to_yuyv");
    for frame in frames.iter().filter(|f| f.name.ends_with("422")) {
        let mut decoder = Decoder::new();
        let rgb = decoder
            .decode_rgb(&frame.jpeg)
            .expect("decodes")
            .pixels
            .to_vec();
        let mut scratch = RgbScratch::default();
        let mut yuyv = vec![0u8; frame.width as usize * 2 * frame.height as usize];
        group.bench_function(&frame.name, |b| {
            b.iter(|| {
                rgb_to_yuyv_limited(&rgb, frame.width, frame.height, &mut scratch, &mut yuyv)
                    .expect("converts");
                black_box(yuyv[0]);
            })
        });
    }
    group.finish();
}

fn camera(rotation: Rotation) -> Framer {
    Framer::new(Placement {
        rotation,
        mirror: false,
        output: Geometry {
            width: 1280,
            height: 720,
        },
    })
}

fn framing(c: &mut Criterion, frames: &[TestFrame]) {
    let mut group = c.benchmark_group("frame_to_1280x720");
    for frame in frames.iter().filter(|f| f.name.ends_with("422")) {
        let mut decoder = Decoder::new();
        let mut framer = camera(Rotation::None);
        group.bench_function(&frame.name, |b| {
            b.iter(|| {
                let out = framer
                    .frame_jpeg(&mut decoder, &frame.jpeg)
                    .expect("frames");
                black_box(out.data.len())
            })
        });
    }
    group.finish();
}

fn rotation(c: &mut Criterion, frames: &[TestFrame]) {
    let mut group = c.benchmark_group("rotate_rgb_cw90");
    for frame in frames.iter().filter(|f| f.name.ends_with("422")) {
        let mut decoder = Decoder::new();
        let rgb = decoder
            .decode_rgb(&frame.jpeg)
            .expect("decodes")
            .pixels
            .to_vec();
        let mut rotated = Vec::new();
        group.bench_function(&frame.name, |b| {
            b.iter(|| {
                rotate_rgb(
                    &rgb,
                    frame.width,
                    frame.height,
                    Rotation::Cw90,
                    false,
                    &mut rotated,
                );
                black_box(rotated.len())
            })
        });
    }
    group.finish();
}

/// Fragments -> Reassembler -> decode (or frame to a 1280x720 camera) -> copy into a
/// pre-sized Vec (a null-like sink that still touches every output byte) -> recycle.
fn whole_path(c: &mut Criterion, frames: &[TestFrame]) {
    let mut group = c.benchmark_group("whole_path");
    for frame in frames {
        let mut feeder = FrameFeeder::new(&frame.jpeg, false);
        let mut decoder = Decoder::new();
        let mut sink: Vec<u8> = Vec::with_capacity(1920 * 2 * 1080);
        group.bench_function(BenchmarkId::new("decode_to_vec", &frame.name), |b| {
            b.iter(|| {
                let jpeg = feeder.feed();
                let yuyv = decoder.decode(&jpeg).expect("decodes");
                sink.clear();
                sink.extend_from_slice(&yuyv.data);
                feeder.reassembler.recycle(jpeg);
                black_box(sink.len())
            })
        });
        if frame.name.ends_with("422") {
            let mut framer = camera(Rotation::None);
            group.bench_function(BenchmarkId::new("camera_1280x720", &frame.name), |b| {
                b.iter(|| {
                    let jpeg = feeder.feed();
                    let yuyv = framer.frame_jpeg(&mut decoder, &jpeg).expect("frames");
                    sink.clear();
                    sink.extend_from_slice(&yuyv.data);
                    feeder.reassembler.recycle(jpeg);
                    black_box(sink.len())
                })
            });
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let frames = test_frames();
    for frame in &frames {
        eprintln!("test frame {}: {} bytes", frame.name, frame.jpeg.len());
    }
    reassembly(c, &frames);
    decode(c, &frames);
    convert(c, &frames);
    framing(c, &frames);
    rotation(c, &frames);
    whole_path(c, &frames);
}

criterion_group! {
    name = frame_path;
    config = configure();
    targets = benches
}
criterion_main!(frame_path);
