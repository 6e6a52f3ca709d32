//! The moving test pattern the simulated scope streams.
//!
//! Three horizontal bands, each chosen so that a human sees at a glance that
//! video is flowing and a test can check the pixels:
//! - top: eight colour bars in the classic order (white, yellow, cyan, green,
//!   magenta, red, blue, black), so colour and chroma handling are visible;
//! - middle: a grey ramp with a white box that moves left to right over
//!   [`PATTERN_PERIOD`] frames, so motion and dropped frames are visible;
//! - bottom: the frame number modulo [`PATTERN_PERIOD`] as binary cells
//!   (white = 1, most significant bit on the left), so tests can read it back.
//!
//! The pattern depends only on `frame_number % PATTERN_PERIOD`, which lets
//! the simulator encode each of those frames once and replay them.

use std::fmt;
use std::str::FromStr;

use jpeg_encoder::{ColorType, Encoder, EncodingError, SamplingFactor};

/// The pattern repeats after this many frames.
pub const PATTERN_PERIOD: u64 = 64;
/// Bits needed to show `frame_number % PATTERN_PERIOD`.
pub const COUNTER_BITS: u32 = PATTERN_PERIOD.trailing_zeros();
/// Largest width or height the pattern is rendered at; bigger requests are
/// clamped so that a typo cannot allocate gigabytes.
pub const MAX_PATTERN_DIMENSION: u32 = 8192;

/// The colour bars of the top band, left to right.
pub const COLOUR_BARS: [[u8; 3]; 8] = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
];
const BOX_COLOUR: [u8; 3] = [255, 255, 255];
const RAMP_MAX: u32 = 160;
const BIT_ON: [u8; 3] = [255, 255, 255];
const BIT_OFF: [u8; 3] = [0, 0, 0];
const BIT_GAP: [u8; 3] = [128, 128, 128];

/// Chroma subsampling of the encoded JPEGs. Real scopes send 4:2:2 or 4:2:0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Subsampling {
    /// No chroma subsampling.
    S444,
    /// Chroma halved horizontally (what the J103 is reported to send).
    #[default]
    S422,
    /// Chroma halved in both directions.
    S420,
    /// Luma only (a one-component JPEG).
    Gray,
}

impl fmt::Display for Subsampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Subsampling::S444 => "444",
            Subsampling::S422 => "422",
            Subsampling::S420 => "420",
            Subsampling::Gray => "gray",
        })
    }
}

/// Why a string is not a subsampling name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown subsampling {0:?}: expected 444, 422, 420 or gray")]
pub struct ParseSubsamplingError(pub String);

impl FromStr for Subsampling {
    type Err = ParseSubsamplingError;

    /// Accepts "444", "422", "420", "gray" (also "4:2:2" style and "grey").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalised: String = s
            .trim()
            .chars()
            .filter(|&c| c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        match normalised.as_str() {
            "444" => Ok(Subsampling::S444),
            "422" => Ok(Subsampling::S422),
            "420" => Ok(Subsampling::S420),
            "gray" | "grey" => Ok(Subsampling::Gray),
            _ => Err(ParseSubsamplingError(s.to_string())),
        }
    }
}

/// The JPEG of pattern frame `frame_number`, exactly as the simulator sends it.
///
/// Deterministic: the same arguments always give the same bytes, and
/// `frame_number` only matters modulo [`PATTERN_PERIOD`]. Width and height are
/// clamped to `1..=MAX_PATTERN_DIMENSION` and quality to `1..=100`; never panics
/// (an encoder failure, which valid dimensions rule out, gives an empty Vec).
pub fn encode_pattern_frame(
    width: u32,
    height: u32,
    subsampling: Subsampling,
    quality: u8,
    frame_number: u64,
) -> Vec<u8> {
    let width = clamp_dimension(width);
    let height = clamp_dimension(height);
    let rgb = render_rgb(width, height, frame_number);
    encode_rgb(&rgb, width, height, subsampling, quality).unwrap_or_else(|error| {
        tracing::error!("encoding the test pattern failed: {error}");
        Vec::new()
    })
}

fn clamp_dimension(value: u32) -> u32 {
    value.clamp(1, MAX_PATTERN_DIMENSION)
}

/// Renders the pattern as packed RGB, `width * height * 3` bytes.
pub fn render_rgb(width: u32, height: u32, frame_number: u64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let phase = frame_number % PATTERN_PERIOD;
    let geometry = Geometry::new(width, height, phase);
    for (y, row) in rgb.chunks_exact_mut(w * 3).enumerate() {
        for (x, pixel) in row.chunks_exact_mut(3).enumerate() {
            pixel.copy_from_slice(&geometry.colour_at(x as u32, y as u32, phase));
        }
    }
    rgb
}

