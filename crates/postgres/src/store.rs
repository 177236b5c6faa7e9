//! The PostgreSQL store: the connection pool, the scoped and platform one-shot helpers, and
//! the parts of `Store` that are the database's own (backend name, readiness, pool gauges);
//! the repositories live in `accounts`, `tasks`, `schedules`, `objects` and `audit`.

use crate::tx::{conn, db_err, one_shot};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use morningai_core::store::PoolStats;
use morningai_core::{Error, Result, Store, TenantCtx};
use tokio_postgres::error::SqlState;

/// PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    /// Dense searches over fewer vectors than this scan exactly instead of using HNSW.
    pub(crate) exact_below: i64,
    /// Concurrent reads of a tenant's tasks, coalesced (`reads.rs`).
    pub(crate) reads: crate::reads::TaskReads,
    /// Concurrent creations of a tenant's tasks, coalesced (`tasks.rs`).
    pub(crate) creates: crate::tasks::TaskCreates,
}

pub(crate) fn unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl PgStore {
    /// Connects (pool of `max_connections`) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self> {
        let (config, tls, _) = crate::tls::connect_config(url)?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::internal("build postgres pool", e))?;
        let mut client = conn(&pool).await?;
        crate::migrate::run(&mut client)
            .await
            .map_err(db_err("postgres migrations"))?;
        Ok(Self {
            pool,
            exact_below: crate::memory::EXACT_BELOW,
            reads: crate::reads::task_reads(),
            creates: crate::tasks::task_creates(),
        })
    }

    /// Sets the scope size from which dense search walks the HNSW index (tests force the
    /// index with 0).
    pub fn with_exact_below(mut self, vectors: i64) -> Self {
        self.exact_below = vectors;
        self
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) async fn scoped(
        &self,
        cx: TenantCtx,
        context: &str,
        sql: &str,
        params: crate::tx::Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        one_shot(&self.pool, Some(cx), context, sql, params).await
    }

    pub(crate) async fn platform(
        &self,
        context: &str,
        sql: &str,
        params: crate::tx::Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        one_shot(&self.pool, None, context, sql, params).await
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        let client = conn(&self.pool).await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let s = self.pool.status();
        PoolStats {
            size: s.size as u64,
            idle: s.available as u64,
            waiting: s.waiting as u64,
        }
    }
}
