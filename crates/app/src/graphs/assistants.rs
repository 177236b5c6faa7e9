//! Assistants the LangGraph way: every built-in graph is served as an assistant whose id
//! derives from its name, uploaded graphs are assistants of their own, and a tenant's
//! configured agents (`crate::assistants`) are assistants of the agent graphs.

use super::Graphs;
use super::catalog::assistant_id;
use super::records::{AssistantView, Metadata};
use crate::assistants::AssistantConfig;
use crate::auth::Principal;
use chrono::{DateTime, Utc};
use morningai_core::{Error, Result, TenantCtx};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// `POST /assistants`: a tenant assistant of an agent graph.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CreateAssistantRequest {
    /// `faq` or `codegen`.
    pub graph_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub config: AssistantConfigEnvelope,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// LangGraph's `config`: the agent configuration sits in `configurable`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct AssistantConfigEnvelope {
    #[serde(default)]
    pub configurable: Option<AssistantConfig>,
}

/// When the built-in graphs came to be (their assistants never change).
fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

fn builtin(graph_id: &str, description: &str) -> AssistantView {
    AssistantView {
        assistant_id: assistant_id(graph_id),
        graph_id: graph_id.to_owned(),
        config: json!({}),
        context: json!({}),
        metadata: json!({"created_by": "system"}),
        version: 1,
        name: graph_id.to_owned(),
        description: Some(description.to_owned()),
        created_at: epoch(),
        updated_at: epoch(),
    }
}

impl Graphs {
    /// Every assistant the tenant can run: built-in, uploaded, configured.
    pub async fn search_assistants(&self, cx: TenantCtx) -> Result<Vec<AssistantView>> {
        let mut out: Vec<AssistantView> = self
            .catalog
            .all()
            .map(|(id, e)| builtin(id, e.description))
            .collect();
        out.extend(self.uploaded(cx).await?.iter().map(|g| g.assistant()));
        out.extend(
            crate::assistants::list(&*self.store, cx)
                .await?
                .iter()
                .map(crate::assistants::Assistant::view),
        );
        Ok(out)
    }

    /// By assistant id or graph id.
    pub async fn assistant(&self, cx: TenantCtx, key: &str) -> Result<AssistantView> {
        let r = self
            .catalog
            .resolve(&*self.store, cx, key)
            .await
            .ok_or(Error::NotFound("assistant"))?;
        if let Ok(a) = crate::assistants::get(&*self.store, cx, r.assistant_id).await {
            return Ok(a.view());
        }
        if let Some(g) =
            super::get::<super::uploads::UploadedGraph>(&*self.store, cx, r.assistant_id).await?
        {
            return Ok(g.assistant());
        }
        Ok(AssistantView {
            assistant_id: r.assistant_id,
            ..builtin(&r.graph_id, &r.description)
        })
    }

    /// A tenant assistant of an agent graph (admin+).
    pub async fn create_assistant(
        &self,
        who: &Principal,
        req: CreateAssistantRequest,
    ) -> Result<AssistantView> {
        let create = crate::assistants::CreateAssistant {
            name: req.name.unwrap_or_else(|| req.graph_id.clone()),
            graph_id: req.graph_id,
            description: req.description,
            config: req.config.configurable.unwrap_or_default(),
            metadata: req.metadata.map(Value::Object),
        };
        Ok(crate::assistants::create(&*self.store, who, create)
            .await?
            .view())
    }
}
