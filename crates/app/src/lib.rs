//! MorningAI's application layer: the use cases every surface calls — the HTTP API, the
//! CLI, and the chat, MCP and OpenAI-compatible surfaces — and [`Application::build`], the
//! one place where ports meet adapters. Services take the caller as a [`auth::Principal`]
//! and return domain errors (`morningai_core::Error`); mapping them to HTTP is `server`'s
//! job.

pub mod accounts;
pub mod agents;
pub mod assistants;
pub mod auth;
pub mod backends;
pub mod backup;
pub mod chat;
pub mod config;
pub mod doctor;
pub mod documents;
pub mod events;
pub mod graphs;
pub mod indexing;
pub mod integrations;
pub mod memory;
pub mod models;
pub mod platform;
pub mod runtime;
pub mod secrets;
pub mod store_items;
pub mod tasks;
pub mod tenancy;
pub mod trace;
pub mod webhooks;

use auth::{Auth, Principal};
use backends::Backends;
use config::Config;
use graphs::{Catalog, Graphs};
use morningai_agents::Retriever;
use morningai_core::ai::Embedder;
use morningai_core::checkpoint::Checkpointer;
use morningai_core::entities::NewAuditEntry;
use morningai_core::kv::KeyValueStore;
use morningai_core::memory::Memory;
use morningai_core::queue::JobQueue;
use morningai_core::{Error, Result, Role, Store};
use morningai_worker::{Registry, TaskService};
use std::sync::Arc;

/// The ready application: stores, queue, memory, models, agents and services of one
/// deployment, shared by every process role (`serve`, `worker`, the CLI) and every test.
pub struct Application {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub checkpointer: Arc<dyn Checkpointer>,
    pub memory: Arc<dyn Memory>,
    pub embedder: Option<Arc<dyn Embedder>>,
    pub kv: Arc<dyn KeyValueStore>,
    pub queue: Arc<dyn JobQueue>,
    pub retriever: Arc<Retriever>,
    pub models: Arc<models::Models>,
    pub documents: Arc<documents::Documents>,
    pub agent_deps: Arc<agents::AgentDeps>,
    pub integrations: Arc<integrations::Integrations>,
    pub webhooks: Arc<webhooks::Webhooks>,
    pub graphs: Arc<Graphs>,
    pub tasks: Arc<TaskService>,
    pub registry: Registry,
    pub auth: Auth,
    /// Embedded mode: jobs run in the serving process.
    pub queue_in_store: bool,
}

impl Application {
    /// Opens the configured backends and wires everything with the built-in task kinds.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Registry::builtin()).await
    }

    /// As [`Self::build`], with other task kinds beside the product's (tests add failing
    /// and slow kinds).
    pub async fn build_with(config: Config, base: Registry) -> anyhow::Result<Self> {
        let key = auth::signing_key(&config)?;
        let backends = backends::open_backends(&config).await?;
        Ok(Self::assemble(backends, config, &key, base))
    }

    /// `key`: the signing key (provider API keys are sealed under a key derived from it).
    fn assemble(b: Backends, config: Config, key: &[u8], base: Registry) -> Self {
        let retriever = Arc::new(Retriever::new(b.memory.clone(), b.embedder.clone()));
        let webhooks = Arc::new(webhooks::Webhooks::new(&config, key, b.store.clone()));
        let tasks = Arc::new(TaskService::new(
            b.store.clone(),
            b.queue.clone(),
            b.bus.clone(),
            b.queue_in_store,
        ));
        let followups = Arc::new(integrations::Followups {
            store: b.store.clone(),
            tasks: tasks.clone(),
        });
        let documents = Arc::new(documents::Documents {
            store: b.store.clone(),
            retriever: retriever.clone(),
            webhooks: webhooks.clone(),
            followups: followups.clone(),
        });
        let models = Arc::new(models::Models::new(&config, key, &b));
        let deps = Arc::new(agents::AgentDeps {
            retriever: retriever.clone(),
            documents: documents.clone(),
            models: models.clone(),
        });
        let catalog = Arc::new(agents::catalog(deps.clone(), &config));
        let runs = graphs::execute::GraphRuns {
            store: b.store.clone(),
            checkpointer: b.checkpointer.clone(),
            catalog: catalog.clone(),
            bus: b.bus.clone(),
            limits: config.run_limits(),
            webhooks: webhooks.clone(),
            followups,
        };
        let integrations = Arc::new(integrations::Integrations::new(&config, key, &b));
        let registry = task_registry(
            &config,
            retriever.clone(),
            runs,
            integrations::tasks(&deps, &b.store, &integrations, &documents),
            webhooks.clone(),
            base,
        );
        webhooks.attach(&tasks);
        Self {
            graphs: Arc::new(Graphs::new(
                b.store.clone(),
                b.checkpointer.clone(),
                catalog,
                tasks.clone(),
                config.run_limits(),
            )),
            auth: Auth::new(b.store.clone(), key),
            store: b.store,
            checkpointer: b.checkpointer,
            memory: b.memory,
            embedder: b.embedder,
            kv: b.kv,
            queue: b.queue,
            queue_in_store: b.queue_in_store,
            retriever,
            models,
            documents,
            agent_deps: deps,
            integrations,
            webhooks,
            tasks,
            registry,
            config,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.graphs.catalog
    }

    /// Appends to the tenant's audit log on behalf of the caller.
    pub async fn audit(
        &self,
        who: &Principal,
        action: &str,
        resource_type: &str,
        resource_id: impl ToString,
        details: serde_json::Value,
    ) -> Result<()> {
        audit(
            &*self.store,
            who,
            action,
            resource_type,
            resource_id,
            details,
        )
        .await
    }
}

