//! Graphs tenants upload as declarative definitions (JSON, or YAML), validated on upload —
//! every problem reported with the path of the offending field — then served as assistants
//! like the built-in graphs.

use super::catalog::ApprovalPolicy;
use super::records::AssistantView;
use super::{Graphs, Record, delete, insert, list};
use crate::auth::Principal;
use chrono::{DateTime, Utc};
use morningai_core::{Error, FieldProblem, Result, Role, TenantCtx, UserId};
use morningai_graph::{Definition, DefinitionError, NodeTypes};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

/// Who may answer an uploaded graph's interrupts (defaults: admin+, no self-approval).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    pub min_role: Option<Role>,
    #[serde(default)]
    pub allow_self: bool,
    /// Pending approvals older than this expire …
    pub expires_after_secs: Option<u64>,
    /// … and then resume the run as rejected (`reject`, the default) or fail it (`fail`).
    pub on_expiry: Option<OnExpiry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnExpiry {
    Reject,
    Fail,
}

impl ApprovalRules {
    pub fn policy(&self) -> ApprovalPolicy {
        ApprovalPolicy {
            min_role: self.min_role.unwrap_or(Role::Admin),
            allow_self: self.allow_self,
            expires_after: self.expires_after_secs.map(Duration::from_secs),
            on_expiry_fail: self.on_expiry == Some(OnExpiry::Fail),
        }
    }
}

/// `POST /api/v1/graphs`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadGraph {
    /// Letters, digits, `-` and `_`; the graph id becomes `custom:<name>`.
    pub name: String,
    pub description: Option<String>,
    /// The definition as JSON …
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
    /// … or as YAML text (exactly one of the two).
    pub definition_yaml: Option<String>,
    #[serde(default)]
    pub approvals: ApprovalRules,
}

/// An uploaded graph, served as an assistant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadedGraph {
    pub assistant_id: Uuid,
    /// `custom:<name>`.
    pub graph_id: String,
    pub name: String,
    pub description: String,
    /// The definition as JSON (a YAML upload is stored converted).
    #[schema(value_type = Object)]
    pub definition: Value,
    pub approvals: ApprovalRules,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = String)]
    pub created_by: UserId,
}

impl Record for UploadedGraph {
    const KIND: &'static str = "graph";
    fn id(&self) -> Uuid {
        self.assistant_id
    }
    fn parent(&self) -> Option<Uuid> {
        None
    }
    fn status(&self) -> &'static str {
        "active"
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn touch(&mut self) {
        self.updated_at = morningai_core::now();
    }
}

impl UploadedGraph {
    /// The LangGraph assistant shape.
    pub fn assistant(&self) -> AssistantView {
        AssistantView {
            assistant_id: self.assistant_id,
            graph_id: self.graph_id.clone(),
            config: json!({}),
            context: json!({}),
            metadata: json!({"created_by": self.created_by}),
            version: self.version,
            name: self.name.clone(),
            description: Some(self.description.clone()),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn invalid(errors: Vec<DefinitionError>) -> Error {
    Error::InvalidFields(
        errors
            .into_iter()
            .map(|e| FieldProblem {
                field: if e.path.is_empty() {
                    "definition".into()
                } else {
                    format!("definition.{}", e.path)
                },
                message: e.message,
            })
            .collect(),
    )
}

impl Graphs {
    /// Validates and stores a tenant's graph (admin+).
    pub async fn upload(&self, who: &Principal, req: UploadGraph) -> Result<UploadedGraph> {
        who.require(Role::Admin)?;
        let name = crate::clean_name("name", &req.name)?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid("name", "letters, digits, - and _ only"));
        }
        let (def, json) = match (req.definition, req.definition_yaml) {
            (Some(v @ Value::Object(_)), None) => (Definition::from_json(&v).map_err(invalid)?, v),
            (None, Some(yaml)) => {
                let def = Definition::from_yaml(&yaml).map_err(invalid)?;
                let json = serde_yaml_ng::from_str::<Value>(&yaml)
                    .map_err(|e| Error::invalid("definition_yaml", e))?;
                (def, json)
            }
            _ => {
                return Err(Error::invalid(
                    "definition",
                    "give exactly one of definition (JSON object) or definition_yaml (string)",
                ));
            }
        };
        def.compile(&NodeTypes::default()).map_err(invalid)?;
        let graph_id = format!("custom:{name}");
        let now = morningai_core::now();
        let g = UploadedGraph {
            // Derived from the graph id: a lookup by name is a lookup by id, and the insert
            // below refuses a second graph of that name atomically.
            assistant_id: super::catalog::assistant_id(&graph_id),
            graph_id,
            name: name.clone(),
            description: req.description.unwrap_or_default(),
            definition: json,
            approvals: req.approvals,
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: who.user_id,
        };
        if !insert(&*self.store, who.cx(), &g).await? {
            return Err(Error::conflict(
                "graph_exists",
                format!("a graph named {name:?} exists"),
            ));
        }
        crate::audit(
            &*self.store,
            who,
            "graph.create",
            "graph",
            g.assistant_id,
            json!({"name": name}),
        )
        .await?;
        Ok(g)
    }

    pub async fn uploaded(&self, cx: TenantCtx) -> Result<Vec<UploadedGraph>> {
        list::<UploadedGraph>(&*self.store, cx, None, None, 1000).await
    }

    pub async fn delete_upload(&self, who: &Principal, id: Uuid) -> Result<()> {
        who.require(Role::Admin)?;
        if !delete::<UploadedGraph>(&*self.store, who.cx(), id).await? {
            return Err(Error::NotFound("graph"));
        }
        crate::audit(&*self.store, who, "graph.delete", "graph", id, json!({})).await
    }
}
