//! The picture: JPEG decoding ([`decode`]) and geometry, scope frames of any size -> the
//! camera's one fixed output size.
//!
//! Video apps (Chrome, Zoom, OBS, Cheese) do not survive a format change mid-stream, so the
//! camera always shows the configured geometry. Each decoded scope picture is rotated
//! (scopes deliver pictures sideways), mirrored, scaled to fit with its aspect ratio kept,
//! and letterboxed with black bars. While the scope is silent, [`Framer::no_signal`] gives
//! a card that says so.
//!
//! Pipeline, all in reused buffers: JPEG -> RGB ([`Decoder::decode_rgb`]) -> rotate/mirror
//! and bilinear scale in RGB (rotation runs at whichever of the source or content size is
//! smaller) -> one SIMD conversion to YUYV -> rows copied into the output between the bars.
//! Transforming RGB, not YUYV, because YUYV shares chroma between pixel pairs, which a
//! quarter turn breaks apart. A picture already at the output size with no rotation or
//! mirror is decoded straight into the output ([`Decoder::decode_into`]), and a 4:2:2 or
//! 4:2:0 one never goes through RGB.
//!
//! Measured with `cargo run --release --example framing_timing` (2-core EPYC dev machine,
//! one run, ms per frame, framed vs bare `Decoder::decode` of the same JPEG); full table in
//! the example.

pub mod decode;
mod layout;
mod no_signal;
mod rotate;
mod scale;

use decode::{
    DecodeError, Decoder, MAX_DIMENSION, RgbScratch, RgbView, YuyvFrame, check_header,
    rgb_to_yuyv_limited,
};
use layout::{ContentRect, fit};
pub use rotate::rotate_rgb;
use rotate::rotated_size;
use scale::Scaler;

/// Clockwise quarter turns applied to the scope picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    /// 0, 90, 180 or 270 (clockwise); anything else is `None` (not a valid setting).
    pub fn from_degrees(deg: u16) -> Option<Rotation> {
        match deg {
            0 => Some(Rotation::None),
            90 => Some(Rotation::Cw90),
            180 => Some(Rotation::Cw180),
            270 => Some(Rotation::Cw270),
            _ => None,
        }
    }
}

/// A picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
}

impl Geometry {
    /// The nearest size a YUYV camera can use: width even and at least 2, height at least
    /// 1, both at most [`MAX_DIMENSION`]. Config should already ask for such sizes; this
    /// only keeps a bad one from panicking.
    fn sanitized(self) -> Geometry {
        Geometry {
            width: self.width.clamp(2, MAX_DIMENSION) & !1,
            height: self.height.clamp(1, MAX_DIMENSION),
        }
    }
}

/// How scope pictures are placed in the output: rotation first, then the optional
/// left-right mirror, then fit-and-letterbox into `output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub rotation: Rotation,
    pub mirror: bool,
    pub output: Geometry,
}

/// Limited-range black for one YUYV pixel pair: the letterbox bars.
const BLACK_PAIR: [u8; 4] = [16, 128, 16, 128];

/// Buffers for the RGB geometry steps, reused from frame to frame.
#[derive(Debug, Default)]
struct Workspace {
    scaler: Scaler,
    rotated: Vec<u8>,
    scaled: Vec<u8>,
}

/// Turns decoded scope pictures into output-sized YUYV, reusing its buffers.
#[derive(Debug)]
pub struct Framer {
    placement: Placement,
    canvas: Canvas,
    /// Whether the canvas holds a completely framed picture.
    has_last: bool,
    no_signal: Option<YuyvFrame>,
    work: Workspace,
}

/// The output frame and what it takes to write content into it.
#[derive(Debug)]
struct Canvas {
    /// Always `width * 2 * height` bytes.
    output: YuyvFrame,
    /// The content rectangle whose bars are painted in `output` (None: repaint needed).
    painted: Option<ContentRect>,
    /// The content converted to YUYV before being copied between the bars.
    content_yuyv: Vec<u8>,
    convert: RgbScratch,
}

impl Framer {
    /// A framer for `placement`; an odd, zero or oversized output geometry is corrected
    /// (see [`Framer::output`]) rather than refused.
    pub fn new(placement: Placement) -> Self {
        let output = placement.output.sanitized();
        Framer {
            placement: Placement {
                output,
                ..placement
            },
            canvas: Canvas {
                output: YuyvFrame {
                    width: output.width,
                    height: output.height,
                    data: BLACK_PAIR.repeat(output.width as usize / 2 * output.height as usize),
                },
                painted: None,
                content_yuyv: Vec::new(),
                convert: RgbScratch::default(),
            },
            has_last: false,
            no_signal: None,
            work: Workspace::default(),
        }
    }

    /// The geometry every returned frame has.
    pub fn output(&self) -> Geometry {
        self.placement.output
    }

