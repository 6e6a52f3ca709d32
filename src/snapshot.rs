//! Saves button-press snapshots: the frame's original JPEG bytes, no re-encode.
//!
//! Names are `borescope-20261125T123553.123Z-0001.jpg`: UTC time of the frame to the
//! millisecond, then an in-process sequence number, so names sort in save order (as long
//! as the clock does not step back), two saves in one millisecond never collide, and
//! nothing from the wire ever reaches a path.
//!
//! Consumers watching the directory must never see half a file, and an existing file
//! must never be replaced. So the bytes go to a hidden `.part` file, are fsynced, and are
//! then hard-linked to the final name (atomic, and fails instead of overwriting); a taken
//! name bumps the sequence and tries again. Where hard links are unsupported (FAT), the
//! part file is renamed after checking the name is free.

use chrono::{DateTime, Utc};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many taken names to step over before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "cannot create snapshot directory {}: {source}; create it, make it writable, \
         or choose another snapshot directory",
        path.display()
    )]
    CreateDir { path: PathBuf, source: io::Error },
    #[error(
        "cannot write snapshot {}: {source}; check that the directory is writable and \
         the disk is not full",
        path.display()
    )]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "no free snapshot name in {} after {MAX_NAME_ATTEMPTS} tries; move old snapshots away",
        dir.display()
    )]
    NoFreeName { dir: PathBuf },
}

/// Writes snapshots into one directory, created on the first save.
#[derive(Debug)]
pub struct SnapshotWriter {
    dir: PathBuf,
    /// Last sequence number used; increases for the life of the process.
    sequence: u64,
}

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Write {
        path: path.to_owned(),
        source,
    }
}

/// `20261125T123553.123Z`: UTC, millisecond, no characters that need quoting anywhere.
fn timestamp(taken_at: SystemTime) -> String {
    DateTime::<Utc>::from(taken_at)
        .format("%Y%m%dT%H%M%S%.3fZ")
        .to_string()
}

/// Writes `bytes` to a fresh file and forces them to disk before anyone can see them.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl SnapshotWriter {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            sequence: 0,
        }
    }

    /// The directory snapshots go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Save the frame's original JPEG bytes (no re-encode). Returns the path written.
    pub fn save(&mut self, jpeg: &[u8], taken_at: SystemTime) -> Result<PathBuf, SnapshotError> {
        fs::create_dir_all(&self.dir).map_err(|source| SnapshotError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        let stamp = timestamp(taken_at);
        self.sequence += 1;
        let part = self.dir.join(format!(
            ".borescope-{stamp}-{:04}.{}.part",
            self.sequence,
            std::process::id()
        ));
        write_synced(&part, jpeg).map_err(write_error(&part))?;
        let published = self.publish(&part, &stamp);
        // The part file is only a staging name: remove it whether publishing worked or not.
        let _ = fs::remove_file(&part);
        published
    }

    /// Gives the synced `part` file its final name, stepping over names already taken.
    fn publish(&mut self, part: &Path, stamp: &str) -> Result<PathBuf, SnapshotError> {
        for _ in 0..MAX_NAME_ATTEMPTS {
            let target = self
                .dir
                .join(format!("borescope-{stamp}-{:04}.jpg", self.sequence));
            match fs::hard_link(part, &target) {
                Ok(()) => return Ok(target),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.sequence += 1,
                Err(_) if target.exists() => self.sequence += 1,
                // No hard links here (FAT/exFAT USB sticks): fall back to a rename, which is
                // still atomic; the check above leaves only a tiny window for overwriting.
                Err(_) => {
                    fs::rename(part, &target).map_err(write_error(&target))?;
                    return Ok(target);
                }
            }
        }
        Err(SnapshotError::NoFreeName {
            dir: self.dir.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at_millis(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("readable dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn saves_the_exact_bytes_under_a_timestamped_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = SnapshotWriter::new(dir.path().join("snaps"));
        let jpeg = b"\xFF\xD8 not re-encoded \xFF\xD9";
        let path = writer
            .save(jpeg, at_millis(1_795_610_153_123))
            .expect("saves");
        assert_eq!(fs::read(&path).expect("readable"), jpeg);
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("borescope-20261125T123553.123Z-0001.jpg")
        );
        assert_eq!(
            files_in(&dir.path().join("snaps")),
            ["borescope-20261125T123553.123Z-0001.jpg"]
        );
    }

    #[test]
    fn names_sort_in_save_order_and_the_same_millisecond_does_not_collide() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = SnapshotWriter::new(dir.path());
        let times = [1000, 1000, 1000, 1001, 61_000, 61_000];
        let saved: Vec<PathBuf> = times
            .iter()
            .enumerate()
            .map(|(i, &ms)| writer.save(&[i as u8], at_millis(ms)).expect("saves"))
            .collect();
        let mut sorted = saved.clone();
        sorted.sort();
        assert_eq!(saved, sorted);
        assert_eq!(
            files_in(dir.path()).len(),
            times.len(),
            "no collisions, no leftovers"
        );
        for (i, path) in saved.iter().enumerate() {
            assert_eq!(fs::read(path).expect("readable"), [i as u8]);
        }
    }

    #[test]
    fn an_existing_file_with_the_next_name_is_not_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let taken = dir.path().join("borescope-19700101T000001.000Z-0001.jpg");
        fs::write(&taken, b"keep me").expect("writes");
        let mut writer = SnapshotWriter::new(dir.path());
        let path = writer.save(b"new", at_millis(1000)).expect("saves");
        assert_ne!(path, taken);
        assert_eq!(fs::read(&taken).expect("readable"), b"keep me");
        assert_eq!(fs::read(&path).expect("readable"), b"new");
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("borescope-19700101T000001.000Z-0002.jpg")
        );
    }

    #[test]
    fn an_unusable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a-file");
        fs::write(&file, b"").expect("writes");
        let target = file.join("snaps");
        let err = SnapshotWriter::new(&target)
            .save(b"x", SystemTime::now())
            .expect_err("cannot create a directory under a file");
        assert!(matches!(err, SnapshotError::CreateDir { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&target.display().to_string()), "{text}");
        assert!(text.contains("choose another snapshot directory"), "{text}");
    }
}
