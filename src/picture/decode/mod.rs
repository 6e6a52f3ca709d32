//! JPEG -> packed YUYV 4:2:2, limited-range BT.601: what V4L2 consumers assume; or the same
//! samples as planar 4:2:2 ([`Decoder::decode_planar`]), the layout of a y4m frame.
//!
//! JPEG (JFIF) stores full-range BT.601 YCbCr, while YUYV on a webcam node is read as
//! limited range (Y 16..235, Cb/Cr 16..240). So the decoder squeezes the range: black becomes
//! Y 16, white Y 235, grey chroma stays 128.
//!
//! Paths, picked by the JPEG's own colour space and chroma layout:
//! - YCbCr with 4:2:2 or 4:2:0 chroma (every scope seen): zune-jpeg's planes straight after
//!   the IDCT, range-squeezed (and 4:2:0 chroma rows doubled) into planar 4:2:2 (`raw.rs`).
//! - Other colour JPEGs (4:4:4 and other layouts, Adobe RGB, CMYK, YCCK): zune-jpeg emits
//!   RGB and yuvutils-rs converts it with SIMD (`rgb.rs`).
//! - Grayscale: zune-jpeg emits luma, a table squeezes it, chroma is 128.
//!
//! Every way ends in planar 4:2:2; YUYV is those planes packed by yuvutils-rs.
//! [`Decoder::decode_rgb`] (for rotation and scaling, which need whole pixels) always
//! decodes to RGB.
//!
//! Odd widths: YUYV needs pixel pairs, so an odd-width picture is padded to the next even
//! width by repeating its last column. Odd heights need nothing.

mod jpeg_info;
mod pack;
mod planar;
mod raw;
mod rgb;

pub use jpeg_info::yuyv_to_jpeg;
pub use planar::Planar422Frame;
pub use rgb::{Scratch as RgbScratch, rgb_to_yuyv_limited};

use pack::luma_to_planar422_limited;

use std::panic::{AssertUnwindSafe, catch_unwind};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Largest width or height of a camera output (and of a picture this module encodes).
pub const MAX_DIMENSION: u32 = 4096;

/// Largest scope picture decoded: 2592x1944, the 5-megapixel mode of common camera sensors.
/// Borescopes stream 640x480 to 1920x1080 (docs/security.md), so this leaves 35 % more
/// width and 80 % more height than the largest real stream, while a hostile frame costs at
/// most 2.4 times a 1080p one instead of the 8 times of 4096x4096 (and 16 bits' worth of
/// dimensions for zune-jpeg to allocate).
pub const MAX_SCOPE_WIDTH: u32 = 2592;
pub const MAX_SCOPE_HEIGHT: u32 = 1944;

/// A packed YUYV 4:2:2 picture (Y0 U Y1 V), limited-range BT.601. `width` is always even.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YuyvFrame {
    pub width: u32,
    pub height: u32,
    /// `width * 2 * height` bytes.
    pub data: Vec<u8>,
}

/// Why a frame could not be decoded. The bridge drops and counts such frames.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a complete, valid JPEG (bad markers, truncated scan, ...).
    #[error("corrupt JPEG: {0}")]
    Corrupt(String),
    /// The frame does not end with the end-of-image marker: data is missing at the end.
    #[error("corrupt JPEG: truncated (it does not end with an end-of-image marker)")]
    Truncated,
    /// The header announces a picture larger than [`MAX_SCOPE_WIDTH`] x [`MAX_SCOPE_HEIGHT`].
    #[error(
        "JPEG of {width}x{height} is larger than the {MAX_SCOPE_WIDTH}x{MAX_SCOPE_HEIGHT} limit \
         (a corrupt header, or not a borescope frame)"
    )]
    TooLarge { width: u32, height: u32 },
    /// The frame header announces a coding no scope uses (checked before decoding).
    #[error("JPEG refused before decoding: {0}")]
    Unsupported(Unsupported),
    /// The header announces an empty picture.
    #[error("JPEG of {width}x{height} has no pixels (corrupt header)")]
    Empty { width: u32, height: u32 },
    /// The JPEG library panicked on this input (a bug there, contained to this frame).
    #[error("corrupt JPEG: the JPEG decoder failed internally on this frame")]
    DecoderPanicked,
    /// The colour converter refused the picture (should not happen for valid sizes).
    #[error("colour conversion failed: {0}")]
    Convert(String),
}

