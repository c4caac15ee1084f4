//! Files that hold registry state are readable by their owner only.
//!
//! SQLite creates a database's `-wal` and `-shm` files with the database file's own permission
//! bits, so creating the database file with mode 0600 before SQLite opens it keeps all three
//! private. Existing files from earlier versions are tightened on open.

use std::path::Path;

use crate::error::Result;

/// Creates `path` empty with mode 0600 when missing; otherwise sets mode 0600 on it and on its
/// `-wal` and `-shm` companions.
pub(crate) fn prepare(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        use std::os::unix::fs::PermissionsExt;
        if !path.exists() {
            fs_err::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if p.exists() {
                fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
