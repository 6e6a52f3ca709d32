//! The JPEG marker walker: the one place that reads JPEG structure (ITU-T T.81, B.1).
//!
//! A JPEG is a start-of-image marker (`FF D8`), then segments, then the end-of-image
//! marker (`FF D9`). Finding that end is not a search for `FF D9`: the bytes can appear
//! inside a segment (an EXIF thumbnail in APP1 is a whole JPEG) and, in principle, as
//! part of a segment's length. So the walk reads the structure:
//! - a marker is `FF` then a code; any number of extra `FF` fill bytes may come first;
//! - `TEM` (`FF 01`) and the restart markers `RST0..7` (`FF D0..D7`) stand alone;
//!   every other marker carries a big-endian length that counts itself but not the marker;
//! - after a start-of-scan header (`SOS`, `FF DA`) comes entropy-coded data, in which
//!   `FF 00` is a stuffed data byte and `RSTn` and fill bytes belong to the data; the
//!   first other marker ends it.
//!
//! Written by hand because no crate does this without allocating: zune-jpeg reads the
//! headers but does not say where the image ends, and segment parsers such as img-parts
//! copy every segment. The reassembler walks every frame from the network on its
//! allocation-free path, so this allocates nothing and never panics.
//!
//! [`stream`] splits a file of JPEGs back to back (an MJPEG recording) with the same walk.
//!
//! It imports nothing from the rest of the crate.

use std::fmt;

pub mod stream;

/// Marker codes (the byte after `FF`).
pub mod marker {
    /// Temporary private use; stands alone.
    pub const TEM: u8 = 0x01;
    /// Baseline sequential DCT frame header.
    pub const SOF0: u8 = 0xC0;
    /// Huffman table definition (in the SOF range, but not a frame header).
    pub const DHT: u8 = 0xC4;
    /// Reserved for JPEG extensions (in the SOF range, but not a frame header).
    pub const JPG: u8 = 0xC8;
    /// Arithmetic coding conditioning (in the SOF range, but not a frame header).
    pub const DAC: u8 = 0xCC;
    /// First restart marker; `RST0..=RST7` stand alone.
    pub const RST0: u8 = 0xD0;
    pub const RST7: u8 = 0xD7;
    /// Start of image.
    pub const SOI: u8 = 0xD8;
    /// End of image.
    pub const EOI: u8 = 0xD9;
    /// Start of scan.
    pub const SOS: u8 = 0xDA;
    /// Quantisation table definition.
    pub const DQT: u8 = 0xDB;
    /// Restart interval definition.
    pub const DRI: u8 = 0xDD;
    /// First application segment (JFIF); `APP1` is EXIF.
    pub const APP0: u8 = 0xE0;
    /// Comment.
    pub const COM: u8 = 0xFE;

    /// True for the frame headers `SOF0..=SOF15` (not DHT, JPG or DAC).
    pub fn is_frame_header(code: u8) -> bool {
        (0xC0..=0xCF).contains(&code) && !matches!(code, DHT | JPG | DAC)
    }

    /// True for `RST0..=RST7`.
    pub fn is_restart(code: u8) -> bool {
        (RST0..=RST7).contains(&code)
    }

    /// True for markers without a length field: TEM, RSTn, SOI and EOI.
    pub fn stands_alone(code: u8) -> bool {
        code == TEM || is_restart(code) || code == SOI || code == EOI
    }
}

/// The two bytes every JPEG starts with.
pub const START_OF_IMAGE: [u8; 2] = [0xFF, marker::SOI];
/// The two bytes that end a JPEG.
pub const END_OF_IMAGE: [u8; 2] = [0xFF, marker::EOI];

const PREFIX: u8 = 0xFF;
const STUFFED_ZERO: u8 = 0x00;

/// Why a walk stopped short of the end-of-image marker. Offsets count from the start of
/// the walked bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    #[error("it does not start with the start-of-image marker FF D8")]
    NoStartOfImage,
    /// The bytes end inside a marker, a segment or the entropy-coded data.
    #[error("it ends at byte {len}, before its end-of-image marker")]
    Truncated { len: usize },
    /// A marker was expected at `at` but the byte there is not `FF`, or is `FF 00`.
    #[error("no marker at byte {at}, where one belongs")]
    NotAMarker { at: usize },
    /// A segment at `at` has a length field below 2.
    #[error("the segment at byte {at} has a length below 2")]
    BadLength { at: usize },
    /// Another start-of-image marker at `at` before this image ended.
    #[error("a new image starts at byte {at}, before this one ended")]
    NestedStartOfImage { at: usize },
    /// A scan or the end of the image came before any frame header.
    #[error("no frame header before byte {at}")]
    NoFrameHeader { at: usize },
    /// The frame header at `at` is shorter than its fields.
    #[error("the frame header at byte {at} is too short")]
    ShortFrameHeader { at: usize },
}

/// One marker and its segment, as positions in the walked bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The marker code (the byte after `FF`), see [`marker`].
    pub code: u8,
    /// Offset of the marker's first `FF` (fill bytes included).
    pub offset: usize,
    /// Offset of the payload: after the marker and, if it has one, its length field.
    pub payload_start: usize,
    /// Offset just past the segment. For SOS that is past the scan header: the
    /// entropy-coded data follows and is skipped before the next marker is read.
    pub end: usize,
}

