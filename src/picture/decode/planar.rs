//! Planar 4:2:2 pictures, the layout of a y4m (YUV4MPEG2 `C422`) frame.

/// A planar 4:2:2 picture, limited-range BT.601, in one buffer: `width * height` luma
/// samples, then `width / 2 * height` Cb, then as many Cr. `width` is always even (an odd
/// width is padded by repeating the last column, as for [`super::YuyvFrame`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planar422Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Planar422Frame {
    /// The bytes a frame of this size has: `2 * width * height`.
    pub fn expected_len(&self) -> usize {
        2 * self.width as usize * self.height as usize
    }

    /// The Y, Cb and Cr planes (all empty when `data` does not have the stated size).
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        if self.data.len() != self.expected_len() {
            return (&[], &[], &[]);
        }
        let luma = self.data.len() / 2;
        let (y, chroma) = self.data.split_at(luma);
        let (u, v) = chroma.split_at(luma / 2);
        (y, u, v)
    }
}

/// Mutable Y, Cb, Cr planes of a buffer laid out as [`Planar422Frame::data`] for an even
/// `width` (`None` when the buffer has another size or the width is odd).
pub(super) fn planes_mut(
    data: &mut [u8],
    width: usize,
    height: usize,
) -> Option<(&mut [u8], &mut [u8], &mut [u8])> {
    let luma = width * height;
    if data.len() != 2 * luma || width % 2 != 0 {
        return None;
    }
    let (y, chroma) = data.split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 2);
    Some((y, u, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_split_the_buffer_in_the_y4m_order() {
        let frame = Planar422Frame {
            width: 4,
            height: 1,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
        };
        assert_eq!(
            frame.planes(),
            (&[1, 2, 3, 4][..], &[5, 6][..], &[7, 8][..])
        );
        let short = Planar422Frame {
            data: vec![1; 7],
            ..frame
        };
        assert_eq!(short.planes(), (&[][..], &[][..], &[][..]));
    }

    #[test]
    fn mutable_planes_need_the_exact_size_and_an_even_width() {
        let mut data = vec![0; 12];
        let (y, u, v) = planes_mut(&mut data, 2, 3).expect("2x3 fits 12 bytes");
        assert_eq!((y.len(), u.len(), v.len()), (6, 3, 3));
        assert!(planes_mut(&mut data, 4, 2).is_none());
        assert!(planes_mut(&mut data, 3, 2).is_none());
    }
}
