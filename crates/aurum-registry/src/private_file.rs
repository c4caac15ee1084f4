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
            // No existence check first: SQLite removes `-wal` and `-shm` when the last connection
            // to the database closes, which another pool (a platform still shutting down, another
            // process) may do at any moment. A file that is gone has nothing to tighten.
            match fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if !suffix.is_empty() && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::prepare;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_tightens_companions_and_passes_over_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("registry.db");
        prepare(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        // A `-wal` left by an earlier version with loose bits; no `-shm` (SQLite removed it, or
        // removes it while this runs): the first is tightened, the second is no error.
        let wal = dir.path().join("registry.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
        assert!(!dir.path().join("registry.db-shm").exists());
    }
}
