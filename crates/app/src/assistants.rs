//! Assistants: a tenant's configuration of an agent graph (`faq` or `codegen`) — chat
//! model, temperature, retrieval `k` and mode, collections, whether approval is required
//! and by which role, and a system prompt addition. Served at `/api/v1/assistants` and
//! through LangGraph's `/assistants`; a task or run naming an assistant gets its
//! configuration, read from the tenant's own store.

use crate::auth::Principal;
use morningai_core::memory::SearchMode;
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::{CollectionId, Error, Result, Role, Store, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub const KIND: &str = "assistant";

/// The graphs an assistant may configure.
pub const AGENT_GRAPHS: &[&str] = &["faq", "codegen"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    /// A model name on the tenant's provider, instead of its default model.
    pub model: Option<String>,
    /// 0–2.
    pub temperature: Option<f32>,
    /// Passages retrieved, 1–50.
    pub k: Option<usize>,
    pub mode: Option<SearchMode>,
    /// Collections to search (empty: all of the tenant's).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub collections: Vec<CollectionId>,
    #[serde(default)]
    pub require_approval: bool,
    /// Who may approve (default: member); it can only raise the graph's own bar.
    pub approver_role: Option<Role>,
    /// Appended to the agent's system prompt.
    pub system_prompt: Option<String>,
}

impl AssistantConfig {
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(Error::invalid(
                "config.temperature",
                "must be between 0 and 2",
            ));
        }
        if let Some(k) = self.k
            && !(1..=50).contains(&k)
        {
            return Err(Error::invalid("config.k", "must be between 1 and 50"));
        }
        if self.collections.len() > 20 {
            return Err(Error::invalid("config.collections", "at most 20"));
        }
        if self
            .system_prompt
            .as_ref()
            .is_some_and(|p| p.chars().count() > 4_000)
        {
            return Err(Error::invalid(
                "config.system_prompt",
                "at most 4000 characters",
            ));
        }
        if self
            .model
            .as_ref()
            .is_some_and(|m| m.trim().is_empty() || m.len() > 200)
        {
            return Err(Error::invalid("config.model", "1–200 characters"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assistant {
    pub assistant_id: Uuid,
    pub graph_id: String,
    pub name: String,
    pub description: Option<String>,
    pub config: AssistantConfig,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub version: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn object(a: &Assistant) -> Result<StoredObject> {
    Ok(StoredObject {
        kind: KIND.into(),
        id: a.assistant_id,
        parent: None,
        status: "active".into(),
        body: serde_json::to_value(a).map_err(|e| Error::internal("encode an assistant", e))?,
        due_at: None,
        created_at: a.created_at,
        updated_at: a.updated_at,
    })
}

fn clean_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(Error::invalid("name", "must be 1–200 characters"));
    }
    Ok(n.to_owned())
}

/// `POST /api/v1/assistants`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssistant {
    /// `faq` or `codegen`.
    pub graph_id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub config: AssistantConfig,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `PATCH /api/v1/assistants/{id}`: each change is a new version.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAssistant {
    pub name: Option<String>,
    pub description: Option<String>,
    pub config: Option<AssistantConfig>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Creates an assistant of an agent graph (admin+), audited.
pub async fn create(store: &dyn Store, who: &Principal, req: CreateAssistant) -> Result<Assistant> {
    who.require(Role::Admin)?;
    if !AGENT_GRAPHS.contains(&req.graph_id.as_str()) {
        return Err(Error::invalid(
            "graph_id",
            format!("must be one of {}", AGENT_GRAPHS.join(", ")),
        ));
    }
    req.config.validate()?;
    let now = morningai_core::now();
    let a = Assistant {
        assistant_id: Uuid::now_v7(),
        graph_id: req.graph_id,
        name: clean_name(&req.name)?,
        description: req.description,
        config: req.config,
        metadata: match req.metadata {
            Some(m @ Value::Object(_)) => m,
            _ => Value::Object(Default::default()),
        },
        version: 1,
        created_at: now,
        updated_at: now,
    };
    store.put_object(who.cx(), &object(&a)?).await?;
    crate::audit(
        store,
        who,
        "assistant.create",
        "assistant",
        a.assistant_id,
        serde_json::json!({"graph_id": a.graph_id}),
    )
    .await?;
    Ok(a)
}

pub async fn get(store: &dyn Store, cx: TenantCtx, id: Uuid) -> Result<Assistant> {
    let o = store
        .get_object(cx, KIND, id)
        .await?
        .ok_or(Error::NotFound("assistant"))?;
    serde_json::from_value(o.body).map_err(|e| Error::internal("read an assistant", e))
}

pub async fn list(store: &dyn Store, cx: TenantCtx) -> Result<Vec<Assistant>> {
    store
        .list_objects(cx, KIND, &ObjectQuery::first(1000))
        .await?
        .into_iter()
        .map(|o| {
            serde_json::from_value(o.body).map_err(|e| Error::internal("read an assistant", e))
        })
        .collect()
}

/// Changes name, description, config or metadata (admin+); each change is a new version.
pub async fn patch(
    store: &dyn Store,
    who: &Principal,
    id: Uuid,
    req: PatchAssistant,
) -> Result<Assistant> {
    who.require(Role::Admin)?;
    let mut a = get(store, who.cx(), id).await?;
    if let Some(n) = req.name {
        a.name = clean_name(&n)?;
    }
    if req.description.is_some() {
        a.description = req.description;
    }
    if let Some(c) = req.config {
        c.validate()?;
        a.config = c;
    }
    if let Some(m) = req.metadata.filter(Value::is_object) {
        a.metadata = m;
    }
    a.version += 1;
    a.updated_at = morningai_core::now();
    store.put_object(who.cx(), &object(&a)?).await?;
    crate::audit(
        store,
        who,
        "assistant.update",
        "assistant",
        id,
        serde_json::json!({"version": a.version}),
    )
    .await?;
    Ok(a)
}

impl Assistant {
    /// The LangGraph Server shape (`config.configurable` holds the configuration).
    pub fn view(&self) -> crate::graphs::records::AssistantView {
        crate::graphs::records::AssistantView {
            assistant_id: self.assistant_id,
            graph_id: self.graph_id.clone(),
            config: serde_json::json!({"configurable": self.config}),
            context: serde_json::json!({}),
            metadata: self.metadata.clone(),
            version: self.version,
            name: self.name.clone(),
            description: self.description.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
