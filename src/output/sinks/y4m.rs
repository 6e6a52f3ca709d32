//! YUV4MPEG2 (y4m): uncompressed 4:2:2 that `ffplay -`, `ffmpeg -i -` and `mpv -` read
//! without options, so the bridge can be tried before any webcam device is set up.
//!
//! The header is written with the first frame, whose size then fixes the stream's geometry
//! (y4m cannot change size mid-stream): later frames of another size are refused with
//! [`SinkError::GeometryChanged`] and the sink carries on with frames of the first size.

use super::{OutFrame, Sink, SinkError};
use crate::picture::decode::YuyvFrame;
use std::io::Write;

pub struct Y4mSink {
    out: Box<dyn Write + Send>,
    target: String,
    fps: u32,
    /// (width, height) from the first frame, once the header is out.
    geometry: Option<(u32, u32)>,
    /// Reused planar Y, Cb, Cr of one frame, so each frame is one `write_all`.
    planar: Vec<u8>,
}

impl Y4mSink {
    /// `target` names the output in logs and errors, e.g. "y4m to stdout".
    pub fn new(out: Box<dyn Write + Send>, target: String, options: &super::SinkOptions) -> Self {
        Self {
            out,
            target,
            fps: options.fps_hint.max(1),
            geometry: None,
            planar: Vec::new(),
        }
    }

    fn header(&self, width: u32, height: u32) -> String {
        format!(
            "YUV4MPEG2 W{width} H{height} F{}:1 Ip A1:1 C422 XCOLORRANGE=LIMITED\n",
            self.fps
        )
    }

    fn check_frame<'f>(&self, yuyv: Option<&'f YuyvFrame>) -> Result<&'f YuyvFrame, SinkError> {
        let frame = yuyv.ok_or_else(|| SinkError::MissingYuyv {
            target: self.target.clone(),
        })?;
        let expected = frame.width as usize * 2 * frame.height as usize;
        if frame.data.len() != expected || frame.width % 2 != 0 {
            return Err(SinkError::BadFrame {
                target: self.target.clone(),
                width: frame.width,
                height: frame.height,
                len: frame.data.len(),
                expected,
            });
        }
        match self.geometry {
            Some((w, h)) if (w, h) != (frame.width, frame.height) => {
                Err(SinkError::GeometryChanged {
                    target: self.target.clone(),
                    width: frame.width,
                    height: frame.height,
                    stream_width: w,
                    stream_height: h,
                })
            }
            _ => Ok(frame),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        self.out
            .write_all(bytes)
            .map_err(|e| SinkError::from_write(&self.target, e))
    }
}

/// Splits packed YUYV (Y0 U Y1 V) into `FRAME\n` + planar Y, then Cb, then Cr, into `out`.
///
/// Sixteen pixels a step through fixed-size chunks, which the compiler turns into vector
/// shuffles: a byte-by-byte split cost more than the whole JPEG decode at 720p. Written by
/// hand because yuvutils-rs 0.8's YUYV deinterleave leaves the columns past its last
/// full SIMD block unwritten (a 30-pixel-wide picture lost 14 columns a row).
fn yuyv_to_y4m_frame(yuyv: &[u8], out: &mut Vec<u8>) {
    const FRAME: &[u8] = b"FRAME\n";
    const PIXELS: usize = 16;
    let luma = yuyv.len() / 2;
    out.clear();
    out.extend_from_slice(FRAME);
    out.resize(FRAME.len() + 2 * luma, 0);
    let (y_plane, chroma) = out[FRAME.len()..].split_at_mut(luma);
    let (u_plane, v_plane) = chroma.split_at_mut(luma / 2);
    let blocks = yuyv.len() / (2 * PIXELS);
    let (head, tail) = yuyv.split_at(blocks * 2 * PIXELS);
    let (y_head, y_tail) = y_plane.split_at_mut(blocks * PIXELS);
    let (u_head, u_tail) = u_plane.split_at_mut(blocks * PIXELS / 2);
    let (v_head, v_tail) = v_plane.split_at_mut(blocks * PIXELS / 2);
    for (((px, y), u), v) in head
        .chunks_exact(2 * PIXELS)
        .zip(y_head.chunks_exact_mut(PIXELS))
        .zip(u_head.chunks_exact_mut(PIXELS / 2))
        .zip(v_head.chunks_exact_mut(PIXELS / 2))
    {
        for i in 0..PIXELS / 2 {
            y[2 * i] = px[4 * i];
            y[2 * i + 1] = px[4 * i + 2];
            u[i] = px[4 * i + 1];
            v[i] = px[4 * i + 3];
        }
    }
    for (((px, y), u), v) in tail
        .chunks_exact(4)
        .zip(y_tail.chunks_exact_mut(2))
        .zip(u_tail.iter_mut())
        .zip(v_tail.iter_mut())
    {
        y.copy_from_slice(&[px[0], px[2]]);
        *u = px[1];
        *v = px[3];
    }
}

impl Sink for Y4mSink {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn needs_yuyv(&self) -> bool {
        true
    }

    fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
        let yuyv = self.check_frame(frame.yuyv)?;
        if self.geometry.is_none() {
            let header = self.header(yuyv.width, yuyv.height);
            self.write_all(header.as_bytes())?;
            self.geometry = Some((yuyv.width, yuyv.height));
        }
        let mut planar = std::mem::take(&mut self.planar);
        yuyv_to_y4m_frame(&yuyv.data, &mut planar);
        let written = self.write_all(&planar);
        self.planar = planar;
        written?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(|e| SinkError::from_write(&self.target, e))
    }
}

#[cfg(test)]
mod tests {
    use super::yuyv_to_y4m_frame;

    /// The split the block path must equal: every even byte is Y, then every U, then every V.
    fn reference_split(yuyv: &[u8]) -> Vec<u8> {
        let mut out = b"FRAME\n".to_vec();
        out.extend(yuyv.iter().step_by(2));
        out.extend(yuyv.iter().skip(1).step_by(4));
        out.extend(yuyv.iter().skip(3).step_by(4));
        out
    }

    #[test]
    fn block_split_equals_the_byte_by_byte_split_at_every_width() {
        // Widths around and well past the 16-pixel block, so both the block loop and
        // the pixel-by-pixel tail are exercised; pseudo-random samples so a swapped plane shows.
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        };
        let mut out = Vec::new();
        for (width, height) in [
            (2, 1),
            (6, 4),
            (30, 3),
            (64, 2),
            (98, 5),
            (1280, 3),
            (1922, 2),
        ] {
            let yuyv: Vec<u8> = (0..width * 2 * height).map(|_| next()).collect();
            yuyv_to_y4m_frame(&yuyv, &mut out);
            assert_eq!(out, reference_split(&yuyv), "{width}x{height}");
        }
    }
}
