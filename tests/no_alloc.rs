//! Steady state allocates nothing per frame that we control: a counting global allocator
//! watches the frame path (fragments -> Reassembler -> Decoder -> y4m sink, or Framer ->
//! a camera-like sink -> buffer recycled) once frames keep the same size.
//!
//! The one residue is inside zune-jpeg, which builds a fresh `JpegDecoder` (its component
//! and Huffman tables, per-image scratch) for every image and offers no way to reuse one:
//! small allocations, the same every frame, asserted against [`zune_allocations_bound`]
//! so a growth is noticed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use scopecam::output::sinks::{OutFrame, Sink, SinkError, SinkOptions, Y4mSink};
use scopecam::picture::decode::Decoder;
use scopecam::picture::{Framer, Geometry, Placement, Rotation};
use scopecam::scope::protocol::Fragment;
use scopecam::scope::protocol::video::fragment_frame;
use scopecam::scope::reassembly::{CLOSED_FRAMES_REMEMBERED, Reassembler, ReassemblyLimits};

/// Counts allocations (and reallocations) made by threads that asked to be counted.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread locals are being torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made on this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(|c| c.get())
}

/// zune-jpeg's own per-image allocations (see the module docs), measured with zune-jpeg
/// 0.5.16-rc3 on these 4:2:2 frames (luma 2x1, handed out in stripes of 8 rows): through
/// RGB 29 at every size; through the planes about 30 and one for each stripe, 90 at
/// 640x480 and 120 at 1280x720. Bounds, not targets.
fn zune_allocations_bound(way: Way, height: u16) -> u64 {
    match way {
        Way::Rgb => 36,
        Way::Planes => 36 + u64::from(height.div_ceil(8)),
    }
}

/// A writer into a fixed buffer that starts over when full: a sink output that never grows.
struct Ring {
    buf: Vec<u8>,
    at: usize,
}

impl Write for Ring {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.buf.len() - self.at);
        self.buf[self.at..self.at + n].copy_from_slice(&data[..n]);
        self.at = (self.at + n) % self.buf.len();
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A camera output into a [`Ring`]: copies every YUYV picture, as the v4l2 sink copies
/// into the driver's buffer.
struct RingCamera(Ring);

impl Sink for RingCamera {
    fn describe(&self) -> String {
        "ring camera".into()
    }
    fn needs_yuyv(&self) -> bool {
        true
    }
    fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
        let yuyv = frame.yuyv.expect("a camera gets YUYV");
        self.0.write_all(&yuyv.data).expect("a ring never fails");
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Two different natural-ish pictures of one size (so the decoder sees changing content).
fn jpegs(width: u16, height: u16) -> Vec<Vec<u8>> {
    (0..2u32)
        .map(|seed| {
            let mut rgb = Vec::new();
            for y in 0..u32::from(height) {
                for x in 0..u32::from(width) {
                    let wave = ((x * 7 + y * 3 + seed * 50) % 97) as u8;
                    rgb.extend([
                        (x * 255 / u32::from(width)) as u8 ^ wave,
                        (y * 255 / u32::from(height)) as u8,
                        wave.wrapping_mul(2),
                    ]);
                }
            }
            let mut out = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, 82);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_1);
            encoder
                .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
                .expect("encodes");
            out
        })
        .collect()
}

/// The frame path of `bridge::frame_path` minus threads and sockets.
struct Path {
    reassembler: Reassembler,
    decoder: Decoder,
    framer: Option<Framer>,
    /// The y4m sink without a camera, else a camera-like one.
    sink: Box<dyn Sink>,
    datagrams: Vec<Vec<Vec<u8>>>,
    clock: Instant,
    frame_id: u8,
}

impl Path {
    fn new(width: u16, height: u16, camera: Option<Geometry>) -> Self {
        let datagrams = jpegs(width, height)
            .iter()
            .map(|jpeg| fragment_frame(jpeg, 0, 1450))
            .collect();
        let out = Ring {
            buf: vec![0; 4 << 20],
            at: 0,
        };
        let sink: Box<dyn Sink> = match camera {
            None => Box::new(Y4mSink::new(
                Box::new(out),
                "test".into(),
                &SinkOptions::default(),
            )),
            Some(_) => Box::new(RingCamera(out)),
        };
        Path {
            reassembler: Reassembler::new(ReassemblyLimits::default()),
            decoder: Decoder::new(),
            framer: camera.map(|output| {
                Framer::new(Placement {
                    rotation: Rotation::None,
                    mirror: false,
                    output,
                })
            }),
            sink,
            datagrams,
            clock: Instant::now(),
            frame_id: 0,
        }
    }

