//! YUV4MPEG2 (y4m): uncompressed 4:2:2 that `ffplay -`, `ffmpeg -i -` and `mpv -` read
//! without options, so the bridge can be tried before any webcam device is set up.
//!
//! The header is written with the first frame, whose size then fixes the stream's geometry
//! (y4m cannot change size mid-stream): later frames of another size are refused with
//! [`SinkError::GeometryChanged`] and the sink carries on with frames of the first size.

use super::{OutFrame, Sink, SinkError};
use crate::decode::YuyvFrame;
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
fn yuyv_to_y4m_frame(yuyv: &[u8], out: &mut Vec<u8>) {
    const FRAME: &[u8] = b"FRAME\n";
    out.clear();
    out.reserve(FRAME.len() + yuyv.len());
    out.extend_from_slice(FRAME);
    out.extend(yuyv.iter().step_by(2));
    out.extend(yuyv.iter().skip(1).step_by(4));
    out.extend(yuyv.iter().skip(3).step_by(4));
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
