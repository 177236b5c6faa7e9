//! The adapters of one deployment mode, opened from the configuration: embedded (SQLite
//! store, queue in the same file, in-process events) or distributed (PostgreSQL, Redis).

use crate::config::Config;
use morningai_core::Store;
use morningai_core::events::{EventBus, LocalBus};
use morningai_core::queue::JobQueue;
use std::sync::Arc;

/// Opens the configured backend: PostgreSQL when `database_url` is set, else SQLite.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database_url {
        Some(url) => {
            Arc::new(morningai_postgres::PgStore::connect(url, config.db_max_connections).await?)
        }
        None => Arc::new(morningai_sqlite::SqliteStore::open(config.sqlite_path()).await?),
    })
}

const RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(600);

fn retry_base(config: &Config) -> std::time::Duration {
    std::time::Duration::from_millis(config.retry_base_ms.max(1))
}

/// The store, queue and event bus of one deployment mode.
pub struct Backends {
    pub store: Arc<dyn Store>,
    /// The same database, as the workflow engine's checkpoint storage.
    pub checkpointer: Arc<dyn morningai_core::checkpoint::Checkpointer>,
    pub queue: Arc<dyn JobQueue>,
    pub bus: Arc<dyn EventBus>,
    /// Embedded mode: the store enqueues a task's job in the task's own transaction.
    pub queue_in_store: bool,
    /// The same database, as vector memory.
    pub memory: Arc<dyn morningai_core::memory::Memory>,
    /// The embedding model (local, or an OpenAI-compatible API), when one is configured.
    pub embedder: Option<Arc<dyn morningai_core::ai::Embedder>>,
    /// The same database, as the record of model usage.
    pub ledger: Arc<dyn morningai_core::usage::UsageLedger>,
    /// The same database, as LangGraph's long-term store.
    pub kv: Arc<dyn morningai_core::kv::KeyValueStore>,
    /// The deployment's chat provider and model, when configured.
    pub chat: Option<(Arc<morningai_ai::OpenAiProvider>, String)>,
}

/// Embedded (SQLite store, queue in the same file, in-process events) unless
/// `database_url` / `redis_url` say otherwise. PostgreSQL needs Redis for its queue.
pub async fn open_backends(config: &Config) -> anyhow::Result<Backends> {
    use anyhow::Context;
    let redis = match &config.redis_url {
        Some(url) => Some((
            morningai_redis::RedisQueue::connect(
                url,
                &config.redis_prefix,
                config.tenant_concurrency,
            )
            .await
            .context("Redis queue")?
            .with_backoff(retry_base(config), RETRY_CAP),
            morningai_redis::RedisBus::connect(url, &config.redis_prefix)
                .await
                .context("Redis event bus")?,
        )),
        None => None,
    };
    let (db, sqlite) = open_database(config, redis.is_none()).await?;
    let embedder = load_embedder(config).await?;
    let chat = crate::models::default_chat(config)?;
    let (queue, bus, queue_in_store): (Arc<dyn JobQueue>, Arc<dyn EventBus>, bool) =
        match (redis, sqlite) {
            (Some((queue, bus)), _) => (Arc::new(queue), Arc::new(bus), false),
            (None, Some(s)) => (
                Arc::new(
                    morningai_sqlite::SqliteQueue::new(&s, config.tenant_concurrency)
                        .with_backoff(retry_base(config), RETRY_CAP),
                ),
                Arc::new(LocalBus::default()),
                true,
            ),
            (None, None) => {
                anyhow::bail!("with DATABASE_URL (PostgreSQL) the job queue needs REDIS_URL")
            }
        };
    Ok(Backends {
        store: db.store,
        checkpointer: db.checkpointer,
        queue,
        bus,
        queue_in_store,
        memory: db.memory,
        embedder,
        ledger: db.ledger,
        kv: db.kv,
        chat,
    })
}

/// The configured database (and, embedded, the SQLite store for the queue beside it).
async fn open_database(
    config: &Config,
    embedded_queue: bool,
) -> anyhow::Result<(Database, Option<morningai_sqlite::SqliteStore>)> {
    Ok(match &config.database_url {
        Some(url) => {
            let pg = morningai_postgres::PgStore::connect(url, config.db_max_connections).await?;
            (Database::of(Arc::new(pg)), None)
        }
        None => {
            let s = morningai_sqlite::SqliteStore::open(config.sqlite_path())
                .await?
                .with_embedded_queue(embedded_queue);
            (Database::of(Arc::new(s.clone())), Some(s))
        }
    })
}

/// What indexing needs and nothing more: the store (tenants), vector memory and the
/// embedding model — no queue, so `morningai index` on PostgreSQL runs without Redis.
pub struct MemoryBackends {
    pub store: Arc<dyn Store>,
    pub memory: Arc<dyn morningai_core::memory::Memory>,
    pub embedder: Option<Arc<dyn morningai_core::ai::Embedder>>,
}

/// Opens the configured database and embedding model (see [`MemoryBackends`]).
pub async fn open_memory(config: &Config) -> anyhow::Result<MemoryBackends> {
    let (db, _) = open_database(config, false).await?;
    Ok(MemoryBackends {
        store: db.store,
        memory: db.memory,
        embedder: load_embedder(config).await?,
    })
}

/// One database behind every storage port.
struct Database {
    store: Arc<dyn Store>,
    checkpointer: Arc<dyn morningai_core::checkpoint::Checkpointer>,
    memory: Arc<dyn morningai_core::memory::Memory>,
    ledger: Arc<dyn morningai_core::usage::UsageLedger>,
    kv: Arc<dyn morningai_core::kv::KeyValueStore>,
}

impl Database {
    fn of<T>(db: Arc<T>) -> Self
    where
        T: Store
            + morningai_core::checkpoint::Checkpointer
            + morningai_core::memory::Memory
            + morningai_core::usage::UsageLedger
            + morningai_core::kv::KeyValueStore,
    {
        Self {
            store: db.clone(),
            checkpointer: db.clone(),
            memory: db.clone(),
            ledger: db.clone(),
            kv: db,
        }
    }
}

/// The configured embedding model: an OpenAI-compatible API when `embed_base_url` is set,
/// else the local model, loaded once (about a second for MiniLM). Without either, memory
/// runs lexical-only and says so in the logs and `/readyz`.
pub(crate) async fn load_embedder(
    config: &Config,
) -> anyhow::Result<Option<Arc<dyn morningai_core::ai::Embedder>>> {
    use anyhow::Context;
    if let Some(api) = crate::models::api_embedder(config)? {
        anyhow::ensure!(
            config.embed_model_dir.is_none(),
            "embed_model_dir and embed_base_url are alternatives; set one"
        );
        return Ok(Some(api));
    }
    let Some(dir) = config.embed_model_dir.clone() else {
        tracing::warn!(
            "no embedding model configured (MORNINGAI_EMBED_MODEL_DIR): memory search is lexical only"
        );
        return Ok(None);
    };
    let model = tokio::task::spawn_blocking(move || morningai_ai::MiniLm::load(&dir, None))
        .await
        .context("load the embedding model")?
        .context("load the embedding model")?;
    tracing::info!(
        model = morningai_core::ai::Embedder::model(&model),
        precision = model.precision(),
        "embedding model loaded"
    );
    Ok(Some(Arc::new(model)))
}
