//! Discards frames: for measuring the receive path alone.

use super::{OutFrame, Sink, SinkError};

#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn describe(&self) -> String {
        "null (frames discarded)".to_owned()
    }

    fn needs_yuyv(&self) -> bool {
        false
    }

    fn write(&mut self, _frame: &OutFrame<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
