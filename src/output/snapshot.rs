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
//! part file is renamed after checking the name is free. The `.part` file is removed
//! whatever fails (write, fsync, link or rename), and [`SnapshotWriter::remove_stale_parts`]
//! clears those a killed process left behind.
//!
//! Whoever answers the button polls decides how often "pressed" comes, so every save is
//! bounded ([`SnapshotLimits`]): a minimum interval between saves, a cap on the number and
//! the total size of the snapshots in the directory, and a floor of free space on its
//! file system. At a cap, new snapshots are refused and the old ones kept: they are
//! pictures someone took on purpose, and deleting the oldest to make room would let a
//! misbehaving peer replace every real snapshot with its own. Making room is the user's
//! call (move or delete old snapshots); the refusals are counted by reason.

use chrono::{DateTime, Utc};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How many taken names to step over before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// A `.part` file older than this is stale even if a process with its pid runs (the pid
/// was reused): a save takes well under a second.
const STALE_PART_AGE: Duration = Duration::from_secs(10 * 60);

/// How much a snapshot directory may take, and how fast it may fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Presses closer than this to the last save are not saved.
    pub min_interval: Duration,
    /// Snapshots (`borescope-*.jpg`) the directory may hold.
    pub max_files: u64,
    /// Total bytes of those snapshots.
    pub max_bytes: u64,
    /// Free space the file system must keep after the save.
    pub min_free_bytes: u64,
}

impl Default for SnapshotLimits {
    /// The defaults of `packaging/config.toml`.
    fn default() -> Self {
        SnapshotLimits {
            min_interval: Duration::from_millis(500),
            max_files: 1000,
            max_bytes: 512 << 20,
            min_free_bytes: 256 << 20,
        }
    }
}

/// Why a requested snapshot was not saved; each is counted in the stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotSaved {
    /// Within `min_interval` of the previous save.
    TooSoon,
    /// The directory holds `max_files` snapshots.
    TooManyFiles,
    /// The directory's snapshots would exceed `max_bytes`.
    TooManyBytes,
    /// The file system would drop below `min_free_bytes`.
    LowDisk,
    /// Creating the directory, writing, syncing or publishing failed.
    Failed,
    /// No frame that decoded came while the press was fresh.
    NoGoodFrame,
}

impl NotSaved {
    pub const ALL: [NotSaved; 6] = [
        NotSaved::TooSoon,
        NotSaved::TooManyFiles,
        NotSaved::TooManyBytes,
        NotSaved::LowDisk,
        NotSaved::Failed,
        NotSaved::NoGoodFrame,
    ];

    /// Short snake_case name for logs, the summary and the state file.
    pub fn label(self) -> &'static str {
        match self {
            NotSaved::TooSoon => "too_soon",
            NotSaved::TooManyFiles => "max_files",
            NotSaved::TooManyBytes => "max_bytes",
            NotSaved::LowDisk => "low_disk",
            NotSaved::Failed => "failed",
            NotSaved::NoGoodFrame => "no_good_frame",
        }
    }
}

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
    #[error(
        "snapshot not saved: the previous one was less than {} ms ago \
         (snapshot_min_interval_ms)",
        min_interval.as_millis()
    )]
    TooSoon { min_interval: Duration },
    #[error(
        "snapshots are not saved: {} already holds {files} (snapshot_max_files = {max}); \
         move or delete old snapshots",
        dir.display()
    )]
    TooManyFiles { dir: PathBuf, files: u64, max: u64 },
    #[error(
        "snapshots are not saved: those in {} take {} MiB, the limit is {} MiB \
         (snapshot_max_mib); move or delete old snapshots",
        dir.display(), bytes >> 20, max >> 20
    )]
    TooManyBytes { dir: PathBuf, bytes: u64, max: u64 },
    #[error(
        "snapshots are not saved: {} MiB free on the file system of {}, the floor is \
         {} MiB (snapshot_min_free_mib); free some space",
        free >> 20, dir.display(), floor >> 20
    )]
    LowDisk { dir: PathBuf, free: u64, floor: u64 },
    #[error("cannot read the free space of {}: {source}", dir.display())]
    Statvfs { dir: PathBuf, source: nix::Error },
}

