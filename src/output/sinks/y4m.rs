//! YUV4MPEG2 (y4m): uncompressed 4:2:2 that `ffplay -`, `ffmpeg -i -` and `mpv -` read
//! without options, so the bridge can be tried before any webcam device is set up.
//!
//! The header is written with the first frame, whose size then fixes the stream's geometry
//! (y4m cannot change size mid-stream): later frames of another size are refused with
//! [`SinkError::GeometryChanged`] and the sink carries on with frames of the first size.
//!
//! The sink takes the decoder's planar 4:2:2 ([`Sink::needs_planar`]), whose buffer is
//! laid out as a y4m frame already: each frame is `FRAME\n` and that buffer, no copy.

use super::{OutFrame, Sink, SinkError};
use crate::picture::decode::Planar422Frame;
use std::io::Write;

pub struct Y4mSink {
    out: Box<dyn Write + Send>,
    target: String,
    fps: u32,
    /// (width, height) from the first frame, once the header is out.
    geometry: Option<(u32, u32)>,
}

impl Y4mSink {
    /// `target` names the output in logs and errors, e.g. "y4m to stdout".
    pub fn new(out: Box<dyn Write + Send>, target: String, options: &super::SinkOptions) -> Self {
        Self {
            out,
            target,
            fps: options.fps_hint.max(1),
            geometry: None,
        }
    }

    fn header(&self, width: u32, height: u32) -> String {
        format!(
            "YUV4MPEG2 W{width} H{height} F{}:1 Ip A1:1 C422 XCOLORRANGE=LIMITED\n",
            self.fps
        )
    }

    fn check_frame<'f>(
        &self,
        planar: Option<&'f Planar422Frame>,
    ) -> Result<&'f Planar422Frame, SinkError> {
        let frame = planar.ok_or_else(|| SinkError::MissingPicture {
            target: self.target.clone(),
        })?;
        let expected = frame.expected_len();
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

impl Sink for Y4mSink {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn needs_yuyv(&self) -> bool {
        false
    }

    /// The decoder's planes are y4m's layout already: a frame is `FRAME\n` and the buffer.
    fn needs_planar(&self) -> bool {
        true
    }

    fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
        let planar = self.check_frame(frame.planar)?;
        if self.geometry.is_none() {
            let header = self.header(planar.width, planar.height);
            self.write_all(header.as_bytes())?;
            self.geometry = Some((planar.width, planar.height));
        }
        self.write_all(b"FRAME\n")?;
        self.write_all(&planar.data)?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(|e| SinkError::from_write(&self.target, e))
    }
}
