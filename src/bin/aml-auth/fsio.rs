//! Atomic file replacement: the new contents go to a temporary file in the target's directory,
//! with the target's owner, group and mode, are synced, and take the target's name by rename, so
//! readers (and Envoy's directory watcher) only ever see the old file or the whole new one.
//! A lock file beside a target serialises editors.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Owner, group and mode of a file about to be replaced, which its replacement keeps.
#[derive(Clone, Debug)]
pub struct Keep {
    uid: u32,
    gid: u32,
    permissions: Permissions,
}

/// Reads what a replacement of `target` must keep, refusing a file this process may not write
/// (no write permission for it; for root, no write bit at all, as for `chmod 0444`): replacing
/// it by rename would succeed and silently defeat its permissions.
pub fn writable(target: &Path) -> Result<Keep, String> {
    let meta = fs::metadata(target).map_err(|e| e.to_string())?;
    let mode = meta.permissions().mode();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let may_write = if root {
        mode & 0o222 != 0
    } else {
        let c_path = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
            .map_err(|e| e.to_string())?;
        // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
        let rc = unsafe {
            libc::faccessat(
                libc::AT_FDCWD,
                c_path.as_ptr(),
                libc::W_OK,
                libc::AT_EACCESS,
            )
        };
        rc == 0
    };
    if !may_write {
        return Err(format!(
            "it is not writable (mode {:04o}): make it writable first if it is meant to change",
            mode & 0o7777
        ));
    }
    Ok(Keep {
        uid: meta.uid(),
        gid: meta.gid(),
        permissions: meta.permissions(),
    })
}

/// An exclusive lock on the lock file beside `target` (`.<name>.aml-auth-lock`), held until
/// dropped; waits for another holder to finish. A lock file another user created is locked
/// through a read-only descriptor (flock needs no write access).
pub fn lock_beside(target: &Path) -> io::Result<File> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    let lock = parent_dir(target).join(format!(".{name}.aml-auth-lock"));
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
    {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(&lock)?,
        other => other?,
    };
    file.lock()?;
    Ok(file)
}

/// New contents written and synced next to their target, not yet in place.
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

/// Writes `contents` to a new temporary file beside `target`, with the owner, group and mode in
/// `keep`, and syncs it; fails (leaving nothing behind) when the owner cannot be kept.
pub fn stage(target: &Path, contents: &[u8], keep: &Keep) -> io::Result<Staged> {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    let mut attempt = 0u32;
    let (temp, mut file) = loop {
        let temp = dir.join(format!(
            ".{name}.aml-auth-{}-{attempt}.tmp",
            std::process::id()
        ));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let staged = Staged {
        temp,
        target: target.to_path_buf(),
        done: false,
    };
    let meta = file.metadata()?;
    if (meta.uid(), meta.gid()) != (keep.uid, keep.gid) {
        std::os::unix::fs::fchown(&file, Some(keep.uid), Some(keep.gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot give the new file the owner {}:{} of the old one ({e}); run as that user or root",
                    keep.uid, keep.gid
                ),
            )
        })?;
    }
    file.set_permissions(keep.permissions.clone())?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(staged)
}

impl Staged {
    /// Renames the temporary file over the target and syncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.target)?;
        self.done = true;
        if let Ok(dir) = File::open(parent_dir(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aml-auth-fsio-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn commit_replaces_and_drop_discards() {
        let dir = scratch("commit");
        let target = dir.join("c.json");
        fs::write(&target, "old").unwrap();
        let keep = writable(&target).unwrap();
        let staged = stage(&target, b"new", &keep).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        staged.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        drop(stage(&target, b"newer", &keep).unwrap());
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
