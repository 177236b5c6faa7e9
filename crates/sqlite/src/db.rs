//! The connection set shared by the store and the queue: one writer connection behind a
//! mutex (SQLite serialises writers anyway, and one writer never meets `SQLITE_BUSY`) and
//! a few readers beside it (WAL). Every call runs on tokio's blocking pool.

use crate::migrate;
use morningai_core::{Error, Result};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What a closure run against the database can fail with.
pub(crate) enum Fail {
    Db(rusqlite::Error),
    Domain(Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Domain(e)
    }
}

pub(crate) type Res<T> = std::result::Result<T, Fail>;

struct Pool {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    busy: AtomicUsize,
    /// Woken when a job becomes ready, so idle workers in this process pick it up at once.
    work: Notify,
    path: PathBuf,
}

#[derive(Clone)]
pub(crate) struct Db(Arc<Pool>);

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub(crate) async fn open(path: PathBuf) -> Result<Self> {
        let pool = tokio::task::spawn_blocking(move || -> Result<Pool> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::internal(&format!("create {}", dir.display()), e))?;
            }
            let ctx = format!("open {}", path.display());
            let mut writer = connect(&path).map_err(|e| Error::internal(&ctx, e))?;
            migrate::run(&mut writer).map_err(|e| Error::internal("sqlite migrations", e))?;
            let readers = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
                * 2;
            let readers = (0..readers)
                .map(|_| connect(&path).map(Mutex::new))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| Error::internal(&ctx, e))?;
            Ok(Pool {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                busy: AtomicUsize::new(0),
                work: Notify::new(),
                path,
            })
        })
        .await
        .map_err(|e| Error::internal("sqlite open task", e))??;
        Ok(Self(Arc::new(pool)))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0.path
    }

    pub(crate) fn work(&self) -> &Notify {
        &self.0.work
    }

    /// (connections, busy).
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.0.readers.len() as u64 + 1,
            self.0.busy.load(Ordering::Relaxed) as u64,
        )
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.0.clone();
        run_blocking(ctx, move || {
            let i = pool.next_reader.fetch_add(1, Ordering::Relaxed) % pool.readers.len();
            let conn = pool.readers[i].lock().unwrap_or_else(|p| p.into_inner());
            pool.busy.fetch_add(1, Ordering::Relaxed);
            let out = f(&conn);
            pool.busy.fetch_sub(1, Ordering::Relaxed);
            out
        })
        .await
    }

    /// Runs `f` in an IMMEDIATE transaction on the writer; commits when it returns Ok.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.0.clone();
        run_blocking(ctx, move || {
            let mut conn = pool.writer.lock().unwrap_or_else(|p| p.into_inner());
            pool.busy.fetch_add(1, Ordering::Relaxed);
            let out = (|| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let v = f(&tx)?;
                tx.commit()?;
                Ok(v)
            })();
            pool.busy.fetch_sub(1, Ordering::Relaxed);
            out
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    ctx: &'static str,
    f: impl FnOnce() -> Res<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Fail::Domain(e))) => Err(e),
        Ok(Err(Fail::Db(e))) => Err(Error::internal(ctx, e)),
        Err(e) => Err(Error::internal(ctx, e)),
    }
}