/// A JPEG coding process the decoder refuses: scopes send 8-bit baseline (Huffman,
/// sequential) JPEGs, and the other processes cost more to decode (a progressive picture
/// keeps every coefficient of the frame in memory and is decoded in several passes) for no
/// picture a scope sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum Unsupported {
    #[error("a progressive JPEG (scopes send baseline ones)")]
    Progressive,
    #[error("an arithmetic-coded JPEG (scopes send Huffman-coded ones)")]
    Arithmetic,
    #[error("a lossless JPEG (scopes send baseline ones)")]
    Lossless,
    #[error("a hierarchical JPEG (scopes send baseline ones)")]
    Hierarchical,
    #[error("a JPEG with samples of another precision than 8 bits")]
    Precision,
}

/// Why a frame was refused before decoding, for the counters: the coding, or the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    TooLarge,
    Coding(Unsupported),
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::TooLarge,
        Refusal::Coding(Unsupported::Progressive),
        Refusal::Coding(Unsupported::Arithmetic),
        Refusal::Coding(Unsupported::Lossless),
        Refusal::Coding(Unsupported::Hierarchical),
        Refusal::Coding(Unsupported::Precision),
    ];

    /// Short snake_case name for the summary and the state file.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Coding(Unsupported::Progressive) => "progressive",
            Refusal::Coding(Unsupported::Arithmetic) => "arithmetic",
            Refusal::Coding(Unsupported::Lossless) => "lossless",
            Refusal::Coding(Unsupported::Hierarchical) => "hierarchical",
            Refusal::Coding(Unsupported::Precision) => "precision",
        }
    }
}

impl DecodeError {
    /// The refusal, when the frame was refused before decoding (a kind of JPEG or a size
    /// no scope sends) rather than found broken.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            DecodeError::TooLarge { .. } => Some(Refusal::TooLarge),
            DecodeError::Unsupported(coding) => Some(Refusal::Coding(*coding)),
            _ => None,
        }
    }
}

/// Reads the frame header of `jpeg` (marker walk, no decoding) and refuses what no scope
/// sends: any coding but 8-bit Huffman sequential (baseline or extended), and pictures
/// beyond [`MAX_SCOPE_WIDTH`] x [`MAX_SCOPE_HEIGHT`]. Returns the picture's size.
///
/// Cheap (it walks the bytes up to the frame header), so the frame path runs it on every
/// frame, also for outputs that pass JPEGs through undecoded.
pub fn check_header(jpeg: &[u8]) -> Result<(u32, u32), DecodeError> {
    use crate::jpeg::{JpegError, Process};
    let header = crate::jpeg::frame_header(jpeg).map_err(|e| match e {
        JpegError::Truncated { .. } => DecodeError::Truncated,
        other => DecodeError::Corrupt(other.to_string()),
    })?;
    let unsupported = if header.differential() {
        Some(Unsupported::Hierarchical)
    } else if header.arithmetic() {
        Some(Unsupported::Arithmetic)
    } else {
        match header.process() {
            Process::Progressive => Some(Unsupported::Progressive),
            Process::Lossless => Some(Unsupported::Lossless),
            Process::Baseline | Process::ExtendedSequential if header.precision != 8 => {
                Some(Unsupported::Precision)
            }
            Process::Baseline | Process::ExtendedSequential => None,
        }
    };
    if let Some(coding) = unsupported {
        return Err(DecodeError::Unsupported(coding));
    }
    let (width, height) = (u32::from(header.width), u32::from(header.height));
    check_dimensions(width, height)?;
    Ok((width, height))
}

/// A decoded picture as packed RGB (3 bytes a pixel, `width * height` pixels, no padding):
/// the decoder's intermediate, lent out so that geometry work (rotation, scaling) can run
/// before the one conversion to YUYV instead of after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RgbView<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: &'a [u8],
}

