//! The connection set shared by the store and the queue: one writer thread owning the only
//! write connection, and a few reader connections beside it (WAL). SQLite serialises
//! writers anyway; one writer never meets `SQLITE_BUSY`.
//!
//! The writer does group commit: it takes every write waiting for it (up to 256), runs each
//! in its own savepoint inside one transaction, commits once, and only then answers each
//! caller. A failing write rolls back its savepoint and nothing else. Under load this turns
//! hundreds of commits (and their WAL page writes) into one. Reads run on tokio's blocking
//! pool.
//!
//! A lone write skips the hand-off: when nothing is queued for the writer thread and the
//! write connection is free, a short write (one row or a few) runs and commits on the
//! caller's thread. Two thread wake-ups cost more than the write itself (~150 µs against
//! ~20 µs measured), and a graph run in `sync` durability makes one lone write per step.
//! Bulk writes (purges, expiry, compaction) always go to the writer thread, so an async
//! caller never blocks for long.

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

impl Fail {
    fn into_error(self, ctx: &'static str) -> Error {
        match self {
            Fail::Domain(e) => e,
            Fail::Db(e) => Error::internal(ctx, e),
        }
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

/// How long a connection waits for a lock another process holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

struct Pool {
    /// The only write connection: the writer thread's, borrowed by lone writes.
    conn: Arc<Mutex<Connection>>,
    writer: std::sync::mpsc::Sender<WriteOp>,
    /// Writes handed to the writer thread and not answered yet.
    queued: Arc<AtomicUsize>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    busy: AtomicUsize,
    /// Keeps the checkpoint thread running while the pool lives.
    _alive: Arc<()>,
    /// Woken when a job becomes ready, so idle workers in this process pick it up at once.
    work: Notify,
    path: PathBuf,
    /// The shared lock every process using the file holds (see `backup`).
    _in_use: std::fs::File,
}

#[derive(Clone)]
pub(crate) struct Db(Arc<Pool>);

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
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
            let in_use = crate::backup::hold_shared(&path)?;
            let ctx = format!("open {}", path.display());
            let mut writer = connect(&path).map_err(|e| Error::internal(&ctx, e))?;
            migrate::run(&mut writer).map_err(|e| Error::internal("sqlite migrations", e))?;
            // Checkpoints run on a thread of their own, so the writer never stalls on one.
            writer
                .pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| Error::internal(&ctx, e))?;
            let checkpointer = connect(&path).map_err(|e| Error::internal(&ctx, e))?;
            let (tx, rx) = std::sync::mpsc::channel::<WriteOp>();
            let conn = Arc::new(Mutex::new(writer));
            let queued = Arc::new(AtomicUsize::new(0));
            let alive = Arc::new(());
            let weak = Arc::downgrade(&alive);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpoint_loop(checkpointer, weak))
                .map_err(|e| Error::internal("start the sqlite checkpoint thread", e))?;
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn({
                    let (conn, queued) = (conn.clone(), queued.clone());
                    move || write_loop(&conn, &queued, rx)
                })
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
                conn,
                writer: tx,
                queued,
                readers,
                next_reader: AtomicUsize::new(0),
                busy: AtomicUsize::new(0),
                work: Notify::new(),
                path,
                _in_use: in_use,
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

    /// Runs a short read on the caller's thread when a reader connection is free, else
    /// like [`Db::read`]. For index lookups that return a few rows: a hand-off to the
    /// blocking pool costs more than they do.
    pub(crate) async fn read_now<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        for conn in &self.0.readers {
            if let Ok(conn) = conn.try_lock() {
                return f(&conn).map_err(|fail| fail.into_error(ctx));
            }
        }
        self.read(ctx, f).await
    }

    /// Runs `f` and answers once its writes committed: in a transaction of its own on the
    /// caller's thread when the write connection is idle and the write lock free (a lone
    /// write), otherwise in a savepoint of the writer thread's next batch. An error from
    /// `f` rolls back only `f`'s writes. For short writes; see [`Db::write_queued`] for
    /// bulk ones.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        if self.0.queued.load(Ordering::Acquire) == 0
            && let Ok(conn) = self.0.conn.try_lock()
            && let Some(tx) = OwnTx::try_begin(&conn)
        {
            let v = f(&conn).map_err(|fail| fail.into_error(ctx))?;
            tx.commit()
                .map_err(|e| Error::internal(ctx, format!("commit: {e}")))?;
            return Ok(v);
        }
        self.write_queued(ctx, f).await
    }

    /// Runs `f` on the writer thread inside a savepoint of its next batch; answers once the
    /// batch committed. For writes that may touch many rows: the caller never blocks.
    pub(crate) async fn write_queued<T: Send + 'static>(
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
                Some(tx) => in_savepoint(ctx, tx, f),
            };
            Box::new(move |commit_error: Option<String>| {
                let answer = match (outcome, commit_error) {
                    (Ok(_), Some(e)) => Err(Error::internal(ctx, format!("commit: {e}"))),
                    (r, _) => r,
                };
                let _ = done_tx.send(answer);
            })
        });
        self.0.queued.fetch_add(1, Ordering::AcqRel);
        if self.0.writer.send(op).is_err() {
            self.0.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::internal(ctx, "the sqlite writer thread stopped"));
        }
        self.0.busy.fetch_add(1, Ordering::Relaxed);
        let r = done_rx
            .await
            .map_err(|_| Error::internal(ctx, "the sqlite writer thread dropped the write"));
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        r?
    }
}

