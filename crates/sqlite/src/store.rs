//! The SQLite store: the connection set and the parts of `Store` that are the database's own
//! (backend name, readiness, pool gauges); the repositories live in `accounts`, `tasks`,
//! `schedules`, `objects` and `audit`.

use crate::db::{Db, Res};
use async_trait::async_trait;
use morningai_core::store::PoolStats;
use morningai_core::{Result, Store};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// SQLite implementation of [`Store`]. With the embedded queue enabled (the default),
/// creating a task also enqueues its job in the same transaction.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) db: Db,
    pub(crate) jobs_in_db: bool,
    pub(crate) vectors: std::sync::Arc<crate::memory::VectorCache>,
    /// Lexical scopes of at most this many chunks are ranked by counting their terms.
    pub(crate) small_scope: i64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            db: Db::open(path.into()).await?,
            jobs_in_db: true,
            vectors: Default::default(),
            small_scope: crate::memory::SMALL_SCOPE,
        })
    }

    /// The largest keyword-search scope ranked by counting the terms of the chunks that
    /// hold one, instead of through the index's per-occurrence list (default 1,000; 0
    /// sends every search through the index — the conformance suite runs both ways).
    pub fn with_small_scope_ranking(mut self, max_chunks: i64) -> Self {
        self.small_scope = max_chunks;
        self
    }

    /// Whether `create_task` also enqueues the task's job in the embedded queue (turn off
    /// when another queue, e.g. Redis, carries the work).
    pub fn with_embedded_queue(mut self, on: bool) -> Self {
        self.jobs_in_db = on;
        self
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        self.db.read(ctx, f).await
    }

    pub(crate) async fn write<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        self.db.write(ctx, f).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.read("ping", |c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        let (size, busy) = self.db.stats();
        PoolStats {
            size,
            idle: size.saturating_sub(busy),
            waiting: 0,
        }
    }
}
