//! The frame path: complete JPEG -> snapshot -> decode -> sink, on its own thread
//! so decoding never delays heartbeats or fragment reception.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};

use super::mailbox::{Mailbox, Taken};
use super::stats::{Stats, bump, read};
use crate::decode::Decoder;
use crate::frames::CompleteFrame;
use crate::sinks::{OutFrame, Sink, SinkError};
use crate::snapshot::SnapshotWriter;

/// Why the frame path stopped on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEnd {
    /// The mailbox was closed: the bridge is shutting down.
    Closed,
    /// `--frames N` frames were written.
    FrameLimit,
    /// The reader of the output went away (e.g. ffplay closed).
    OutputClosed,
}

/// Presses waiting for a frame to save, shared with the button task.
#[derive(Debug, Default)]
pub struct SnapshotRequests(AtomicU32);

impl SnapshotRequests {
    pub fn add(&self, presses: u32) {
        self.0.fetch_add(presses, Ordering::Relaxed);
    }

    /// Takes one request if there is any.
    fn take_one(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

pub struct FramePath {
    pub sink: Box<dyn Sink>,
    pub decoder: Decoder,
    pub snapshots: SnapshotWriter,
    pub snapshot_requests: Arc<SnapshotRequests>,
    pub stats: Arc<Stats>,
    pub frame_limit: Option<u64>,
    /// Buffers go back to the reassembler for reuse.
    pub recycle: Sender<Vec<u8>>,
}

enum Step {
    Continue,
    End(PathEnd),
}

impl FramePath {
    /// Takes frames from `mailbox` until it closes, the frame limit is
    /// reached, or the output goes away. Flushes the sink before returning.
    pub fn run(mut self, mailbox: &Mailbox<CompleteFrame>) -> Result<PathEnd, SinkError> {
        let end = loop {
            match mailbox.take(Duration::from_millis(200)) {
                Taken::Item(frame) => match self.handle(frame)? {
                    Step::Continue => {}
                    Step::End(end) => break end,
                },
                Taken::Empty => {}
                Taken::Closed => break PathEnd::Closed,
            }
        };
        match self.sink.flush() {
            Ok(()) | Err(SinkError::Closed { .. }) => Ok(end),
            Err(e) => Err(e),
        }
    }

    fn handle(&mut self, frame: CompleteFrame) -> Result<Step, SinkError> {
        let step = self.write(&frame.jpeg);
        let _ = self.recycle.send(frame.jpeg);
        step
    }

    fn write(&mut self, jpeg: &[u8]) -> Result<Step, SinkError> {
        let yuyv = if self.sink.needs_yuyv() {
            match self.decoder.decode(jpeg) {
                Ok(picture) => Some(picture),
                Err(e) => {
                    let errors = self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    if errors == 0 {
                        warn!(
                            "dropping a frame that does not decode ({e}); further ones are counted in the summary"
                        );
                    } else {
                        debug!("dropping undecodable frame: {e}");
                    }
                    return Ok(Step::Continue);
                }
            }
        } else {
            None
        };
        match self.sink.write(&OutFrame { jpeg, yuyv }) {
            Ok(()) => bump(&self.stats.frames_written),
            Err(SinkError::Closed { .. }) => {
                info!("the output was closed by its reader; stopping");
                return Ok(Step::End(PathEnd::OutputClosed));
            }
            Err(
                e @ (SinkError::GeometryChanged { .. }
                | SinkError::MissingYuyv { .. }
                | SinkError::BadFrame { .. }),
            ) => {
                if self.stats.sink_rejected.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!("{e}; such frames are skipped");
                }
            }
            Err(e) => return Err(e),
        }
        self.save_snapshot_if_requested(jpeg);
        if self
            .frame_limit
            .is_some_and(|limit| read(&self.stats.frames_written) >= limit)
        {
            return Ok(Step::End(PathEnd::FrameLimit));
        }
        Ok(Step::Continue)
    }

    fn save_snapshot_if_requested(&mut self, jpeg: &[u8]) {
        if !self.snapshot_requests.take_one() {
            return;
        }
        match self.snapshots.save(jpeg, SystemTime::now()) {
            Ok(path) => {
                bump(&self.stats.snapshots);
                info!("snapshot saved to {}", path.display());
            }
            Err(e) => warn!("snapshot not saved: {e}"),
        }
    }
}
