//! Online backup and offline restore of the embedded database file.
//!
//! A backup is `VACUUM INTO`: one read transaction over the live database, so it is a
//! consistent snapshot at one commit while `serve` keeps writing (WAL readers never block
//! the writer, and the writer never blocks them). A restore replaces the file only when no
//! process has the database open: every opener holds a shared lock on `<db>.lock` for as
//! long as it runs, and a restore needs that lock exclusively.

use morningai_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A file beside the database file: `<db><suffix>` (`.lock`, `-wal`, `.pre-restore`…).
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The lock file beside a database file.
fn lock_path(db: &Path) -> PathBuf {
    beside(db, ".lock")
}

/// Takes the lock (shared or exclusive) without waiting; `busy` is the error when another
/// process holds it the other way.
fn try_lock(file: &File, db: &Path, shared: bool, busy: impl FnOnce() -> Error) -> Result<()> {
    let taken = if shared {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match taken {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::internal(
            &format!("lock {}", lock_path(db).display()),
            e,
        )),
    }
}

fn open_lock(db: &Path) -> Result<File> {
    let path = lock_path(db);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::internal(&format!("open {}", path.display()), e))
}

/// Held by every process that has the database open: shared among them, refused while a
/// restore replaces the file.
pub(crate) fn hold_shared(db: &Path) -> Result<File> {
    let file = open_lock(db)?;
    try_lock(&file, db, true, || {
        Error::unavailable(
            "database_restoring",
            format!(
                "{} is being restored by another process; start again when it is done",
                db.display()
            ),
        )
    })?;
    Ok(file)
}

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The schema version (migrations applied) of the copy.
    pub schema_version: i64,
}

/// Writes a consistent copy of the database `db` to `out` (a new file) while other
/// processes go on using it.
pub fn snapshot(db: &Path, out: &Path) -> Result<Snapshot> {
    let ctx = format!("back up {} to {}", db.display(), out.display());
    if !db.is_file() {
        return Err(Error::invalid(
            "database",
            format!("{} does not exist: nothing to back up", db.display()),
        ));
    }
    if out.exists() {
        return Err(Error::invalid(
            "backup",
            format!("{} exists already", out.display()),
        ));
    }
    // A restore must not swap the file (and its write-ahead log) under the copy.
    let _in_use = hold_shared(db)?;
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| Error::internal(&ctx, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| Error::internal(&ctx, e))?;
    let target = out
        .to_str()
        .ok_or_else(|| Error::invalid("backup", "the backup path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| Error::internal(&ctx, e))?;
    drop(conn);
    // The copy holds every tenant's data and the credential hashes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::internal(&ctx, e))?;
    }
    check(out)
}

/// Checks a backup file: SQLite's integrity check passes and its schema is one this build
/// can run (not newer than its migrations).
pub fn check(file: &Path) -> Result<Snapshot> {
    let ctx = format!("check {}", file.display());
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::internal(&ctx, e))?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| Error::invalid("backup", format!("{}: {e}", file.display())))?;
    if verdict != "ok" {
        return Err(Error::invalid(
            "backup",
            format!(
                "{} fails SQLite's integrity check: {verdict}",
                file.display()
            ),
        ));
    }
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Error::internal(&ctx, e))?;
    let latest = crate::migrate::latest();
    if schema_version > latest {
        return Err(Error::invalid(
            "backup",
            format!(
                "{} has schema version {schema_version}; this build knows up to {latest}: restore it with a newer morningai",
                file.display()
            ),
        ));
    }
    Ok(Snapshot { schema_version })
}

/// Replaces the database `db` with the backup file `from` (checked first), running
/// `install` (the files that belong with it, e.g. the signing key) under the same lock just
/// before the swap. Refused while any process has `db` open. The replaced database and its
/// write-ahead log are kept beside it as `<db>.pre-restore` (`-wal`, `-shm`): left in
/// place, the old log would be replayed into the restored file.
pub fn restore(from: &Path, db: &Path, install: impl FnOnce() -> Result<()>) -> Result<Snapshot> {
    let snapshot = check(from)?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(&format!("create {}", dir.display()), e))?;
    }
    let lock = open_lock(db)?;
    try_lock(&lock, db, false, || {
        Error::conflict(
            "database_in_use",
            format!(
                "{} is open in another process (serve, worker or a command): stop it before restoring",
                db.display()
            ),
        )
    })?;
    let ctx = format!("restore {} from {}", db.display(), from.display());
    let with = |suffix: &str| beside(db, suffix);
    let staged = with(".restoring");
    std::fs::copy(from, &staged).map_err(|e| Error::internal(&ctx, e))?;
    File::open(&staged)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::internal(&ctx, e))?;
    install()?;
    for stale in [".pre-restore-wal", ".pre-restore-shm"] {
        match std::fs::remove_file(with(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::internal(&ctx, e)),
        }
    }
    // Set the old files aside (the database first: a crash after it leaves no database
    // with a foreign log), then put the copy in place.
    for suffix in ["", "-wal", "-shm"] {
        match std::fs::rename(with(suffix), with(&format!(".pre-restore{suffix}"))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::internal(&ctx, e)),
        }
    }
    std::fs::rename(&staged, db).map_err(|e| Error::internal(&ctx, e))?;
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::internal(&ctx, e))?;
    }
    drop(lock);
    Ok(snapshot)
}
