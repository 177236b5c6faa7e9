//! Records kept as JSON documents: LangGraph-style threads and runs, approvals, uploaded
//! graphs, assistants, documents and their versions. One table serves them all (`kind`
//! tells them apart), tenant-scoped like everything else. What records are looked up by
//! has a column of its own — the owner (`parent`), the `status`, the moment the record
//! falls due (`due_at`: an approval's expiry) — and equality on body fields is evaluated
//! inside the database (`ObjectQuery::fields`), so no caller scans and filters in memory.

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
    /// When the record falls due for a background pass (an approval's expiry), if ever.
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which records of a kind `list_objects` returns, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectQuery {
    pub parent: Option<Uuid>,
    pub status: Option<String>,
    /// Body fields (the keys from the body's root to the field) that must equal these
    /// values. Keys may not contain `"`.
    pub fields: Vec<(Vec<String>, Value)>,
    pub limit: u32,
    pub offset: u32,
}

impl ObjectQuery {
    /// At most `limit` records.
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    pub fn parent(mut self, parent: Uuid) -> Self {
        self.parent = Some(parent);
        self
    }

    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }
}
