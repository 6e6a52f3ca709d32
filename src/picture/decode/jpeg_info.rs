//! Cheap JPEG facts for the MJPEG pass-through camera: the picture size from the frame
//! header (no decoding), and encoding a YUYV picture (the "no signal" card) to JPEG.

use super::YuyvFrame;

/// Encodes a limited-range YUYV picture as a baseline JPEG (full-range, as JFIF wants).
pub fn yuyv_to_jpeg(
    frame: &YuyvFrame,
    quality: u8,
) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut rgb = Vec::with_capacity(width * height * 3);
    for pair in frame.data.chunks_exact(4) {
        let (u, v) = (f32::from(pair[1]) - 128.0, f32::from(pair[3]) - 128.0);
        for y in [pair[0], pair[2]] {
            let y = (f32::from(y) - 16.0) * 255.0 / 219.0;
            let scale = 255.0 / 224.0;
            let r = y + 1.402 * scale * v;
            let g = y - 0.344_136 * scale * u - 0.714_136 * scale * v;
            let b = y + 1.772 * scale * u;
            rgb.extend([r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8));
        }
    }
    let mut out = Vec::new();
    let to_u16 = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
    jpeg_encoder::Encoder::new(&mut out, quality).encode(
        &rgb,
        to_u16(frame.width),
        to_u16(frame.height),
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_size_from_the_frame_header() {
        assert_eq!(
            crate::jpeg::dimensions(&super::super::solid_jpeg(640, 480, 90)),
            Some((640, 480))
        );
        assert_eq!(
            crate::jpeg::dimensions(&super::super::solid_jpeg(1280, 720, 90)),
            Some((1280, 720))
        );
        assert_eq!(
            crate::jpeg::dimensions(&super::super::solid_jpeg(33, 7, 90)),
            Some((33, 7))
        );
    }

    #[test]
    fn garbage_and_truncated_headers_have_no_size() {
        let jpeg = super::super::solid_jpeg(64, 48, 90);
        assert_eq!(crate::jpeg::dimensions(b""), None);
        assert_eq!(crate::jpeg::dimensions(b"not a jpeg"), None);
        assert_eq!(crate::jpeg::dimensions(&[0xFF, 0xD8, 0xFF, 0xD9]), None);
        let sof = crate::jpeg::Markers::new(&jpeg)
            .map(Result::unwrap)
            .find(|segment| segment.code == crate::jpeg::marker::SOF0)
            .unwrap()
            .offset;
        for cut in [3, sof, sof + 4, sof + 8] {
            assert_eq!(crate::jpeg::dimensions(&jpeg[..cut]), None, "cut at {cut}");
        }
        let mut zero_length = jpeg[..4].to_vec();
        zero_length.extend([0, 0, 0, 0]);
        assert_eq!(crate::jpeg::dimensions(&zero_length), None);
    }

    #[test]
    fn yuyv_pictures_encode_to_jpegs_of_their_size() {
        // Limited-range mid grey.
        let frame = YuyvFrame {
            width: 64,
            height: 48,
            data: [126, 128, 126, 128].repeat(32 * 48),
        };
        let jpeg = yuyv_to_jpeg(&frame, 80).unwrap();
        assert_eq!(crate::jpeg::dimensions(&jpeg), Some((64, 48)));
        let mut decoder = super::super::Decoder::new();
        let back = decoder.decode(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (64, 48));
        assert!(back.data.iter().step_by(2).all(|&y| y.abs_diff(126) <= 2));
    }
}