/// Decodes JPEG frames into one reused YUYV buffer.
///
/// Every intermediate buffer lives here and is only resized, so once frames keep the same
/// size, decoding allocates nothing of its own per frame (zune-jpeg keeps a few small
/// per-image scratch buffers internally, which we cannot reach).
#[derive(Debug, Default)]
pub struct Decoder {
    frame: YuyvFrame,
    /// zune-jpeg's output: packed RGB, or luma for grayscale JPEGs.
    pixels: Vec<u8>,
    /// yuvutils intermediates (planar 4:2:2, odd-width padding).
    rgb_scratch: rgb::Scratch,
    /// Grayscale pictures widened to RGB, for [`Decoder::decode_rgb`] only.
    luma_as_rgb: Vec<u8>,
    /// The picture of [`Decoder::decode_planar`], and the planes [`Decoder::decode`] packs.
    planar: Planar422Frame,
    /// Half-height chroma of 4:2:0 pictures on the plane path.
    raw_scratch: raw::Scratch,
}

/// Width, height and zune-jpeg output colour space of the picture now in `Decoder::pixels`.
#[derive(Debug, Clone, Copy)]
struct Decoded {
    width: u32,
    height: u32,
    out: ColorSpace,
}

/// What zune-jpeg should hand us for a given JPEG colour space.
fn output_colorspace_for(input: ColorSpace) -> ColorSpace {
    match input {
        ColorSpace::Luma => ColorSpace::Luma,
        _ => ColorSpace::RGB,
    }
}

/// Decoder options: strict mode so a truncated or damaged scan is an error instead of a
/// grey-filled partial picture (zune-jpeg's lenient default), and zune's own size limit
/// lifted to the u16 maximum so that [`check_header`] decides, with our message.
fn zune_options(out: ColorSpace) -> DecoderOptions {
    DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(out)
}

fn check_dimensions(width: u32, height: u32) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty { width, height });
    }
    if width > MAX_SCOPE_WIDTH || height > MAX_SCOPE_HEIGHT {
        return Err(DecodeError::TooLarge { width, height });
    }
    Ok(())
}

/// A frame cut short must be an error: zune-jpeg, even in strict mode, decodes a scan that
/// lacks its last few bytes and fills the bottom-right blocks with wrong pixels (seen with
/// 0.5.15: a 64x48 frame cut by 2..=10 bytes decoded "fine"). So the JPEG is walked to its
/// true end-of-image marker first, and only the bytes up to it are decoded: whatever follows
/// (padding, filler) is ignored, as other JPEG decoders do.
fn jpeg_proper(jpeg: &[u8]) -> Result<&[u8], DecodeError> {
    match crate::jpeg::end_of_image(jpeg) {
        Ok(end) => Ok(jpeg.get(..end).unwrap_or(jpeg)),
        Err(crate::jpeg::JpegError::Truncated { .. }) => Err(DecodeError::Truncated),
        Err(other) => Err(DecodeError::Corrupt(other.to_string())),
    }
}

/// Panics inside the decoder caught so far, in this process.
static PANICS_CAUGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many decoder panics [`Decoder`] has contained in this process. The bridge goes on
/// after one (the frame is dropped), so tests that replay inputs check this instead: a
/// contained panic is still a bug in the decoder or in how it is called.
pub fn panics_caught() -> u64 {
    PANICS_CAUGHT.load(std::sync::atomic::Ordering::Relaxed)
}

/// The error for a frame whose decoding panicked; counts it.
fn contained<T>(_panic: Box<dyn std::any::Any + Send>) -> Result<T, DecodeError> {
    PANICS_CAUGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Err(DecodeError::DecoderPanicked)
}

