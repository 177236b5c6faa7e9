//! Workflow-facing records kept as JSON documents: LangGraph-style threads and runs, and
//! approvals. One table serves them all (`kind` tells them apart), tenant-scoped like
//! everything else.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    pub kind: String,
    pub id: Uuid,
    /// The owning object (a run's or an approval's thread), if any.
    pub parent: Option<Uuid>,
    pub status: String,
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
