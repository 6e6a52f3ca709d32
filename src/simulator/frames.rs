//! The JPEGs the simulated scope sends, by frame number.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::FrameSource;
use super::pattern::{PATTERN_PERIOD, Subsampling, encode_pattern_frame};
use crate::mjpeg_stream::split_jpegs;

/// Frame `n` of the source. Pattern frames are encoded on first use and
/// kept: the pattern repeats every [`PATTERN_PERIOD`] frames, so after one
/// period no more encoding happens, which keeps large sizes at full rate.
#[derive(Debug)]
pub(super) enum FrameStore {
    Pattern {
        width: u32,
        height: u32,
        subsampling: Subsampling,
        quality: u8,
        cache: Vec<Option<Arc<Vec<u8>>>>,
    },
    File {
        path: PathBuf,
        frames: Vec<Arc<Vec<u8>>>,
    },
}

impl FrameStore {
    pub(super) fn load(source: &FrameSource) -> anyhow::Result<Self> {
        Ok(match source {
            FrameSource::Pattern {
                width,
                height,
                subsampling,
                quality,
            } => FrameStore::Pattern {
                width: *width,
                height: *height,
                subsampling: *subsampling,
                quality: *quality,
                cache: vec![None; PATTERN_PERIOD as usize],
            },
            FrameSource::File(path) => FrameStore::File {
                path: path.clone(),
                frames: load_mjpeg_file(path)?,
            },
        })
    }

    /// For log lines: "640x480 4:2:2 test pattern" or "12 frames from x.mjpeg".
    pub(super) fn describe(&self) -> String {
        match self {
            FrameStore::Pattern {
                width,
                height,
                subsampling,
                ..
            } => format!("{width}x{height} {subsampling} test pattern"),
            FrameStore::File { path, frames } => {
                format!("{} frames from {}", frames.len(), path.display())
            }
        }
    }

    /// The JPEG for frame `number`. Encoding runs on the blocking pool so the
    /// runtime keeps serving the other port. `None` only if encoding died.
    pub(super) async fn frame(&mut self, number: u64) -> Option<Arc<Vec<u8>>> {
        match self {
            FrameStore::File { frames, .. } => {
                let index = (number % frames.len() as u64) as usize;
                frames.get(index).cloned()
            }
            FrameStore::Pattern {
                width,
                height,
                subsampling,
                quality,
                cache,
            } => {
                let slot = (number % PATTERN_PERIOD) as usize;
                if let Some(jpeg) = cache.get(slot).cloned().flatten() {
                    return Some(jpeg);
                }
                let (w, h, s, q) = (*width, *height, *subsampling, *quality);
                let encoded = tokio::task::spawn_blocking(move || {
                    encode_pattern_frame(w, h, s, q, slot as u64)
                })
                .await;
                let jpeg = Arc::new(encoded.ok()?);
                if let Some(entry) = cache.get_mut(slot) {
                    *entry = Some(Arc::clone(&jpeg));
                }
                Some(jpeg)
            }
        }
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
