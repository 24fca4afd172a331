//! Atomic file replacement: the new contents go to a temporary file in the target's directory,
//! are synced, and take the target's name by rename, so readers (and Envoy's directory watcher)
//! only ever see the old file or the whole new one.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// New contents written and synced next to their target, not yet in place.
pub struct Staged {
    temp: PathBuf,
    target: PathBuf,
    done: bool,
}

/// Writes `contents` to a new temporary file beside `target`, with `permissions`, and syncs it.
pub fn stage(target: &Path, contents: &[u8], permissions: Permissions) -> io::Result<Staged> {
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
    file.set_permissions(permissions)?;
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
        let perms = fs::metadata(&target).unwrap().permissions();
        let staged = stage(&target, b"new", perms.clone()).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        staged.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        drop(stage(&target, b"newer", perms).unwrap());
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