/// Appends to the tenant's audit log on behalf of `who`.
pub(crate) async fn audit(
    store: &dyn Store,
    who: &Principal,
    action: &str,
    resource_type: &str,
    resource_id: impl ToString,
    details: serde_json::Value,
) -> Result<()> {
    let entry = NewAuditEntry {
        actor: who.actor(),
        action: action.to_owned(),
        resource_type: resource_type.to_owned(),
        resource_id: Some(resource_id.to_string()),
        ip: who.ip.clone(),
        details,
    };
    store.audit(who.cx(), entry).await
}

/// Trims a required display name and bounds its length.
pub fn clean_name(field: &str, raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.chars().count() > 200 {
        return Err(Error::invalid(field, "must be at most 200 characters"));
    }
    Ok(s.to_owned())
}

/// `base` plus the kinds that need the backends: `index`, `graph_run` (graph runs on the
/// queue), `faq` and `codegen` (the agents), `chat_reply` (answers on chat platforms),
/// `github_pr` (pull requests), `approval_notice` (approvals on Slack), `webhook_delivery` (tenant webhooks).
fn task_registry(
    config: &Config,
    retriever: Arc<Retriever>,
    runs: graphs::execute::GraphRuns,
    platform_tasks: Vec<integrations::InternalKind>,
    webhooks: Arc<webhooks::Webhooks>,
    mut base: Registry,
) -> Registry {
    base.register(
        "index",
        Arc::new(indexing::IndexTask {
            retriever,
            roots: config.index_roots.clone(),
        }),
        indexing::validate,
    );
    for (kind, validate) in [
        (
            "faq",
            agents::faq::validate as morningai_core::task_kinds::InputValidator,
        ),
        ("codegen", agents::codegen::validate),
    ] {
        let task = agents::AgentTask {
            runs: runs.clone(),
            graph: kind,
        };
        base.register(kind, Arc::new(task), validate);
    }
    base.register_internal("graph_run", Arc::new(runs), graphs::execute::validate);
    for (kind, handler, validate) in platform_tasks {
        base.register_internal(kind, handler, validate);
    }
    base.register_internal(
        webhooks::DELIVERY_KIND,
        Arc::new(webhooks::DeliveryTask(webhooks)),
        webhooks::validate_delivery,
    );
    base
}

/// Members may decide the agents' approvals; an assistant may raise the bar.
pub(crate) fn members_decide() -> graphs::catalog::ApprovalPolicy {
    graphs::catalog::ApprovalPolicy {
        min_role: Role::Member,
        allow_self: true,
        expires_after: None,
        on_expiry_fail: false,
    }
}

/// A stable id for `(scope, name)`: uniqueness guards, version slots, the approval of one
/// run's interrupt.
pub(crate) fn derived_id(scope: uuid::Uuid, name: &str) -> uuid::Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(scope.as_bytes())
        .chain_update(name.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b)
}