fn corrupt(err: zune_jpeg::errors::DecodeErrors) -> DecodeError {
    DecodeError::Corrupt(err.to_string())
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode one JPEG into the reused YUYV buffer.
    ///
    /// On error the previous frame's contents are unspecified; never panics on any input.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<&YuyvFrame, DecodeError> {
        let mut frame = std::mem::take(&mut self.frame);
        let decoded = self.decode_into(jpeg, &mut frame);
        self.frame = frame;
        decoded?;
        Ok(&self.frame)
    }

    /// Decode one JPEG into `out` (resized to the picture), the same picture
    /// [`Decoder::decode`] makes in its own frame: for callers that own the frame, such as
    /// the camera's canvas when the scope's picture fills it.
    ///
    /// On error `out`'s contents are unspecified; never panics on any input.
    pub fn decode_into(&mut self, jpeg: &[u8], out: &mut YuyvFrame) -> Result<(), DecodeError> {
        // zune-jpeg is fuzzed, but this runs on bytes from the network: a decoder bug must
        // cost one frame, not the bridge.
        catch_unwind(AssertUnwindSafe(|| self.decode_yuyv(jpeg, out))).unwrap_or_else(contained)
    }

    /// The last successfully decoded frame (empty before the first).
    pub fn frame(&self) -> &YuyvFrame {
        &self.frame
    }

    /// Decode one JPEG to packed RGB (grayscale JPEGs are widened to grey RGB), for callers
    /// that transform the picture before converting it (see `crate::picture`).
    ///
    /// Same checks, limits and panic containment as [`Decoder::decode`]; the YUYV frame of
    /// [`Decoder::frame`] is left untouched.
    pub fn decode_rgb(&mut self, jpeg: &[u8]) -> Result<RgbView<'_>, DecodeError> {
        let decoded = catch_unwind(AssertUnwindSafe(|| self.decode_pixels(jpeg)))
            .unwrap_or_else(contained)?;
        let pixels = if decoded.out == ColorSpace::Luma {
            widen_luma_to_rgb(&self.pixels, &mut self.luma_as_rgb);
            &self.luma_as_rgb
        } else {
            &self.pixels
        };
        Ok(RgbView {
            width: decoded.width,
            height: decoded.height,
            pixels,
        })
    }

    /// Decode one JPEG into the reused planar 4:2:2 buffer (Y, Cb, Cr planes in one
    /// buffer), for the y4m output: the very samples of [`Decoder::decode`]'s YUYV, without
    /// packing them (yuvutils-rs converts to planes first) and unpacking them again.
    ///
    /// Same checks, limits and panic containment as [`Decoder::decode`]; the YUYV frame
    /// of [`Decoder::frame`] is left untouched.
    pub fn decode_planar(&mut self, jpeg: &[u8]) -> Result<&Planar422Frame, DecodeError> {
        catch_unwind(AssertUnwindSafe(|| self.decode_planar_inner(jpeg)))
            .unwrap_or_else(contained)?;
        Ok(&self.planar)
    }

    fn decode_planar_inner(&mut self, jpeg: &[u8]) -> Result<(), DecodeError> {
        if self.decode_planes(jpeg)? {
            return Ok(());
        }
        let Decoded { width, height, out } = self.decode_pixels(jpeg)?;
        self.planar.width = width.next_multiple_of(2);
        self.planar.height = height;
        let len = self.planar.expected_len();
        fit_buffer(&mut self.planar.data, len);
        match out {
            ColorSpace::Luma => {
                luma_to_planar422_limited(&self.pixels, width as usize, &mut self.planar.data)
            }
            _ => rgb::rgb_to_planar422_limited(
                &self.pixels,
                width,
                height,
                &mut self.rgb_scratch,
                &mut self.planar.data,
            )?,
        }
        Ok(())
    }

    /// YUYV is always the planes of [`Decoder::decode_planar`], packed: one conversion for
    /// both outputs, whichever way the JPEG takes.
    fn decode_yuyv(&mut self, jpeg: &[u8], frame: &mut YuyvFrame) -> Result<(), DecodeError> {
        self.decode_planar_inner(jpeg)?;
        let Planar422Frame { width, height, .. } = self.planar;
        frame.width = width;
        frame.height = height;
        fit_buffer(&mut frame.data, width as usize * 2 * height as usize);
        rgb::pack_planar422(&self.planar, &mut frame.data)
    }

    /// Decodes `jpeg` into `self.planar` through its planes when it is YCbCr with a chroma
    /// layout `raw.rs` takes; `Ok(false)` (nothing decoded) for any other JPEG.
    fn decode_planes(&mut self, jpeg: &[u8]) -> Result<bool, DecodeError> {
        let mut opened = open(jpeg)?;
        if opened.input != ColorSpace::YCbCr {
            return Ok(false);
        }
        raw::decode_to_planar422(
            &mut opened.decoder,
            opened.width,
            opened.height,
            &mut self.raw_scratch,
            &mut self.planar,
        )
    }

    /// Checks and decodes `jpeg` into `self.pixels` (RGB, or luma for grayscale JPEGs).
    fn decode_pixels(&mut self, jpeg: &[u8]) -> Result<Decoded, DecodeError> {
        let Opened {
            mut decoder,
            width,
            height,
            input,
        } = open(jpeg)?;
        let out = output_colorspace_for(input);
        if out != ColorSpace::RGB {
            // Only RGB-family outputs depend on state prepared while reading headers.
            decoder.set_options(zune_options(out));
        }
        let needed = (width as usize) * (height as usize) * out.num_components();
        fit_buffer(&mut self.pixels, needed);
        decoder.decode_into(&mut self.pixels).map_err(corrupt)?;
        Ok(Decoded { width, height, out })
    }
}

