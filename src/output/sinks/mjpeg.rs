//! Raw MJPEG: each frame's original JPEG bytes back to back, like the reference viewer's
//! `--save`. Lossless and cheap (no decode); `ffplay -f mjpeg FILE` plays it.

use super::{OutFrame, Sink, SinkError};
use std::io::Write;

pub struct MjpegSink {
    out: Box<dyn Write + Send>,
    target: String,
}

impl MjpegSink {
    /// `target` names the output in logs and errors, e.g. "mjpeg to stdout".
    pub fn new(out: Box<dyn Write + Send>, target: String) -> Self {
        Self { out, target }
    }
}

impl Sink for MjpegSink {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn needs_yuyv(&self) -> bool {
        false
    }

    fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
        self.out
            .write_all(frame.jpeg)
            .and_then(|()| self.out.flush())
            .map_err(|e| SinkError::from_write(&self.target, e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(|e| SinkError::from_write(&self.target, e))
    }
}