/// A lone write's own transaction, begun and ended with cached statements (rusqlite's
/// `Transaction` parses `BEGIN`/`COMMIT` each time). Rolled back unless committed, also
/// when the write panics.
struct OwnTx<'c>(&'c Connection, bool);

impl<'c> OwnTx<'c> {
    /// None when the write lock is not free at once (another process holds it, or the
    /// statement failed): the caller then queues the write for the writer thread, which
    /// may wait for the lock without blocking an async caller.
    fn try_begin(conn: &'c Connection) -> Option<Self> {
        conn.busy_timeout(std::time::Duration::ZERO).ok()?;
        let begun = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut st| st.execute([]));
        conn.busy_timeout(BUSY_TIMEOUT).ok()?;
        begun.ok().map(|_| Self(conn, false))
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.0.prepare_cached("COMMIT")?.execute([])?;
        self.1 = true;
        Ok(())
    }
}

impl Drop for OwnTx<'_> {
    fn drop(&mut self) {
        if !self.1 && !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

/// Runs `f` in its own savepoint of `tx`: committed into `tx` on success, rolled back on
/// error.
fn in_savepoint<T>(
    ctx: &'static str,
    tx: &mut rusqlite::Transaction<'_>,
    f: impl FnOnce(&Connection) -> Res<T>,
) -> Result<T> {
    let mut sp = tx.savepoint().map_err(|e| Error::internal(ctx, e))?;
    match f(&sp) {
        Ok(v) => {
            sp.commit().map_err(|e| Error::internal(ctx, e))?;
            Ok(v)
        }
        Err(fail) => {
            let _ = sp.rollback();
            Err(fail.into_error(ctx))
        }
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
fn write_loop(
    conn: &Mutex<Connection>,
    queued: &AtomicUsize,
    rx: std::sync::mpsc::Receiver<WriteOp>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        let finish: Vec<_> = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(mut tx) => {
                let finish: Vec<_> = batch.into_iter().map(|op| op(Some(&mut tx))).collect();
                let commit_error = tx.commit().err().map(|e| e.to_string());
                finish
                    .into_iter()
                    .map(|f| (f, commit_error.clone()))
                    .collect()
            }
            Err(e) => {
                let e = e.to_string();
                batch
                    .into_iter()
                    .map(|op| (op(None), Some(e.clone())))
                    .collect()
            }
        };
        drop(conn);
        queued.fetch_sub(n, Ordering::AcqRel);
        for (f, commit_error) in finish {
            f(commit_error);
        }
    }
}

async fn run_blocking<T: Send + 'static>(
    ctx: &'static str,
    f: impl FnOnce() -> Res<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|fail| fail.into_error(ctx)),
        Err(e) => Err(Error::internal(ctx, e)),
    }
}
