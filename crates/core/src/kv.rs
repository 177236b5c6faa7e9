//! The `KeyValueStore` port: LangGraph's long-term store — JSON documents under a
//! hierarchical namespace and a key, optionally with an embedding for semantic search and
//! a time to live. Tenant-scoped like everything else. The API layer filters and ranks the
//! candidates a namespace prefix selects.

use crate::{Result, TenantCtx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Labels of a namespace never contain `.`; stored as `label.label.` so that a prefix is a
/// range of the index.
pub fn encode_namespace(labels: &[String]) -> String {
    labels.iter().map(|l| format!("{l}.")).collect()
}

pub fn decode_namespace(encoded: &str) -> Vec<String> {
    encoded
        .strip_suffix('.')
        .map(|s| s.split('.').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The exclusive upper bound of the encoded namespaces starting with `prefix` (`.` + 1 is `/`).
pub fn prefix_end(encoded_prefix: &str) -> String {
    match encoded_prefix.strip_suffix('.') {
        Some(head) => format!("{head}/"),
        // The empty prefix: everything (labels are never empty, and no label byte is 0xFF
        // in UTF-8).
        None => "\u{10FFFF}".to_owned(),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct KvItem {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Minutes of life after each write (and each refreshing read); None: forever.
    pub ttl_minutes: Option<f64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The model's vector of the item's indexed text, when it was embedded.
    pub embedding: Option<Vec<f32>>,
}

#[async_trait]
pub trait KeyValueStore: Send + Sync + 'static {
    /// Inserts or replaces (keeping `created_at`).
    async fn kv_put(&self, cx: TenantCtx, item: &KvItem) -> Result<()>;
    /// The live item (not expired at `now`).
    async fn kv_get(
        &self,
        cx: TenantCtx,
        namespace: &[String],
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KvItem>>;
    /// False when there was no such item.
    async fn kv_delete(&self, cx: TenantCtx, namespace: &[String], key: &str) -> Result<bool>;
    /// Live items whose namespace starts with `prefix`, newest update first, at most `limit`.
    async fn kv_scan(
        &self,
        cx: TenantCtx,
        prefix: &[String],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<KvItem>>;
    /// The distinct namespaces holding live items, in order.
    async fn kv_namespaces(&self, cx: TenantCtx, now: DateTime<Utc>) -> Result<Vec<Vec<String>>>;
    /// Pushes the expiry of these items (those with a TTL) to `now` + their TTL.
    async fn kv_refresh(
        &self,
        cx: TenantCtx,
        items: &[(Vec<String>, String)],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_encode_so_that_prefixes_are_ranges() {
        let ns = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = encode_namespace(&ns(&["users", "u1", "memories"]));
        assert_eq!(e, "users.u1.memories.");
        assert_eq!(decode_namespace(&e), ns(&["users", "u1", "memories"]));
        let p = encode_namespace(&ns(&["users", "u1"]));
        assert!(e.as_str() >= p.as_str() && e < prefix_end(&p));
        // A sibling whose label merely starts the same is outside.
        let sibling = encode_namespace(&ns(&["users", "u10"]));
        assert!(!(sibling.as_str() >= p.as_str() && sibling < prefix_end(&p)));
        assert!(e < prefix_end(""));
        assert!(decode_namespace("").is_empty());
    }
}