/// Where the bands, the moving box and the counter cells are for one frame.
struct Geometry {
    width: u32,
    band_height: u32,
    box_left: u32,
    box_size: u32,
}

impl Geometry {
    fn new(width: u32, height: u32, phase: u64) -> Self {
        let band_height = (height / 3).max(1);
        let box_size = band_height.min(width / 8).max(1);
        let travel = u64::from(width.saturating_sub(box_size));
        let box_left = (travel * phase / (PATTERN_PERIOD - 1)) as u32;
        Geometry {
            width,
            band_height,
            box_left,
            box_size,
        }
    }

    fn colour_at(&self, x: u32, y: u32, phase: u64) -> [u8; 3] {
        match y / self.band_height {
            0 => self.colour_bar(x),
            1 => self.moving_box_band(x, y - self.band_height),
            _ => self.counter_cell(x, phase),
        }
    }

    fn colour_bar(&self, x: u32) -> [u8; 3] {
        let bar = (u64::from(x) * 8 / u64::from(self.width)) as usize;
        COLOUR_BARS[bar.min(7)]
    }

    fn moving_box_band(&self, x: u32, y_in_band: u32) -> [u8; 3] {
        let in_box_x = x >= self.box_left && x < self.box_left + self.box_size;
        let in_box_y = y_in_band < self.box_size;
        if in_box_x && in_box_y {
            return BOX_COLOUR;
        }
        let level = (u64::from(x) * u64::from(RAMP_MAX) / u64::from(self.width)) as u8;
        [level; 3]
    }

    /// Cells of equal width, one per counter bit, with a grey gap at each
    /// cell's left edge so that neighbouring equal bits stay distinguishable.
    fn counter_cell(&self, x: u32, phase: u64) -> [u8; 3] {
        let cell_width = (self.width / COUNTER_BITS).max(1);
        let cell = x / cell_width;
        if cell >= COUNTER_BITS {
            return BIT_GAP;
        }
        if x % cell_width < cell_width / 8 {
            return BIT_GAP;
        }
        let bit = COUNTER_BITS - 1 - cell;
        if (phase >> bit) & 1 == 1 {
            BIT_ON
        } else {
            BIT_OFF
        }
    }
}

/// Encodes packed RGB with the requested subsampling (gray: converted to luma).
fn encode_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    subsampling: Subsampling,
    quality: u8,
) -> Result<Vec<u8>, EncodingError> {
    let (w, h) = (dimension_u16(width), dimension_u16(height));
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    match subsampling {
        Subsampling::Gray => encoder.encode(&rgb_to_luma(rgb), w, h, ColorType::Luma)?,
        colour => {
            encoder.set_sampling_factor(sampling_factor(colour));
            encoder.encode(rgb, w, h, ColorType::Rgb)?
        }
    }
    Ok(out)
}

fn dimension_u16(value: u32) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

fn sampling_factor(subsampling: Subsampling) -> SamplingFactor {
    match subsampling {
        Subsampling::S444 | Subsampling::Gray => SamplingFactor::F_1_1,
        Subsampling::S422 => SamplingFactor::F_2_1,
        Subsampling::S420 => SamplingFactor::F_2_2,
    }
}

