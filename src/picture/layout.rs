//! Where a scope picture lands in the fixed output: the largest centred rectangle with the
//! picture's aspect ratio (letterbox, never stretch).

use super::Geometry;

/// The content rectangle inside the output. `x` and `width` are even so that YUYV pixel
/// pairs never straddle content and bar (a shared chroma sample would smear the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Fits a `source_width` x `source_height` picture (already rotated) into `output`.
///
/// `output` must have an even width >= 2 and height >= 1 (see `Geometry::sanitized`); a
/// zero-sized source is treated as 1x1. Content is at least 2x1 pixels, so even a 4096x16
/// sliver shows something.
pub(crate) fn fit(source_width: u32, source_height: u32, output: Geometry) -> ContentRect {
    let (sw, sh) = (
        u64::from(source_width.max(1)),
        u64::from(source_height.max(1)),
    );
    let (ow, oh) = (u64::from(output.width), u64::from(output.height));
    let (width, height) = if sw * oh >= sh * ow {
        // Relatively wider than the output: full width, bars above and below.
        (ow, rounded_div(sh * ow, sw).clamp(1, oh))
    } else {
        (rounded_div(sw * oh, sh).clamp(1, ow), oh)
    };
    let width = nearest_even(width).clamp(2, ow);
    let x = ((ow - width) / 2) & !1;
    let y = (oh - height) / 2;
    // All four fit in u32: each is at most the output's own u32 size.
    ContentRect {
        x: x as u32,
        y: y as u32,
        width: width as u32,
        height: height as u32,
    }
}

fn rounded_div(numerator: u64, denominator: u64) -> u64 {
    (numerator + denominator / 2) / denominator.max(1)
}

fn nearest_even(n: u64) -> u64 {
    (n + 1) & !1
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: Geometry = Geometry {
        width: 1280,
        height: 720,
    };

    fn rect(x: u32, y: u32, width: u32, height: u32) -> ContentRect {
        ContentRect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn four_by_three_into_hd_has_side_bars() {
        assert_eq!(fit(640, 480, HD), rect(160, 0, 960, 720));
    }

    #[test]
    fn hd_into_four_by_three_has_top_and_bottom_bars() {
        let vga = Geometry {
            width: 640,
            height: 480,
        };
        assert_eq!(fit(1280, 720, vga), rect(0, 60, 640, 360));
    }

    #[test]
    fn same_aspect_fills_the_output() {
        assert_eq!(fit(1920, 1080, HD), rect(0, 0, 1280, 720));
        assert_eq!(fit(1280, 720, HD), rect(0, 0, 1280, 720));
    }

    #[test]
    fn slivers_keep_at_least_a_pixel_pair() {
        assert_eq!(fit(4096, 16, HD), rect(0, 357, 1280, 5));
        assert_eq!(fit(16, 4096, HD), rect(638, 0, 4, 720));
        assert_eq!(fit(4096, 1, HD).height, 1);
        assert_eq!(fit(0, 0, HD), rect(280, 0, 720, 720));
    }
}