impl SnapshotError {
    /// The counter this error goes to.
    pub fn reason(&self) -> NotSaved {
        match self {
            SnapshotError::TooSoon { .. } => NotSaved::TooSoon,
            SnapshotError::TooManyFiles { .. } => NotSaved::TooManyFiles,
            SnapshotError::TooManyBytes { .. } => NotSaved::TooManyBytes,
            SnapshotError::LowDisk { .. } => NotSaved::LowDisk,
            SnapshotError::CreateDir { .. }
            | SnapshotError::Write { .. }
            | SnapshotError::NoFreeName { .. }
            | SnapshotError::Statvfs { .. } => NotSaved::Failed,
        }
    }
}

/// The snapshots (and part files) a directory holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirUsage {
    pub files: u64,
    pub bytes: u64,
}

fn is_snapshot_name(name: &str) -> bool {
    name.starts_with("borescope-") && name.ends_with(".jpg")
}

fn is_part_name(name: &str) -> bool {
    name.starts_with(".borescope-") && name.ends_with(".part")
}

/// Counts the regular files this writer names (`borescope-*.jpg` and `.borescope-*.part`)
/// in `dir`, and their bytes; other files are the user's business. Symlinks are not followed.
pub fn usage(dir: &Path) -> io::Result<DirUsage> {
    let mut used = DirUsage::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !is_snapshot_name(&name) && !is_part_name(&name) {
            continue;
        }
        // DirEntry::metadata does not follow symlinks.
        let meta = entry.metadata()?;
        if meta.is_file() {
            used.files += 1;
            used.bytes += meta.len();
        }
    }
    Ok(used)
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Result<u64, SnapshotError> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|source| SnapshotError::Statvfs {
        dir: dir.to_owned(),
        source,
    })?;
    Ok(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

/// The pid in a part file's name (`.borescope-STAMP-SEQ.PID.part`).
fn part_pid(name: &str) -> Option<i32> {
    name.strip_suffix(".part")?.rsplit('.').next()?.parse().ok()
}

/// Whether a process with this pid exists (EPERM: it does, under another user).
fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    if pid <= 0 {
        return false; // kill(0 or negative) would address process groups
    }
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Ok(()) | Err(Errno::EPERM)
    )
}

/// Where a save can fail; tests make each of them fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Write,
    Sync,
    Publish,
}

/// Writes snapshots into one directory, created on the first save, within [`SnapshotLimits`].
#[derive(Debug)]
pub struct SnapshotWriter {
    dir: PathBuf,
    limits: SnapshotLimits,
    /// Last sequence number used; increases for the life of the process.
    sequence: u64,
    /// When the last save that reached the disk started (refused or not).
    last_attempt: Option<Instant>,
    /// Makes one stage fail, as a full or broken disk would.
    #[cfg(test)]
    fail_at: Option<Stage>,
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

impl SnapshotWriter {
    pub fn new(dir: impl Into<PathBuf>, limits: SnapshotLimits) -> Self {
        Self {
            dir: dir.into(),
            limits,
            sequence: 0,
            last_attempt: None,
            #[cfg(test)]
            fail_at: None,
        }
    }

    /// The directory snapshots go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shortest time between two save attempts.
    pub fn min_interval(&self) -> Duration {
        self.limits.min_interval
    }

    /// Whether a save at `now` would be refused as too soon after the last one. No IO.
    pub fn too_soon(&self, now: Instant) -> bool {
        self.last_attempt
            .is_some_and(|last| now.saturating_duration_since(last) < self.limits.min_interval)
    }