impl Segment {
    /// The segment's bytes after its length field (empty for a stand-alone marker).
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.payload_start..self.end).unwrap_or(&[])
    }
}

/// Iterates over the markers of the JPEG that starts at offset 0: SOI first, EOI last.
///
/// After an error or EOI it yields nothing more. Bytes after EOI are never looked at.
#[derive(Debug, Clone)]
pub struct Markers<'a> {
    data: &'a [u8],
    /// Where the next marker (or, after SOS, the entropy-coded data) starts.
    pos: usize,
    in_scan: bool,
    done: bool,
}

impl<'a> Markers<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Markers {
            data,
            pos: 0,
            in_scan: false,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Segment, JpegError> {
        let data = self.data;
        if self.pos == 0 {
            if !data.starts_with(&START_OF_IMAGE) {
                return Err(JpegError::NoStartOfImage);
            }
            self.pos = START_OF_IMAGE.len();
            return Ok(Segment {
                code: marker::SOI,
                offset: 0,
                payload_start: self.pos,
                end: self.pos,
            });
        }
        if self.in_scan {
            self.pos = skip_entropy_coded_data(data, self.pos)?;
            self.in_scan = false;
        }
        let offset = self.pos;
        let (code, after_code) = read_marker(data, offset)?;
        if marker::stands_alone(code) {
            if code == marker::SOI {
                return Err(JpegError::NestedStartOfImage { at: offset });
            }
            self.pos = after_code;
            return Ok(Segment {
                code,
                offset,
                payload_start: after_code,
                end: after_code,
            });
        }
        let length_field = data
            .get(after_code..after_code + 2)
            .ok_or(JpegError::Truncated { len: data.len() })?;
        let length = usize::from(u16::from_be_bytes([length_field[0], length_field[1]]));
        if length < 2 {
            return Err(JpegError::BadLength { at: offset });
        }
        let end = after_code + length;
        if end > data.len() {
            return Err(JpegError::Truncated { len: data.len() });
        }
        self.pos = end;
        self.in_scan = code == marker::SOS;
        Ok(Segment {
            code,
            offset,
            payload_start: after_code + 2,
            end,
        })
    }
}

impl Iterator for Markers<'_> {
    type Item = Result<Segment, JpegError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = self.step();
        self.done = !matches!(step, Ok(segment) if segment.code != marker::EOI);
        Some(step)
    }
}

/// Reads the marker at `pos`, skipping `FF` fill bytes; returns its code and the offset
/// just past it.
fn read_marker(data: &[u8], pos: usize) -> Result<(u8, usize), JpegError> {
    let truncated = JpegError::Truncated { len: data.len() };
    if *data.get(pos).ok_or(truncated)? != PREFIX {
        return Err(JpegError::NotAMarker { at: pos });
    }
    let mut at = pos + 1;
    while *data.get(at).ok_or(truncated)? == PREFIX {
        at += 1;
    }
    match data[at] {
        STUFFED_ZERO => Err(JpegError::NotAMarker { at: pos }),
        code => Ok((code, at + 1)),
    }
}

/// Skips entropy-coded data from `pos` to the next marker that ends it and returns the
/// offset of that marker's `FF`. Stuffed `FF 00`, restart markers and fill bytes belong
/// to the data.
fn skip_entropy_coded_data(data: &[u8], pos: usize) -> Result<usize, JpegError> {
    let truncated = JpegError::Truncated { len: data.len() };
    let mut at = pos;
    loop {
        let offset = data
            .get(at..)
            .and_then(|rest| memchr::memchr(PREFIX, rest))
            .ok_or(truncated)?;
        let prefix = at + offset;
        let next = *data.get(prefix + 1).ok_or(truncated)?;
        if next == STUFFED_ZERO || next == PREFIX || marker::is_restart(next) {
            at = prefix + 1;
        } else {
            return Ok(prefix);
        }
    }
}

/// Offset just past the end-of-image marker of the JPEG at the start of `data`: the
/// length of the JPEG proper, whatever follows it.
pub fn end_of_image(data: &[u8]) -> Result<usize, JpegError> {
    for segment in Markers::new(data) {
        let segment = segment?;
        if segment.code == marker::EOI {
            return Ok(segment.end);
        }
    }
    // The iterator only stops early after an error or EOI, both returned above.
    Err(JpegError::Truncated { len: data.len() })
}

/// How a frame is coded, from its SOF marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// SOF0: 8-bit Huffman sequential; what every decoder handles.
    Baseline,
    /// SOF1, SOF9: sequential, up to 12-bit.
    ExtendedSequential,
    /// SOF2, SOF10.
    Progressive,
    /// SOF3, SOF11.
    Lossless,
}

/// One image component of a frame header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Component {
    pub id: u8,
    /// Horizontal and vertical sampling factors (1..=4).
    pub horizontal: u8,
    pub vertical: u8,
    /// Quantisation table selector.
    pub table: u8,
}

