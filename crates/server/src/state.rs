//! Shared application state and its construction from the configuration.

use crate::auth::{AuthCache, TokenKeys};
use crate::config::{Config, Environment};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use morningai_core::Store;
use morningai_core::events::{EventBus, LocalBus};
use morningai_core::queue::JobQueue;
use morningai_worker::{Registry, TaskService};
use std::num::NonZeroU32;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub config: Config,
    pub tokens: TokenKeys,
    pub cache: AuthCache,
    pub registry: Registry,
    pub tasks: Arc<TaskService>,
    pub checkpointer: Arc<dyn morningai_core::checkpoint::Checkpointer>,
    pub memory: Arc<dyn morningai_core::memory::Memory>,
    pub embedder: Option<Arc<dyn morningai_core::ai::Embedder>>,
    pub retriever: Arc<morningai_agents::Retriever>,
    pub catalog: Arc<crate::langgraph::Catalog>,
    pub models: Arc<crate::models::Models>,
    pub kv: Arc<dyn morningai_core::kv::KeyValueStore>,
    pub documents: Arc<crate::documents::Documents>,
    pub login_by_ip: DefaultKeyedRateLimiter<String>,
    pub login_by_email: DefaultKeyedRateLimiter<String>,
    pub metrics: PrometheusHandle,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The process-wide Prometheus recorder (a process has one global recorder).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

fn limiter(per_minute: u32) -> DefaultKeyedRateLimiter<String> {
    RateLimiter::keyed(Quota::per_minute(
        NonZeroU32::new(per_minute.max(1)).expect("max(1) is non-zero"),
    ))
}

/// Reads or creates the signing key. Production demands an explicit key of ≥ 32 bytes.
pub fn signing_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = &config.signing_key {
        anyhow::ensure!(
            k.len() >= 32,
            "the signing key must be at least 32 bytes (it is {})",
            k.len()
        );
        return Ok(k.as_bytes().to_vec());
    }
    anyhow::ensure!(
        config.env != Environment::Production,
        "MORNINGAI_SIGNING_KEY is required in production (at least 32 bytes); refusing to start"
    );
    load_or_create_key(&config.data_dir.join("signing.key"))
}

fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    if let Ok(existing) = std::fs::read_to_string(path) {
        let k = existing.trim().to_owned();
        anyhow::ensure!(
            k.len() >= 32,
            "{} holds a key shorter than 32 bytes",
            path.display()
        );
        return Ok(k.into_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let key = crate::auth::random_secret("");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, key.as_bytes())
                .with_context(|| format!("write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new signing key");
            Ok(key.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e).with_context(|| format!("create {}", path.display())),
    }
}

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
    let (db, sqlite) = match &config.database_url {
        Some(url) => {
            let pg = morningai_postgres::PgStore::connect(url, config.db_max_connections).await?;
            (Database::of(Arc::new(pg)), None)
        }
        None => {
            let s = morningai_sqlite::SqliteStore::open(config.sqlite_path())
                .await?
                .with_embedded_queue(redis.is_none());
            (Database::of(Arc::new(s.clone())), Some(s))
        }
    };
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
async fn load_embedder(
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
    Ok(Some(Arc::new(model)))
}

impl AppState {
    pub fn new(backends: &Backends, config: Config, key: &[u8]) -> Self {
        Self::with_registry(backends, config, key, Registry::builtin())
    }