    /// Removes part files a killed process left behind: those whose process is gone, and
    /// any older than ten minutes. Several bridges may share the directory, so a live
    /// one's part file is left alone. Returns how many were removed; a missing directory
    /// has none.
    pub fn remove_stale_parts(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !is_part_name(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let old = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > STALE_PART_AGE);
            let orphan = !part_pid(&name).is_some_and(pid_alive);
            if meta.is_file() && (old || orphan) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Save the frame's original JPEG bytes (no re-encode) if the limits allow. Returns the
    /// path written. `now` is the moment of the attempt, for the minimum interval.
    ///
    /// No `.part` file is left behind, whatever fails.
    pub fn save(
        &mut self,
        jpeg: &[u8],
        taken_at: SystemTime,
        now: Instant,
    ) -> Result<PathBuf, SnapshotError> {
        if self.too_soon(now) {
            return Err(SnapshotError::TooSoon {
                min_interval: self.limits.min_interval,
            });
        }
        // Every attempt that reaches the disk counts for the interval, refused or not, so a
        // flood of presses costs one directory scan per interval at most.
        self.last_attempt = Some(now);
        fs::create_dir_all(&self.dir).map_err(|source| SnapshotError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        self.check_room(jpeg.len() as u64)?;
        let stamp = timestamp(taken_at);
        self.sequence += 1;
        let part = self.dir.join(format!(
            ".borescope-{stamp}-{:04}.{}.part",
            self.sequence,
            std::process::id()
        ));
        let published = self
            .write_synced(&part, jpeg)
            .map_err(write_error(&part))
            .and_then(|()| self.publish(&part, &stamp));
        // The part file is only a staging name: remove it whether publishing worked or not
        // (after a rename it is gone already).
        let _ = fs::remove_file(&part);
        published
    }

    /// Refuses a save of `size` bytes that would break a cap or the free-space floor.
    fn check_room(&self, size: u64) -> Result<(), SnapshotError> {
        let used = usage(&self.dir).map_err(write_error(&self.dir))?;
        let limits = &self.limits;
        if used.files >= limits.max_files {
            return Err(SnapshotError::TooManyFiles {
                dir: self.dir.clone(),
                files: used.files,
                max: limits.max_files,
            });
        }
        if used.bytes.saturating_add(size) > limits.max_bytes {
            return Err(SnapshotError::TooManyBytes {
                dir: self.dir.clone(),
                bytes: used.bytes,
                max: limits.max_bytes,
            });
        }
        let free = free_bytes(&self.dir)?;
        if free < size.saturating_add(limits.min_free_bytes) {
            return Err(SnapshotError::LowDisk {
                dir: self.dir.clone(),
                free,
                floor: limits.min_free_bytes,
            });
        }
        Ok(())
    }

    /// Fails `stage` when a test asked for it.
    fn injected(&self, _stage: Stage) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_at == Some(_stage) {
            return Err(io::Error::from(nix::errno::Errno::ENOSPC));
        }
        Ok(())
    }

    /// Writes `bytes` to a fresh file and forces them to disk before anyone can see them.
    fn write_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let half = bytes.len() / 2;
        file.write_all(&bytes[..half])?;
        self.injected(Stage::Write)?;
        file.write_all(&bytes[half..])?;
        self.injected(Stage::Sync)?;
        file.sync_all()
    }

    /// Gives the synced `part` file its final name, stepping over names already taken.
    fn publish(&mut self, part: &Path, stamp: &str) -> Result<PathBuf, SnapshotError> {
        self.injected(Stage::Publish).map_err(write_error(part))?;
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
    use std::time::UNIX_EPOCH;

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

    fn writer(dir: &Path) -> SnapshotWriter {
        SnapshotWriter::new(dir, SnapshotLimits::default())
    }

    /// Saves at instants 1 s apart, so the minimum interval never interferes.
    fn save_all(writer: &mut SnapshotWriter, frames: &[(&[u8], u64)]) -> Vec<PathBuf> {
        let start = Instant::now();
        frames
            .iter()
            .enumerate()
            .map(|(i, (bytes, ms))| {
                let now = start + Duration::from_secs(i as u64);
                writer.save(bytes, at_millis(*ms), now).expect("saves")
            })
            .collect()
    }

    #[test]
    fn saves_the_exact_bytes_under_a_timestamped_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = writer(&dir.path().join("snaps"));
        let jpeg = b"\xFF\xD8 not re-encoded \xFF\xD9";
        let path = writer
            .save(jpeg, at_millis(1_795_610_153_123), Instant::now())
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
        let mut writer = writer(dir.path());
        let times = [1000, 1000, 1000, 1001, 61_000, 61_000];
        let bytes: Vec<[u8; 1]> = (0..times.len()).map(|i| [i as u8]).collect();
        let frames: Vec<(&[u8], u64)> = bytes.iter().zip(times).map(|(b, t)| (&b[..], t)).collect();
        let saved = save_all(&mut writer, &frames);
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
        let mut writer = writer(dir.path());
        let path = writer
            .save(b"new", at_millis(1000), Instant::now())
            .expect("saves");
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
        let err = writer(&target)
            .save(b"x", SystemTime::now(), Instant::now())
            .expect_err("cannot create a directory under a file");
        assert!(matches!(err, SnapshotError::CreateDir { .. }), "{err}");
        assert_eq!(err.reason(), NotSaved::Failed);
        let text = err.to_string();
        assert!(text.contains(&target.display().to_string()), "{text}");
        assert!(text.contains("choose another snapshot directory"), "{text}");
    }