/// BT.601 luma, the weights JPEG itself uses.
fn rgb_to_luma(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            let y = 299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
            ((y + 500) / 1000) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(jpeg: &[u8]) -> (Vec<u8>, jpeg_decoder::ImageInfo, Vec<(u8, u8)>) {
        let mut decoder = jpeg_decoder::Decoder::new(jpeg);
        let pixels = decoder.decode().expect("pattern JPEG decodes");
        let info = decoder.info().unwrap();
        (pixels, info, sampling_factors(jpeg))
    }

    /// (horizontal, vertical) sampling factor per component, from the SOF
    /// segment (jpeg-decoder does not expose them).
    fn sampling_factors(jpeg: &[u8]) -> Vec<(u8, u8)> {
        let mut pos = 2;
        while jpeg[pos] == 0xFF {
            let marker = jpeg[pos + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if (0xC0..=0xC2).contains(&marker) {
                let components = usize::from(jpeg[pos + 9]);
                return (0..components)
                    .map(|c| jpeg[pos + 11 + 3 * c])
                    .map(|hv| (hv >> 4, hv & 0x0F))
                    .collect();
            }
            pos += 2 + len;
        }
        panic!("no SOF segment");
    }

    #[test]
    fn subsampling_parses_the_cli_names() {
        for (text, expected) in [
            ("444", Subsampling::S444),
            ("422", Subsampling::S422),
            ("4:2:0", Subsampling::S420),
            ("GRAY", Subsampling::Gray),
            ("grey", Subsampling::Gray),
        ] {
            assert_eq!(text.parse::<Subsampling>(), Ok(expected));
        }
        assert!("411".parse::<Subsampling>().is_err());
        for s in [
            Subsampling::S444,
            Subsampling::S422,
            Subsampling::S420,
            Subsampling::Gray,
        ] {
            assert_eq!(s.to_string().parse::<Subsampling>(), Ok(s));
        }
    }

    #[test]
    fn pattern_decodes_to_requested_size_and_subsampling() {
        let cases = [
            (Subsampling::S444, vec![(1, 1), (1, 1), (1, 1)]),
            (Subsampling::S422, vec![(2, 1), (1, 1), (1, 1)]),
            (Subsampling::S420, vec![(2, 2), (1, 1), (1, 1)]),
            (Subsampling::Gray, vec![(1, 1)]),
        ];
        for (subsampling, expected_factors) in cases {
            let jpeg = encode_pattern_frame(160, 120, subsampling, 85, 3);
            let (pixels, info, factors) = decode(&jpeg);
            assert_eq!((info.width, info.height), (160, 120), "{subsampling}");
            assert_eq!(factors, expected_factors, "{subsampling}");
            let components = if subsampling == Subsampling::Gray {
                1
            } else {
                3
            };
            assert_eq!(pixels.len(), 160 * 120 * components);
        }
    }

    #[test]
    fn colour_bars_keep_their_colours_through_jpeg() {
        let (w, h) = (320u32, 240u32);
        let jpeg = encode_pattern_frame(w, h, Subsampling::S444, 95, 0);
        let (pixels, _, _) = decode(&jpeg);
        let y = h / 6;
        for (bar, expected) in COLOUR_BARS.iter().enumerate() {
            let x = (bar as u32 * w / 8) + w / 16;
            let at = ((y * w + x) * 3) as usize;
            for c in 0..3 {
                let got = i32::from(pixels[at + c]);
                assert!(
                    (got - i32::from(expected[c])).abs() < 24,
                    "bar {bar} channel {c}: got {got}, expected {}",
                    expected[c]
                );
            }
        }
    }

    #[test]
    fn box_moves_and_counter_shows_the_frame_number() {
        let (w, h) = (256u32, 96u32);
        for frame in [0u64, 1, 37, 63] {
            let rgb = render_rgb(w, h, frame);
            let geometry = Geometry::new(w, h, frame);
            let box_row = (h / 3) as usize;
            let at = (box_row * w as usize + geometry.box_left as usize) * 3;
            assert_eq!(&rgb[at..at + 3], &BOX_COLOUR);
            let cell_width = w / COUNTER_BITS;
            let row = (h - 1) as usize;
            let mut read_back = 0u64;
            for cell in 0..COUNTER_BITS {
                let x = (cell * cell_width + cell_width / 2) as usize;
                let pixel = &rgb[(row * w as usize + x) * 3..][..3];
                read_back = (read_back << 1) | u64::from(pixel == BIT_ON);
            }
            assert_eq!(read_back, frame);
        }
        assert_ne!(
            Geometry::new(w, h, 0).box_left,
            Geometry::new(w, h, 1).box_left
        );
    }

    #[test]
    fn pattern_is_deterministic_and_periodic() {
        let a = encode_pattern_frame(64, 48, Subsampling::S420, 70, 5);
        assert_eq!(a, encode_pattern_frame(64, 48, Subsampling::S420, 70, 5));
        assert_eq!(
            a,
            encode_pattern_frame(64, 48, Subsampling::S420, 70, 5 + PATTERN_PERIOD)
        );
        assert_ne!(a, encode_pattern_frame(64, 48, Subsampling::S420, 70, 6));
    }

    #[test]
    fn silly_arguments_do_not_panic() {
        for (w, h, q) in [(0, 0, 0), (1, 1, 255), (3, 1, 1), (u32::MAX, 1, 50)] {
            let w = w.min(MAX_PATTERN_DIMENSION + 5);
            let jpeg = encode_pattern_frame(w, h, Subsampling::S420, q, u64::MAX);
            assert!(jpeg.starts_with(&[0xFF, 0xD8]));
        }
    }
}
