//! Camera slots: which camera ("Borescope", "Borescope 2", ...) a service instance owns.
//!
//! Each running service holds an exclusive `flock` on `$RUNTIME/camera-N.lock` for its
//! slot N. The kernel drops the lock when the process dies, however it dies, so a
//! crashed instance never keeps its slot. Lock files are never deleted: removing a lock
//! file while another process is about to lock it would let two instances hold "the
//! same" slot through two different files.
//!
//! `flock` works on any open file, read-only ones included, so whoever can open a lock
//! file can hold its slot. Lock files are therefore 0600 (an older 0644 one we own is
//! made 0600 when opened) and opened with O_NOFOLLOW: only the service user takes slots.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The most scopes served at once (v4l2loopback's default `max_devices` is 8).
pub const MAX_SLOTS: u32 = 8;

/// v4l2loopback cuts card labels at 31 bytes.
const MAX_LABEL_BYTES: usize = 31;

/// Why no slot could be claimed.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error(
        "all {MAX_SLOTS} camera slots in {dir} are taken: {MAX_SLOTS} scopes are already \
         served (see `scopecam status`)"
    )]
    AllTaken { dir: PathBuf },
    #[error(
        "cannot open the camera slot lock {path}: {source} (the runtime directory must be \
         writable by the service user)"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

/// The name apps show for the camera of slot `slot` (1-based): the configured label for
/// the first, "label N" for the others, shortened so it fits v4l2loopback's 31 bytes.
pub fn slot_label(card_label: &str, slot: u32) -> String {
    if slot <= 1 {
        return card_label.to_owned();
    }
    let suffix = format!(" {slot}");
    let mut base = card_label;
    while base.len() + suffix.len() > MAX_LABEL_BYTES {
        let mut cut = base.len() - 1;
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        base = &base[..cut];
    }
    format!("{}{suffix}", base.trim_end())
}

/// The lock file of slot `slot` in `dir`.
pub fn lock_path(dir: &Path, slot: u32) -> PathBuf {
    dir.join(format!("camera-{slot}.lock"))
}

/// A claimed slot; the claim lasts as long as this value (or the process).
#[derive(Debug)]
pub struct SlotClaim {
    pub slot: u32,
    pub lock_path: PathBuf,
    _lock: Flock<File>,
}

/// Claims the lowest free slot in `dir`.
pub fn claim(dir: &Path) -> Result<SlotClaim, SlotError> {
    for slot in 1..=MAX_SLOTS {
        let path = lock_path(dir, slot);
        let file = open_lock(&path).map_err(|source| SlotError::Open {
            path: path.clone(),
            source,
        })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                return Ok(SlotClaim {
                    slot,
                    lock_path: path,
                    _lock: lock,
                });
            }
            Err((_, Errno::EWOULDBLOCK)) => continue,
            Err((_, source)) => return Err(SlotError::Lock { path, source }),
        }
    }
    Err(SlotError::AllTaken {
        dir: dir.to_owned(),
    })
}

/// Opens (creating it 0600 if needed) the lock file `path`, never through a symlink.
/// Only the service user may open it: anyone who can open it can hold the slot. A file
/// left 0644 by an older version is made 0600 if it is ours.
fn open_lock(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.mode() & 0o7777 != 0o600 && meta.uid() == nix::unistd::geteuid().as_raw() {
        // fchmod on the open file: no race with a swapped path.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Whether some process holds slot `slot` in `dir` (for tests).
pub fn is_taken(dir: &Path, slot: u32) -> bool {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(lock_path(dir, slot))
    else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockExclusiveNonblock),
        Err((_, Errno::EWOULDBLOCK))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_slot_keeps_the_label_others_are_numbered() {
        assert_eq!(slot_label("Borescope", 1), "Borescope");
        assert_eq!(slot_label("Borescope", 2), "Borescope 2");
        assert_eq!(slot_label("Borescope", 8), "Borescope 8");
    }

    #[test]
    fn numbered_labels_still_fit_v4l2loopback() {
        let long = "A very long camera label of 31b";
        assert_eq!(long.len(), 31);
        assert_eq!(slot_label(long, 1), long);
        let second = slot_label(long, 2);
        assert!(second.len() <= 31, "{second}");
        assert!(second.ends_with(" 2"), "{second}");
        // Never cuts inside a character.
        let label = slot_label("Endoskopkamera für Rohre ÄÖÜ", 3);
        assert!(label.len() <= 31 && label.ends_with(" 3"), "{label}");
    }

    #[test]
    fn slots_are_claimed_lowest_first_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let one = claim(dir.path()).unwrap();
        let two = claim(dir.path()).unwrap();
        assert_eq!((one.slot, two.slot), (1, 2));
        assert!(is_taken(dir.path(), 1) && is_taken(dir.path(), 2));
        assert!(!is_taken(dir.path(), 3));
        drop(one);
        assert!(!is_taken(dir.path(), 1));
        assert_eq!(claim(dir.path()).unwrap().slot, 1, "a freed slot is reused");
    }

    #[test]
    fn all_slots_taken_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let held: Vec<_> = (0..MAX_SLOTS).map(|_| claim(dir.path()).unwrap()).collect();
        assert_eq!(held.last().unwrap().slot, MAX_SLOTS);
        let err = claim(dir.path()).unwrap_err();
        assert!(err.to_string().contains("scopecam status"), "{err}");
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn lock_files_are_private_to_the_service_user() {
        let dir = tempfile::tempdir().unwrap();
        // A lock file left 0644 by an older version: made 0600 when claimed.
        std::fs::write(lock_path(dir.path(), 1), "").unwrap();
        std::fs::set_permissions(
            lock_path(dir.path(), 1),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let one = claim(dir.path()).unwrap();
        let two = claim(dir.path()).unwrap();
        assert_eq!(mode(&one.lock_path), 0o600, "old file made private");
        assert_eq!(mode(&two.lock_path), 0o600, "new file created private");
    }

    #[test]
    fn lock_files_are_not_opened_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::os::unix::fs::symlink(&victim, lock_path(dir.path(), 1)).unwrap();
        let err = claim(dir.path()).unwrap_err();
        assert!(matches!(err, SlotError::Open { .. }), "{err}");
        assert!(!victim.exists(), "the symlink's target was created");
        assert!(!is_taken(dir.path(), 1));
    }

    #[test]
    fn unwritable_directory_names_the_lock_file() {
        let err = claim(Path::new("/nonexistent/scopecam")).unwrap_err();
        assert!(err.to_string().contains("camera-1.lock"), "{err}");
    }
}