    /// One bound per row: the directory as found, the limits, and what a save of
    /// `JPEG` must give. A refused or failed save leaves the directory as it was:
    /// no new snapshot and no `.part` file.
    #[test]
    fn every_bound_refuses_and_leaves_the_directory_as_it_was() {
        const JPEG: &[u8] = &[0xAB; 1000];
        let free = {
            let dir = tempfile::tempdir().expect("temp dir");
            free_bytes(dir.path()).expect("statvfs")
        };
        let limits = SnapshotLimits {
            min_interval: Duration::from_millis(500),
            max_files: 3,
            max_bytes: 10_000,
            min_free_bytes: 0,
        };
        struct Case {
            name: &'static str,
            /// Files in the directory before the save: (name, size).
            existing: &'static [(&'static str, usize)],
            limits: SnapshotLimits,
            /// Milliseconds since a previous save, if there was one.
            since_last_ms: Option<u64>,
            fail_at: Option<Stage>,
            expect: Option<NotSaved>,
        }
        let snaps: &[(&str, usize)] = &[
            ("borescope-19700101T000001.000Z-0001.jpg", 10),
            ("borescope-19700101T000002.000Z-0002.jpg", 10),
        ];
        let cases = [
            Case {
                name: "within the limits",
                existing: snaps,
                limits,
                since_last_ms: Some(500),
                fail_at: None,
                expect: None,
            },
            Case {
                name: "too soon after the last",
                existing: &[],
                limits,
                since_last_ms: Some(499),
                fail_at: None,
                expect: Some(NotSaved::TooSoon),
            },
            Case {
                name: "file cap reached",
                existing: snaps,
                limits: SnapshotLimits {
                    max_files: 2,
                    ..limits
                },
                since_last_ms: None,
                fail_at: None,
                expect: Some(NotSaved::TooManyFiles),
            },
            Case {
                name: "other files do not count against the file cap",
                existing: &[("notes.txt", 10), ("other.jpg", 10), ("sub.jpg.bak", 10)],
                limits: SnapshotLimits {
                    max_files: 1,
                    ..limits
                },
                since_last_ms: None,
                fail_at: None,
                expect: None,
            },
            Case {
                name: "byte cap would be passed",
                existing: snaps,
                limits: SnapshotLimits {
                    max_bytes: 20 + JPEG.len() as u64 - 1,
                    ..limits
                },
                since_last_ms: None,
                fail_at: None,
                expect: Some(NotSaved::TooManyBytes),
            },
            Case {
                name: "byte cap exactly met",
                existing: snaps,
                limits: SnapshotLimits {
                    max_bytes: 20 + JPEG.len() as u64,
                    ..limits
                },
                since_last_ms: None,
                fail_at: None,
                expect: None,
            },
            Case {
                name: "free-space floor above what is free",
                existing: &[],
                limits: SnapshotLimits {
                    min_free_bytes: free.saturating_add(1 << 30),
                    ..limits
                },
                since_last_ms: None,
                fail_at: None,
                expect: Some(NotSaved::LowDisk),
            },
            Case {
                name: "write fails half way (disk full)",
                existing: &[],
                limits,
                since_last_ms: None,
                fail_at: Some(Stage::Write),
                expect: Some(NotSaved::Failed),
            },
            Case {
                name: "fsync fails",
                existing: &[],
                limits,
                since_last_ms: None,
                fail_at: Some(Stage::Sync),
                expect: Some(NotSaved::Failed),
            },
            Case {
                name: "link and rename fail",
                existing: &[],
                limits,
                since_last_ms: None,
                fail_at: Some(Stage::Publish),
                expect: Some(NotSaved::Failed),
            },
        ];
        for case in cases {
            let dir = tempfile::tempdir().expect("temp dir");
            for (name, size) in case.existing {
                fs::write(dir.path().join(name), vec![0u8; *size]).expect("writes");
            }
            let before = files_in(dir.path());
            let mut writer = SnapshotWriter::new(dir.path(), case.limits);
            let now = Instant::now() + Duration::from_secs(10);
            if let Some(ms) = case.since_last_ms {
                writer.last_attempt = Some(now - Duration::from_millis(ms));
            }
            writer.fail_at = case.fail_at;
            let result = writer.save(JPEG, at_millis(5000), now);
            let after = files_in(dir.path());
            match case.expect {
                None => {
                    let path = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
                    assert_eq!(fs::read(&path).unwrap(), JPEG, "{}", case.name);
                    assert_eq!(after.len(), before.len() + 1, "{}: {after:?}", case.name);
                }
                Some(reason) => {
                    let err = result.expect_err(case.name);
                    assert_eq!(err.reason(), reason, "{}: {err}", case.name);
                    assert_eq!(after, before, "{}: {err}", case.name);
                }
            }
            assert!(
                !after.iter().any(|n| n.ends_with(".part")),
                "{}: {after:?}",
                case.name
            );
        }
    }

    #[test]
    fn the_interval_counts_from_the_last_attempt_refused_or_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = SnapshotWriter::new(
            dir.path(),
            SnapshotLimits {
                max_files: 1,
                ..SnapshotLimits::default()
            },
        );
        let t0 = Instant::now();
        writer.save(b"a", at_millis(1), t0).expect("first saves");
        let full = writer
            .save(b"b", at_millis(2), t0 + Duration::from_secs(1))
            .expect_err("the cap");
        assert_eq!(full.reason(), NotSaved::TooManyFiles);
        assert!(writer.too_soon(t0 + Duration::from_millis(1499)));
        let soon = writer
            .save(b"c", at_millis(3), t0 + Duration::from_millis(1200))
            .expect_err("within the interval of the refused attempt");
        assert_eq!(soon.reason(), NotSaved::TooSoon);
        assert!(!writer.too_soon(t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn stale_part_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = std::process::Command::new("true").spawn().expect("spawns");
        let dead = child.id();
        child.wait().expect("exits");
        let me = std::process::id();
        let dead_part = format!(".borescope-19700101T000001.000Z-0001.{dead}.part");
        let live_part = format!(".borescope-19700101T000002.000Z-0002.{me}.part");
        let old_part = format!(".borescope-19700101T000003.000Z-0003.{me}.part");
        let odd_part = ".borescope-garbage.part".to_owned();
        let keep = ["borescope-19700101T000001.000Z-0001.jpg", "notes.part"];
        for name in [&dead_part, &live_part, &old_part, &odd_part]
            .into_iter()
            .map(String::as_str)
            .chain(keep)
        {
            fs::write(dir.path().join(name), b"x").expect("writes");
        }
        let old = File::options()
            .write(true)
            .open(dir.path().join(&old_part))
            .expect("opens");
        old.set_modified(SystemTime::now() - STALE_PART_AGE - Duration::from_secs(1))
            .expect("sets mtime");
        let removed = writer(dir.path()).remove_stale_parts();
        let mut expected = vec![live_part, keep[0].to_owned(), keep[1].to_owned()];
        expected.sort();
        assert_eq!(files_in(dir.path()), expected);
        assert_eq!(removed, 3);
        assert_eq!(writer(&dir.path().join("missing")).remove_stale_parts(), 0);
    }

    #[test]
    fn part_names_give_their_pid() {
        assert_eq!(
            part_pid(".borescope-20261125T123553.123Z-0001.4242.part"),
            Some(4242)
        );
        assert_eq!(part_pid(".borescope-x.part"), None);
        assert!(!pid_alive(0) && !pid_alive(-1));
        assert!(pid_alive(std::process::id() as i32));
    }
}
