//! The JPEGs the simulated scope sends, by frame number.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};

use super::pattern::{PATTERN_PERIOD, Subsampling, encode_pattern_frame};
use super::{FrameSource, alternate_size};
use crate::jpeg::stream::split_jpegs;

/// Frame `n` of the source: a file's JPEGs in a loop, or the test pattern.
#[derive(Debug)]
pub(super) enum FrameStore {
    Pattern {
        cache: PatternCache,
        /// Every this many frames, switch to (or back from) this other size.
        alternate: Option<(u64, PatternCache)>,
    },
    File {
        path: PathBuf,
        frames: Vec<Arc<Vec<u8>>>,
    },
}

impl FrameStore {
    /// `resize_every` only applies to the pattern (the config is validated).
    pub(super) fn load(source: &FrameSource, resize_every: Option<u64>) -> anyhow::Result<Self> {
        Ok(match source {
            FrameSource::Pattern {
                width,
                height,
                subsampling,
                quality,
            } => {
                let params = PatternParams {
                    width: *width,
                    height: *height,
                    subsampling: *subsampling,
                    quality: *quality,
                };
                let alternate = resize_every.filter(|&n| n > 0).map(|every| {
                    let (width, height) = alternate_size(params.width, params.height);
                    let other = PatternParams {
                        width,
                        height,
                        ..params
                    };
                    (every, PatternCache::start(other))
                });
                FrameStore::Pattern {
                    cache: PatternCache::start(params),
                    alternate,
                }
            }
            FrameSource::File(path) => FrameStore::File {
                path: path.clone(),
                frames: load_mjpeg_file(path)?,
            },
        })
    }

    /// For log lines: "640x480 test pattern (422)" or "12 frames from x.mjpeg".
    pub(super) fn describe(&self) -> String {
        match self {
            FrameStore::Pattern { cache, alternate } => {
                let p = &cache.params;
                let mut text = format!("{}x{} test pattern ({})", p.width, p.height, p.subsampling);
                if let Some((every, other)) = alternate {
                    let o = &other.params;
                    text += &format!(
                        ", switching to and from {}x{} every {every} frames",
                        o.width, o.height
                    );
                }
                text
            }
            FrameStore::File { path, frames } => {
                format!("{} frames from {}", frames.len(), path.display())
            }
        }
    }

    /// The JPEG for frame `number`; `None` only if encoding died.
    pub(super) async fn frame(&self, number: u64) -> Option<Arc<Vec<u8>>> {
        match self {
            FrameStore::File { frames, .. } => {
                let index = (number % frames.len() as u64) as usize;
                frames.get(index).cloned()
            }
            FrameStore::Pattern {
                alternate: Some((every, other)),
                ..
            } if (number / every) % 2 == 1 => other.frame(number).await,
            FrameStore::Pattern { cache, .. } => cache.frame(number).await,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PatternParams {
    width: u32,
    height: u32,
    subsampling: Subsampling,
    quality: u8,
}

impl PatternParams {
    fn encode(self, slot: usize) -> Arc<Vec<u8>> {
        Arc::new(encode_pattern_frame(
            self.width,
            self.height,
            self.subsampling,
            self.quality,
            slot as u64,
        ))
    }
}

/// The pattern repeats every [`PATTERN_PERIOD`] frames, so each of those is
/// encoded once. A background thread encodes the whole period as soon as the
/// simulator is created, because encoding 720p or 1080p takes longer than a
/// frame interval: by the time a client connects, sending is just copying.
/// A frame the thread has not reached yet is encoded on demand.
#[derive(Debug)]
pub(super) struct PatternCache {
    params: PatternParams,
    slots: Arc<Vec<OnceLock<Arc<Vec<u8>>>>>,
    /// Tells the background thread to give up when the simulator is dropped.
    cancelled: Arc<AtomicBool>,
}

impl PatternCache {
    fn start(params: PatternParams) -> Self {
        let slots: Arc<Vec<OnceLock<Arc<Vec<u8>>>>> =
            Arc::new((0..PATTERN_PERIOD).map(|_| OnceLock::new()).collect());
        let cancelled = Arc::new(AtomicBool::new(false));
        let (thread_slots, thread_cancelled) = (Arc::clone(&slots), Arc::clone(&cancelled));
        let spawned = std::thread::Builder::new()
            .name("scope-pattern".into())
            .spawn(move || fill_all(params, &thread_slots, &thread_cancelled));
        if let Err(error) = spawned {
            tracing::warn!("cannot pre-encode the test pattern, encoding on demand: {error}");
        }
        PatternCache {
            params,
            slots,
            cancelled,
        }
    }

    async fn frame(&self, number: u64) -> Option<Arc<Vec<u8>>> {
        let slot = (number % PATTERN_PERIOD) as usize;
        if let Some(jpeg) = self.slots.get(slot)?.get() {
            return Some(Arc::clone(jpeg));
        }
        let (params, slots) = (self.params, Arc::clone(&self.slots));
        tokio::task::spawn_blocking(move || {
            let cell = slots.get(slot)?;
            Some(Arc::clone(cell.get_or_init(|| params.encode(slot))))
        })
        .await
        .ok()
        .flatten()
    }
}

impl Drop for PatternCache {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

fn fill_all(params: PatternParams, slots: &[OnceLock<Arc<Vec<u8>>>], cancelled: &AtomicBool) {
    for (slot, cell) in slots.iter().enumerate() {
        if cancelled.load(Ordering::Relaxed) {
            return;
        }
        cell.get_or_init(|| params.encode(slot));
    }
}

/// Reads a concatenated MJPEG file and splits it into JPEGs.
fn load_mjpeg_file(path: &Path) -> anyhow::Result<Vec<Arc<Vec<u8>>>> {
    let data = std::fs::read(path)
        .with_context(|| format!("cannot read MJPEG file {}", path.display()))?;
    let frames: Vec<Arc<Vec<u8>>> = split_jpegs(&data)
        .into_iter()
        .map(|range| Arc::new(data[range].to_vec()))
        .collect();
    if frames.is_empty() {
        bail!("{} contains no complete JPEG", path.display());
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cached_pattern_frames_match_the_encoder_across_periods() {
        let source = FrameSource::Pattern {
            width: 40,
            height: 30,
            subsampling: Subsampling::S420,
            quality: 60,
        };
        let store = FrameStore::load(&source, None).unwrap();
        for number in [0, 5, PATTERN_PERIOD + 5, 1000] {
            let expected = encode_pattern_frame(40, 30, Subsampling::S420, 60, number);
            assert_eq!(*store.frame(number).await.unwrap(), expected);
        }
        assert_eq!(store.describe(), "40x30 test pattern (420)");
    }

    #[tokio::test]
    async fn resizing_alternates_between_the_size_and_half_of_it() {
        let source = FrameSource::Pattern {
            width: 64,
            height: 48,
            subsampling: Subsampling::S422,
            quality: 70,
        };
        let store = FrameStore::load(&source, Some(3)).unwrap();
        assert_eq!(alternate_size(64, 48), (32, 24));
        for number in [0, 2, 3, 5, 6, PATTERN_PERIOD * 3 + 1] {
            let (w, h) = if (number / 3) % 2 == 1 {
                (32, 24)
            } else {
                (64, 48)
            };
            let expected = encode_pattern_frame(w, h, Subsampling::S422, 70, number);
            assert_eq!(
                *store.frame(number).await.unwrap(),
                expected,
                "frame {number}"
            );
        }
        assert!(
            store.describe().contains("32x24 every 3 frames"),
            "{}",
            store.describe()
        );
    }
}
