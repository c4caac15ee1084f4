//! Small files written whole or not at all.
//!
//! One way for every file the platform replaces in place (the local artifact store's files, the
//! audit anchor and its key, the service's flows, challenger settings and drift windows): a
//! temporary file with a unique name beside the target, written, fsynced, renamed over the target,
//! and the directory fsynced. A reader sees the old bytes or the new ones; a crash leaves either
//! plus at most a hidden temporary file. The name is unique per write, so writers of one file at
//! the same time (two requests, two processes on one data directory) never truncate each other's
//! temporary file or rename a half-written one: each renames a whole file and the last one wins.

use std::io::Write;
use std::path::Path;

/// Who may read a file [`write`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The process's default permissions (its umask).
    Default,
    /// The owner only (mode 0600 on Unix): keys and anchors.
    Private,
}

/// Replaces `path` with `bytes` atomically and durably, creating its directory when missing.
/// Errors name the file they are about.
pub fn write(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if access == Access::Private {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = access;
        let mut file = options.open(&temp).map_err(|e| named(&temp, e))?;
        file.write_all(bytes).map_err(|e| named(&temp, e))?;
        file.sync_all().map_err(|e| named(&temp, e))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(|e| named(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// fsyncs a directory, so that renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| named(dir, e))
}

fn named(path: &Path, error: std::io::Error) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight threads replace one file over and over: every write succeeds, the file always holds
    /// one writer's bytes whole, and no temporary file is left.
    #[test]
    fn concurrent_writers_of_one_file_each_rename_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("flow.json");
        let contents: Vec<Vec<u8>> = (0..8u8)
            .map(|w| vec![b'a' + w; 64 * 1024 + usize::from(w)])
            .collect();
        std::thread::scope(|s| {
            for bytes in &contents {
                let (path, contents) = (&path, &contents);
                s.spawn(move || {
                    for _ in 0..40 {
                        write(path, bytes, Access::Default).unwrap();
                        let now = std::fs::read(path).unwrap();
                        assert!(
                            contents.contains(&now),
                            "a torn file of {} bytes",
                            now.len()
                        );
                    }
                });
            }
        });
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("flow.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_the_owners_only_and_failures_name_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchor.key");
        write(&path, b"k", Access::Private).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"k");
        // A directory where the file should be: the rename fails, naming it, and no temp is left.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let err = write(&blocked, b"x", Access::Default).unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