/// Components kept per frame header; JPEG allows 255, real pictures have 1, 3 or 4.
const MAX_COMPONENTS: usize = 4;

/// The facts of a frame header (SOFn segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The SOF marker code (`0xC0..=0xCF` except DHT, JPG, DAC).
    pub code: u8,
    /// Sample precision in bits.
    pub precision: u8,
    pub width: u16,
    /// 0 means a DNL segment after the first scan gives it.
    pub height: u16,
    /// Component count as announced.
    pub component_count: u8,
    components: [Component; MAX_COMPONENTS],
}

impl FrameHeader {
    /// Parses the payload of a SOFn segment that starts at `offset`.
    fn parse(code: u8, payload: &[u8], offset: usize) -> Result<Self, JpegError> {
        let short = JpegError::ShortFrameHeader { at: offset };
        let [precision, h0, h1, w0, w1, count, specs @ ..] = payload else {
            return Err(short);
        };
        let mut components = [Component::default(); MAX_COMPONENTS];
        let announced = usize::from(*count);
        if specs.len() < 3 * announced {
            return Err(short);
        }
        for (slot, spec) in components.iter_mut().zip(specs.chunks_exact(3)) {
            *slot = Component {
                id: spec[0],
                horizontal: spec[1] >> 4,
                vertical: spec[1] & 0x0F,
                table: spec[2],
            };
        }
        Ok(FrameHeader {
            code,
            precision: *precision,
            width: u16::from_be_bytes([*w0, *w1]),
            height: u16::from_be_bytes([*h0, *h1]),
            component_count: *count,
            components,
        })
    }

    /// Baseline, extended, progressive or lossless.
    pub fn process(&self) -> Process {
        match self.code & 0x03 {
            0 if self.code == marker::SOF0 => Process::Baseline,
            0 | 1 => Process::ExtendedSequential,
            2 => Process::Progressive,
            _ => Process::Lossless,
        }
    }

    /// Arithmetic-coded (SOF9..SOF15) rather than Huffman-coded.
    pub fn arithmetic(&self) -> bool {
        self.code >= 0xC8
    }

    /// Differential (hierarchical) frame: SOF5..7, SOF13..15.
    pub fn differential(&self) -> bool {
        self.code & 0x04 != 0
    }

    /// The first (up to four) components.
    pub fn components(&self) -> &[Component] {
        let kept = usize::from(self.component_count).min(MAX_COMPONENTS);
        self.components.get(..kept).unwrap_or(&[])
    }
}

impl fmt::Display for FrameHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} SOF{} {:?}{}, {} component(s), {}-bit",
            self.width,
            self.height,
            self.code - marker::SOF0,
            self.process(),
            if self.arithmetic() { " arithmetic" } else { "" },
            self.component_count,
            self.precision
        )
    }
}

/// The first frame header of the JPEG at the start of `data`, walking no further: a
/// JPEG cut short after its header still has one.
pub fn frame_header(data: &[u8]) -> Result<FrameHeader, JpegError> {
    for segment in Markers::new(data) {
        let segment = segment?;
        if marker::is_frame_header(segment.code) {
            return FrameHeader::parse(segment.code, segment.payload(data), segment.offset);
        }
        if matches!(segment.code, marker::SOS | marker::EOI) {
            return Err(JpegError::NoFrameHeader { at: segment.offset });
        }
    }
    Err(JpegError::Truncated { len: data.len() })
}

/// The width and height a JPEG's start-of-frame header announces, without decoding.
/// `None` when the bytes are not a JPEG or end before a start-of-frame segment.
pub fn dimensions(jpeg: &[u8]) -> Option<(u32, u32)> {
    let header = frame_header(jpeg).ok()?;
    Some((u32::from(header.width), u32::from(header.height)))
}

/// What a full walk of one JPEG found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The first frame header.
    pub frame: FrameHeader,
    /// How many scans (SOS segments); above 1 for progressive pictures.
    pub scans: usize,
    /// Offset just past the end-of-image marker.
    pub end: usize,
}

/// Walks the whole JPEG at the start of `data`: its frame header, scans and end.
pub fn layout(data: &[u8]) -> Result<Layout, JpegError> {
    let mut frame = None;
    let mut scans = 0;
    for segment in Markers::new(data) {
        let segment = segment?;
        match segment.code {
            code if marker::is_frame_header(code) && frame.is_none() => {
                frame = Some(FrameHeader::parse(
                    code,
                    segment.payload(data),
                    segment.offset,
                )?);
            }
            marker::SOS | marker::EOI if frame.is_none() => {
                return Err(JpegError::NoFrameHeader { at: segment.offset });
            }
            marker::SOS => scans += 1,
            marker::EOI => {
                return frame
                    .map(|frame| Layout {
                        frame,
                        scans,
                        end: segment.end,
                    })
                    .ok_or(JpegError::NoFrameHeader { at: segment.offset });
            }
            _ => {}
        }
    }
    Err(JpegError::Truncated { len: data.len() })
}

#[cfg(test)]
pub(crate) mod tests;