    /// Decode-side entry: rotate/mirror/scale/letterbox `jpeg` into the fixed output.
    /// Returns the output YUYV.
    ///
    /// On a decode error the previous picture stays available through [`Framer::last`].
    pub fn frame_jpeg(
        &mut self,
        decoder: &mut Decoder,
        jpeg: &[u8],
    ) -> Result<&YuyvFrame, DecodeError> {
        let Placement {
            rotation,
            mirror,
            output,
        } = self.placement;
        let fills_output = |(w, h)| (w, h) == (output.width, output.height);
        if rotation == Rotation::None && !mirror && check_header(jpeg).is_ok_and(fills_output) {
            // Nothing to turn, scale or letterbox: the decoder writes the output itself,
            // and a 4:2:2 or 4:2:0 scope frame never goes through RGB.
            self.canvas.painted = None;
            let decoded = decoder.decode_into(jpeg, &mut self.canvas.output);
            self.has_last = decoded.is_ok();
            decoded?;
            return Ok(&self.canvas.output);
        }
        let view = decoder.decode_rgb(jpeg)?;
        let (width, height) = rotated_size(view.width, view.height, self.placement.rotation);
        let rect = fit(width, height, self.placement.output);
        let content = place_rgb(view, self.placement, rect, &mut self.work);
        if let Err(err) = self.canvas.draw(content, rect) {
            // The output may be half written: it is no longer a picture to repeat.
            self.has_last = false;
            return Err(err);
        }
        self.has_last = true;
        Ok(&self.canvas.output)
    }

    /// The "no signal" picture at the output geometry (rendered once, cached).
    pub fn no_signal(&mut self) -> &YuyvFrame {
        let Geometry { width, height } = self.placement.output;
        self.no_signal
            .get_or_insert_with(|| no_signal::render(width, height))
    }

    /// The last successfully framed picture, if any (for repeating during short stalls).
    pub fn last(&self) -> Option<&YuyvFrame> {
        self.has_last.then_some(&self.canvas.output)
    }

    /// The last picture to repeat during a stall, or "no signal" if there is none.
    pub fn last_or_no_signal(&mut self) -> &YuyvFrame {
        if self.has_last {
            &self.canvas.output
        } else {
            self.no_signal()
        }
    }
}

impl Canvas {
    /// Writes `content` (packed RGB, `rect`-sized) into the output at `rect`.
    fn draw(&mut self, content: &[u8], rect: ContentRect) -> Result<(), DecodeError> {
        if rect.width == self.output.width && rect.height == self.output.height {
            // Content fills the output: convert in place, no bars and no copy.
            self.painted = None;
            rgb_to_yuyv_limited(
                content,
                rect.width,
                rect.height,
                &mut self.convert,
                &mut self.output.data,
            )
        } else {
            self.convert_between_bars(content, rect)
        }
    }

    /// Converts `content` (RGB, `rect`-sized) to YUYV and copies it into the output at
    /// `rect`, painting the bars only when the rectangle moved. The output is touched only
    /// after the (fallible) conversion succeeded.
    fn convert_between_bars(
        &mut self,
        content: &[u8],
        rect: ContentRect,
    ) -> Result<(), DecodeError> {
        let row_bytes = rect.width as usize * 2;
        self.content_yuyv
            .resize(row_bytes * rect.height as usize, 0);
        rgb_to_yuyv_limited(
            content,
            rect.width,
            rect.height,
            &mut self.convert,
            &mut self.content_yuyv,
        )?;
        if self.painted != Some(rect) {
            paint_black(&mut self.output.data);
            self.painted = Some(rect);
        }
        let output_row_bytes = self.output.width as usize * 2;
        let first = rect.y as usize * output_row_bytes + rect.x as usize * 2;
        let rows = self.output.data.get_mut(first..).unwrap_or_default();
        for (dst, src) in rows
            .chunks_mut(output_row_bytes)
            .zip(self.content_yuyv.chunks_exact(row_bytes))
        {
            if let Some(dst) = dst.get_mut(..row_bytes) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }
}

fn paint_black(yuyv: &mut [u8]) {
    for pair in yuyv.chunks_exact_mut(4) {
        pair.copy_from_slice(&BLACK_PAIR);
    }
}

/// Rotates, mirrors and scales the decoded picture to `rect`'s size; returns packed RGB of
/// exactly `rect.width * rect.height` pixels (the decoder's own buffer when nothing changes).
fn place_rgb<'a>(
    view: RgbView<'a>,
    placement: Placement,
    rect: ContentRect,
    work: &'a mut Workspace,
) -> &'a [u8] {
    let Placement {
        rotation, mirror, ..
    } = placement;
    let (sw, sh) = (view.width, view.height);
    let (cw, ch) = (rect.width, rect.height);
    let turns = rotation != Rotation::None || mirror;
    let (rw, rh) = rotated_size(sw, sh, rotation);
    if !turns {
        if (sw, sh) == (cw, ch) {
            return view.pixels;
        }
        work.scaler
            .scale(view.pixels, sw, sh, &mut work.scaled, cw, ch);
        return &work.scaled;
    }
    let source_pixels = u64::from(sw) * u64::from(sh);
    let content_pixels = u64::from(cw) * u64::from(ch);
    if source_pixels <= content_pixels {
        rotate_rgb(view.pixels, sw, sh, rotation, mirror, &mut work.rotated);
        if (rw, rh) == (cw, ch) {
            return &work.rotated;
        }
        work.scaler
            .scale(&work.rotated, rw, rh, &mut work.scaled, cw, ch);
        &work.scaled
    } else {
        // Scale first, to the content size before the turn, then turn the smaller picture.
        let (pre_w, pre_h) = rotated_size(cw, ch, rotation);
        work.scaler
            .scale(view.pixels, sw, sh, &mut work.scaled, pre_w, pre_h);
        rotate_rgb(
            &work.scaled,
            pre_w,
            pre_h,
            rotation,
            mirror,
            &mut work.rotated,
        );
        &work.rotated
    }
}

#[cfg(test)]
mod tests;
