//! The connection set shared by the store and the queue: one writer thread owning the only
//! write connection, and a few reader connections beside it (WAL). SQLite serialises
//! writers anyway; one writer never meets `SQLITE_BUSY`.
//!
//! The writer does group commit: it takes every write waiting for it (up to 256), runs each
//! in its own savepoint inside one transaction, commits once, and only then answers each
//! caller. A failing write rolls back its savepoint and nothing else. Under load this turns
//! hundreds of commits (and their WAL page writes) into one. Reads run on tokio's blocking
//! pool.

use crate::migrate;
use morningai_core::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};
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

/// A write waiting for the writer thread: runs inside the batch's transaction (None when
/// the transaction could not start) and returns what to do once the batch committed (or
/// failed to).
type WriteOp = Box<
    dyn FnOnce(Option<&mut rusqlite::Transaction<'_>>) -> Box<dyn FnOnce(Option<String>) + Send>
        + Send,
>;

const MAX_BATCH: usize = 256;

struct Pool {
    writer: std::sync::mpsc::Sender<WriteOp>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    busy: AtomicUsize,
    /// Keeps the checkpoint thread running while the pool lives.
    _alive: Arc<()>,
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
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;
         PRAGMA mmap_size = 268435456;",
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
            // Checkpoints run on a thread of their own, so the writer never stalls on one.
            writer
                .pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| Error::internal(&ctx, e))?;
            let checkpointer = connect(&path).map_err(|e| Error::internal(&ctx, e))?;
            let (tx, rx) = std::sync::mpsc::channel::<WriteOp>();
            let alive = Arc::new(());
            let weak = Arc::downgrade(&alive);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpoint_loop(checkpointer, weak))
                .map_err(|e| Error::internal("start the sqlite checkpoint thread", e))?;
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || write_loop(writer, rx))
                .map_err(|e| Error::internal("start the sqlite writer thread", e))?;
            let readers = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
                * 2;
            let readers = (0..readers)
                .map(|_| connect(&path).map(Mutex::new))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| Error::internal(&ctx, e))?;
            Ok(Pool {
                _alive: alive,
                writer: tx,
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

    /// Runs `f` on the writer inside a savepoint of the current batch; answers once the
    /// batch committed. An error from `f` rolls back only `f`'s writes.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<T>>();
        let op: WriteOp = Box::new(move |tx: Option<&mut rusqlite::Transaction<'_>>| {
            let outcome: Result<T> = match tx {
                None => Err(Error::internal(
                    ctx,
                    "the write transaction could not start",
                )),
                Some(tx) => match tx.savepoint() {
                    Err(e) => Err(Error::internal(ctx, e)),
                    Ok(mut sp) => {
                        let r = f(&sp);
                        match r {
                            Ok(v) => match sp.commit() {
                                Ok(()) => Ok(v),
                                Err(e) => Err(Error::internal(ctx, e)),
                            },
                            Err(fail) => {
                                let _ = sp.rollback();
                                Err(match fail {
                                    Fail::Domain(e) => e,
                                    Fail::Db(e) => Error::internal(ctx, e),
                                })
                            }
                        }
                    }
                },
            };
            Box::new(move |commit_error: Option<String>| {
                let answer = match (outcome, commit_error) {
                    (Ok(_), Some(e)) => Err(Error::internal(ctx, format!("commit: {e}"))),
                    (r, _) => r,
                };
                let _ = done_tx.send(answer);
            })
        });
        self.0
            .writer
            .send(op)
            .map_err(|_| Error::internal(ctx, "the sqlite writer thread stopped"))?;
        self.0.busy.fetch_add(1, Ordering::Relaxed);
        let r = done_rx
            .await
            .map_err(|_| Error::internal(ctx, "the sqlite writer thread dropped the write"));
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        r?
    }
}

/// Copies the WAL back into the database every 250 ms (PASSIVE: never blocks the writer
/// or readers). Ends once the store is dropped (the writer channel closes).
fn checkpoint_loop(conn: Connection, alive: std::sync::Weak<()>) {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed");
        }
    }
}

/// The writer thread: group commit (see the module docs). Ends when every sender is gone.
fn write_loop(mut conn: Connection, rx: std::sync::mpsc::Receiver<WriteOp>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(mut tx) => {
                let finish: Vec<_> = batch.into_iter().map(|op| op(Some(&mut tx))).collect();
                let commit_error = tx.commit().err().map(|e| e.to_string());
                for f in finish {
                    f(commit_error.clone());
                }
            }
            Err(e) => {
                let e = e.to_string();
                for op in batch {
                    op(None)(Some(e.clone()));
                }
            }
        }
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