    /// With a registry of task kinds other than the built-in one (tests add failing and
    /// slow kinds).
    pub fn with_registry(
        backends: &Backends,
        config: Config,
        key: &[u8],
        registry: Registry,
    ) -> Self {
        let agents = agents(backends, &config, key);
        let tasks = Arc::new(TaskService::new(
            backends.store.clone(),
            backends.queue.clone(),
            backends.bus.clone(),
            backends.queue_in_store,
        ));
        Self(Arc::new(Inner {
            store: backends.store.clone(),
            registry: task_registry(backends, &config, &agents, registry),
            tasks,
            checkpointer: backends.checkpointer.clone(),
            retriever: agents.retriever.clone(),
            documents: agents.documents.clone(),
            memory: backends.memory.clone(),
            embedder: backends.embedder.clone(),
            catalog: agents.catalog.clone(),
            models: agents.models.clone(),
            kv: backends.kv.clone(),
            tokens: TokenKeys::new(key),
            cache: AuthCache::default(),
            login_by_ip: limiter(config.login_per_minute_per_ip),
            login_by_email: limiter(config.login_per_minute_per_email),
            metrics: metrics_handle(),
            config,
        }))
    }
}

/// What agents run on, and the catalog of graphs with the agents' among them.
pub struct Agents {
    pub retriever: Arc<morningai_agents::Retriever>,
    pub documents: Arc<crate::documents::Documents>,
    pub models: Arc<crate::models::Models>,
    pub catalog: Arc<crate::langgraph::Catalog>,
}

/// `key`: the signing key (provider API keys are sealed under a key derived from it).
pub fn agents(backends: &Backends, config: &Config, key: &[u8]) -> Agents {
    let retriever = Arc::new(morningai_agents::Retriever::new(
        backends.memory.clone(),
        backends.embedder.clone(),
    ));
    let documents = Arc::new(crate::documents::Documents {
        store: backends.store.clone(),
        retriever: retriever.clone(),
    });
    let models = Arc::new(crate::models::Models::new(config, key, backends));
    let deps = Arc::new(crate::faq::AgentDeps {
        retriever: retriever.clone(),
        documents: documents.clone(),
        models: models.clone(),
    });
    let members_decide = crate::langgraph::catalog::ApprovalPolicy {
        min_role: morningai_core::Role::Member,
        allow_self: true,
        expires_after: None,
        on_expiry_fail: false,
    };
    let mut catalog = crate::langgraph::Catalog::default();
    catalog.add(
        "faq",
        crate::langgraph::catalog::Entry {
            graph: Arc::new(crate::faq::graph(deps.clone())),
            description: "Documentation agent: answers a question about the tenant's indexed sources with a cited, versioned document.",
            approvals: members_decide.clone(),
        },
    );
    catalog.add(
        "codegen",
        crate::langgraph::catalog::Entry {
            graph: Arc::new(crate::codegen::graph(deps, config.index_roots.clone())),
            description: "Code generation agent: a unified diff against the indexed tree that applies cleanly and parses, with a plan and an explanation.",
            approvals: members_decide,
        },
    );
    Agents {
        retriever,
        documents,
        models,
        catalog: Arc::new(catalog),
    }
}

/// `base` plus the kinds that need the backends: `index`, `graph_run` (graph runs on the
/// queue), `faq` and `codegen` (the agents).
pub fn task_registry(
    backends: &Backends,
    config: &Config,
    agents: &Agents,
    mut base: Registry,
) -> Registry {
    let catalog = agents.catalog.clone();
    let runs = crate::langgraph::runs::GraphRuns {
        store: backends.store.clone(),
        checkpointer: backends.checkpointer.clone(),
        catalog,
    };
    base.register(
        "index",
        Arc::new(crate::indexing::IndexTask {
            memory: backends.memory.clone(),
            embedder: backends.embedder.clone(),
            roots: config.index_roots.clone(),
        }),
        crate::indexing::validate,
    );
    for (kind, validate) in [
        (
            "faq",
            crate::faq::validate as morningai_core::task_kinds::InputValidator,
        ),
        ("codegen", crate::codegen::validate),
    ] {
        let task = crate::faq::AgentTask {
            runs: runs.clone(),
            graph: kind,
        };
        base.register(kind, Arc::new(task), validate);
    }
    base.register("graph_run", Arc::new(runs), |input| {
        input
            .get("run_id")
            .and_then(serde_json::Value::as_str)
            .map(|_| ())
            .ok_or_else(|| "graph_run needs run_id".to_owned())
    });
    base
}