/// A JPEG whose headers zune-jpeg has read, and what they say.
struct Opened<'a> {
    decoder: JpegDecoder<ZCursor<&'a [u8]>>,
    width: u32,
    height: u32,
    /// The JPEG's own colour space.
    input: ColorSpace,
}

/// Checks `jpeg` (its true end, its coding and size) and reads its headers, for a decoder
/// set to RGB output (the planes ignore it; see `Decoder::decode_pixels` for grayscale).
fn open(jpeg: &[u8]) -> Result<Opened<'_>, DecodeError> {
    let jpeg = jpeg_proper(jpeg)?;
    check_header(jpeg)?;
    let mut decoder =
        JpegDecoder::new_with_options(ZCursor::new(jpeg), zune_options(ColorSpace::RGB));
    decoder.decode_headers().map_err(corrupt)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| DecodeError::Corrupt("no frame header".to_owned()))?;
    let (width, height) = (width as u32, height as u32);
    check_dimensions(width, height)?;
    let input = decoder
        .input_colorspace()
        .ok_or_else(|| DecodeError::Corrupt("no colour space".to_owned()))?;
    Ok(Opened {
        decoder,
        width,
        height,
        input,
    })
}

/// Grey samples -> grey RGB (each sample three times), reusing `rgb`'s allocation.
fn widen_luma_to_rgb(luma: &[u8], rgb: &mut Vec<u8>) {
    rgb.clear();
    rgb.extend(luma.iter().flat_map(|&y| [y, y, y]));
    give_back_excess(rgb);
}

/// Below this, a reused buffer keeps whatever capacity it has.
const KEEP_BYTES: usize = 1 << 20;

/// Resizes a reused picture buffer to `len` bytes; see [`give_back_excess`].
pub fn fit_buffer(buffer: &mut Vec<u8>, len: usize) {
    buffer.resize(len, 0);
    give_back_excess(buffer);
}

/// A reused buffer holding more than twice what the current picture needs (and over
/// 1 MiB) was grown by a larger picture: its excess goes back to the allocator, and the
/// allocator's free memory back to the kernel, so that a hostile frame costs memory only
/// while it is handled. A stream of one size never reallocates; one switching sizes
/// reallocates at each switch to a much smaller size.
pub fn give_back_excess(buffer: &mut Vec<u8>) {
    if buffer.capacity() > buffer.len().saturating_mul(2).max(KEEP_BYTES) {
        buffer.shrink_to_fit();
        trim_heap();
    }
}

/// Returns the allocator's free memory to the kernel. glibc otherwise keeps up to its trim
/// threshold (32 MB, raised in `main.rs`) of free heap, and the decoder's planes for a
/// large picture (up to 5 MB each, below the mmap threshold) stay resident after it. Runs
/// only when a buffer shrank, that is after a larger picture. There is no crate for
/// malloc_trim(3); it is one libc call.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages back; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests;

/// A JPEG of one grey level (255 = white), for tests across modules.
#[cfg(test)]
pub(crate) fn solid_jpeg(width: u16, height: u16, level: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let rgb = vec![level; usize::from(width) * usize::from(height) * 3];
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encoding a solid test picture");
    out
}