    fn one_frame(&mut self) {
        self.clock += Duration::from_millis(33);
        self.frame_id = self.frame_id.wrapping_add(1);
        let datagrams = &self.datagrams[usize::from(self.frame_id) % self.datagrams.len()];
        let mut complete = None;
        for datagram in datagrams {
            let mut fragment = Fragment::parse(datagram).expect("parses");
            fragment.header.frame_id = self.frame_id;
            if let Some(frame) = self.reassembler.push(&fragment, self.clock) {
                complete = Some(frame);
            }
        }
        let frame = complete.expect("completes");
        let out = match &mut self.framer {
            Some(framer) => OutFrame {
                jpeg: &frame.jpeg,
                yuyv: Some(
                    framer
                        .frame_jpeg(&mut self.decoder, &frame.jpeg)
                        .expect("frames"),
                ),
                planar: None,
            },
            None => OutFrame {
                jpeg: &frame.jpeg,
                yuyv: None,
                planar: Some(self.decoder.decode_planar(&frame.jpeg).expect("decodes")),
            },
        };
        self.sink.write(&out).expect("writes");
        self.reassembler.recycle(frame.jpeg);
    }
}

/// The decoder's two ways through zune-jpeg, which allocate differently.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    /// A 4:2:2 or 4:2:0 picture's planes: the y4m output, and the camera when the picture
    /// fills it as it is.
    Planes,
    /// RGB, for pictures the camera scales or turns.
    Rgb,
}

/// Allocations of zune-jpeg alone decoding `jpeg` once the `way` the frame path does
/// (after a warm-up).
fn zune_allocations(jpeg: &[u8], way: Way) -> u64 {
    let mut decoder = Decoder::new();
    let once = |decoder: &mut Decoder| match way {
        Way::Planes => drop(decoder.decode_planar(jpeg).expect("decodes")),
        Way::Rgb => drop(decoder.decode_rgb(jpeg).expect("decodes")),
    };
    once(&mut decoder);
    allocations_in(|| once(&mut decoder))
}

fn steady_state_allocations(width: u16, height: u16, camera: Option<Geometry>) -> Vec<u64> {
    let mut path = Path::new(width, height, camera);
    // Until it has closed CLOSED_FRAMES_REMEMBERED frames, the reassembler is
    // still setting up the tables it keeps for each.
    for _ in 0..CLOSED_FRAMES_REMEMBERED + 5 {
        path.one_frame();
    }
    (0..20)
        .map(|_| allocations_in(|| path.one_frame()))
        .collect()
}

fn check(name: &str, width: u16, height: u16, camera: Option<Geometry>) {
    let source = (u32::from(width), u32::from(height));
    let way = match camera {
        Some(c) if (c.width, c.height) != source => Way::Rgb,
        _ => Way::Planes,
    };
    let zune = zune_allocations(&jpegs(width, height)[0], way);
    let per_frame = steady_state_allocations(width, height, camera);
    eprintln!(
        "{name}: allocations per frame {per_frame:?}; zune-jpeg decode alone ({way:?}) {zune}"
    );
    let bound = zune_allocations_bound(way, height);
    assert!(
        zune <= bound,
        "zune-jpeg now allocates {zune} times per image ({way:?})"
    );
    for (i, &n) in per_frame.iter().enumerate() {
        assert_eq!(
            n, zune,
            "{name}, steady-state frame {i}: {n} allocations, but only zune-jpeg's {zune} are \
             expected (all: {per_frame:?})"
        );
    }
}

#[test]
fn steady_state_frame_path_allocates_only_inside_zune_jpeg() {
    // Decode at the source size (y4m output), and framed into a camera of another size.
    check("640x480 decode", 640, 480, None);
    check(
        "640x480 -> 1280x720 camera",
        640,
        480,
        Some(Geometry {
            width: 1280,
            height: 720,
        }),
    );
    check(
        "1280x720 camera, identity",
        1280,
        720,
        Some(Geometry {
            width: 1280,
            height: 720,
        }),
    );
}
