//! The "NO SIGNAL" card shown while the scope sends nothing.
//!
//! A tiny built-in 5x7 bitmap font covers the ~20 glyphs needed: a font crate plus a
//! rasterizer would be a large dependency for two fixed lines of capitals, and block
//! letters scaled by whole pixels stay sharp at any output size.

use super::decode::YuyvFrame;

/// Background: a dark slate blue (RGB 24, 32, 56) in limited-range BT.601, so the card
/// is clearly not a black (dead) picture and not the scope's own black.
pub(crate) const BACKGROUND: [u8; 3] = [44, 140, 123];
/// Letters: limited-range white.
pub(crate) const INK: [u8; 3] = [235, 128, 128];

pub(crate) const HEADLINE: &str = "NO SIGNAL";
pub(crate) const SUBTITLE: &str = "SCOPECAM: WAITING FOR THE BORESCOPE";

const GLYPH_WIDTH: u32 = 5;
const GLYPH_HEIGHT: u32 = 7;
/// A glyph plus one column of spacing.
const CELL_WIDTH: u32 = GLYPH_WIDTH + 1;

/// Rows of a glyph, top first; bit 4 is the leftmost column. Unknown characters are blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        _ => [0; 7],
    }
}

/// Width of `text` in font pixels (no trailing spacing column).
fn text_units(text: &str) -> u32 {
    (text.chars().count() as u32 * CELL_WIDTH).saturating_sub(1)
}

/// Largest whole-pixel scale at which `text` spans at most `fraction_percent` of `width`
/// and its height at most `max_height`; even when >= 2 so glyph edges fall on YUYV pair
/// boundaries (no chroma fringes). At least 1.
fn scale_for(text: &str, width: u32, fraction_percent: u32, max_height: u32) -> u32 {
    let by_width = width * fraction_percent / 100 / text_units(text).max(1);
    let by_height = max_height / GLYPH_HEIGHT;
    let scale = by_width.min(by_height).max(1);
    if scale >= 2 { scale & !1 } else { scale }
}

/// A `width` x `height` card (width even) with the headline centred and the subtitle below.
pub(crate) fn render(width: u32, height: u32) -> YuyvFrame {
    let mut frame = YuyvFrame {
        width,
        height,
        data: BACKGROUND_PAIR.repeat(width as usize / 2 * height as usize),
    };
    let big = scale_for(HEADLINE, width, 70, height / 4);
    let small = scale_for(SUBTITLE, width, 85, height / 16).min(big.div_ceil(3).max(1));
    let gap = small * GLYPH_HEIGHT;
    let block = big * GLYPH_HEIGHT + gap + small * GLYPH_HEIGHT;
    let top = height.saturating_sub(block) / 2;
    draw_centred(&mut frame, HEADLINE, big, top);
    draw_centred(&mut frame, SUBTITLE, small, top + big * GLYPH_HEIGHT + gap);
    frame
}

const BACKGROUND_PAIR: [u8; 4] = [BACKGROUND[0], BACKGROUND[1], BACKGROUND[0], BACKGROUND[2]];

fn draw_centred(frame: &mut YuyvFrame, text: &str, scale: u32, top: u32) {
    let text_width = text_units(text) * scale;
    let left = (frame.width.saturating_sub(text_width) / 2) & !1;
    for (i, c) in text.chars().enumerate() {
        let x = left + i as u32 * CELL_WIDTH * scale;
        draw_glyph(frame, glyph(c), x, top, scale);
    }
}

fn draw_glyph(frame: &mut YuyvFrame, rows: [u8; 7], left: u32, top: u32, scale: u32) {
    for (row_index, bits) in rows.iter().enumerate() {
        for column in 0..GLYPH_WIDTH {
            if bits & (0x10 >> column) != 0 {
                let x = left + column * scale;
                let y = top + row_index as u32 * scale;
                fill_square(frame, x, y, scale);
            }
        }
    }
}

/// Inks a `size` x `size` square at (x, y), clipped to the frame.
fn fill_square(frame: &mut YuyvFrame, x: u32, y: u32, size: u32) {
    let row_bytes = frame.width as usize * 2;
    for py in y..(y + size).min(frame.height) {
        for px in x..(x + size).min(frame.width) {
            let pair = py as usize * row_bytes + (px as usize & !1) * 2;
            if let Some(bytes) = frame.data.get_mut(pair..pair + 4) {
                bytes[(px as usize & 1) * 2] = INK[0];
                bytes[1] = INK[1];
                bytes[3] = INK[2];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lumas(frame: &YuyvFrame) -> impl Iterator<Item = u8> + '_ {
        frame.data.iter().step_by(2).copied()
    }

    #[test]
    fn card_has_background_and_white_letters_only() {
        let card = render(1280, 720);
        assert_eq!(card.data.len(), 1280 * 2 * 720);
        assert!(lumas(&card).all(|y| y == BACKGROUND[0] || y == INK[0]));
        let inked = lumas(&card).filter(|&y| y == INK[0]).count();
        assert!(inked > 1280 * 720 / 50, "letters are large: {inked} pixels");
        assert!(inked < 1280 * 720 / 3, "mostly background: {inked} pixels");
        // With even glyph scales every pair is wholly letter or wholly background.
        for pair in card.data.chunks_exact(4) {
            let expected = if pair[0] == INK[0] { INK } else { BACKGROUND };
            assert_eq!(
                [pair[0], pair[1], pair[2], pair[3]],
                [expected[0], expected[1], expected[0], expected[2]]
            );
        }
    }

    #[test]
    fn letters_are_centred() {
        let card = render(1280, 720);
        let (mut min_x, mut max_x, mut min_y, mut max_y) = (u32::MAX, 0, u32::MAX, 0);
        for (i, y) in lumas(&card).enumerate() {
            if y == INK[0] {
                let (px, py) = (i as u32 % 1280, i as u32 / 1280);
                (min_x, max_x, min_y, max_y) =
                    (min_x.min(px), max_x.max(px), min_y.min(py), max_y.max(py));
            }
        }
        assert!(min_x.abs_diff(1279 - max_x) <= 12, "{min_x}..{max_x}");
        assert!(min_y.abs_diff(719 - max_y) <= 12, "{min_y}..{max_y}");
    }

    #[test]
    fn tiny_and_odd_cards_do_not_panic() {
        for (w, h) in [(2, 1), (2, 2), (4, 3), (16, 4096), (4096, 2), (10, 10)] {
            let card = render(w, h);
            assert_eq!(card.data.len(), (w * 2 * h) as usize, "{w}x{h}");
        }
    }
}
