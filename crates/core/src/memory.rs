//! Vector memory: collections of items (files, texts) cut into chunks, each with an
//! embedding and a lexical index, searched per tenant. The port here is storage and
//! retrieval inside one backend; chunking, embedding and rank fusion are services above it.

use crate::ids::{CollectionId, ItemId};
use crate::{Result, TenantCtx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Collection {
    pub id: CollectionId,
    pub name: String,
    pub description: Option<String>,
    /// The embedding model of every vector in the collection, and its dimensions.
    pub embed_model: String,
    pub dims: u32,
    pub created_at: DateTime<Utc>,
}

impl Collection {
    /// A new collection (fresh id, created now).
    pub fn new(name: &str, description: Option<&str>, embed_model: &str, dims: u32) -> Self {
        Self {
            id: CollectionId::new(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            embed_model: embed_model.to_owned(),
            dims,
            created_at: crate::now(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub id: ItemId,
    pub collection_id: CollectionId,
    /// Where it came from: a path relative to the indexed root, or a caller's label.
    pub source: String,
    pub content_hash: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub chunks: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A chunk to store: text with where it sits in its source, and its vector.
#[derive(Clone, Debug, PartialEq)]
pub struct NewChunk {
    pub text: String,
    pub start_line: u32,
    pub end_line: u32,
    pub language: Option<String>,
    /// Markdown heading path (`Install > From source`) or the enclosing code item.
    pub heading: Option<String>,
    pub embedding: Option<Vec<f32>>,
    /// [`embed_key`] of the embedded text: later chunks with the same key reuse the vector.
    pub embed_key: Option<String>,
}

/// An item's `content_hash`: what incremental indexing compares to skip unchanged files.
pub fn content_hash(text: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

/// The embedding cache key: the model and the exact text it embedded.
pub fn embed_key(model: &str, text: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    format!("{:x}", h.finalize())
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    pub source: String,
    pub content_hash: String,
    pub metadata: Value,
    pub chunks: Vec<NewChunk>,
}

impl NewItem {
    /// Every embedding must have the collection's dimensions.
    pub fn check_dims(&self, dims: u32) -> Result<()> {
        check_dims(
            dims,
            self.chunks.iter().filter_map(|c| c.embedding.as_deref()),
        )
    }
}

/// Every vector must have the collection's `dims` dimensions.
pub fn check_dims<'v>(dims: u32, mut vectors: impl Iterator<Item = &'v [f32]>) -> Result<()> {
    match vectors.find(|v| v.len() != dims as usize) {
        Some(bad) => Err(crate::Error::invalid(
            "embedding",
            format!("{} dimensions, the collection has {dims}", bad.len()),
        )),
        None => Ok(()),
    }
}

/// A chunk stored without its vector, waiting for the background embedding pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingChunk {
    pub chunk_id: i64,
    pub heading: Option<String>,
    pub text: String,
    /// The [`embed_key`] the vector must be stored under (checked when it is).
    pub embed_key: String,
}

/// How many of the chunks meant to carry a vector (those with an [`embed_key`]) have one.
/// Lexical-only chunks count in neither figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Density {
    pub embedded: u64,
    pub total: u64,
}

impl Density {
    pub fn complete(&self) -> bool {
        self.embedded >= self.total
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Dense,
    Lexical,
}

/// What a search may return: always one tenant's chunks, optionally one collection, and
/// items whose metadata contains every key/value of `filter`. Backends apply all of it
/// inside the query, before ranking and the limit, so a small tenant still gets `k`.
#[derive(Clone, Debug, Default)]
pub struct SearchScope {
    pub collection: Option<CollectionId>,
    pub filter: Map<String, Value>,
    pub k: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChunkHit {
    pub chunk_id: i64,
    pub item_id: ItemId,
    pub collection_id: CollectionId,
    pub source: String,
    pub text: String,
    pub start_line: u32,
    pub end_line: u32,
    pub language: Option<String>,
    pub heading: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Cosine similarity (dense), the backend's text rank (lexical), or the fused score.
    pub score: f32,
}

pub use crate::lexical::query_terms;

#[async_trait]
pub trait Memory: Send + Sync + 'static {
    async fn create_collection(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
        embed_model: &str,
        dims: u32,
    ) -> Result<Collection>;
    async fn list_collections(&self, cx: TenantCtx) -> Result<Vec<Collection>>;
    async fn get_collection(&self, cx: TenantCtx, id: CollectionId) -> Result<Collection>;
    async fn delete_collection(&self, cx: TenantCtx, id: CollectionId) -> Result<()>;
    /// Stores the item, replacing the one with the same source (and all its chunks).
    async fn put_item(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        item: NewItem,
    ) -> Result<Item>;
    async fn list_items(&self, cx: TenantCtx, collection: CollectionId) -> Result<Vec<Item>>;
    async fn delete_item(&self, cx: TenantCtx, collection: CollectionId, id: ItemId) -> Result<()>;
    /// Removes the items with these sources; returns how many there were.
    async fn delete_sources(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        sources: &[String],
    ) -> Result<u64>;
    /// source → content hash of every item, for incremental indexing.
    async fn source_hashes(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
    ) -> Result<HashMap<String, String>>;
    /// The `scope.k` chunks nearest to `vector` among those embedded with `model`, best
    /// first, exact or with an index whose recall holds under the tenant filter.
    async fn dense_search(
        &self,
        cx: TenantCtx,
        scope: &SearchScope,
        model: &str,
        vector: &[f32],
    ) -> Result<Vec<ChunkHit>>;
    /// Vectors already stored by the tenant under these [`embed_key`]s (the embedding
    /// cache: a re-indexed file embeds only its changed chunks).
    async fn cached_embeddings(
        &self,
        cx: TenantCtx,
        keys: &[String],
    ) -> Result<HashMap<String, Vec<f32>>>;
    /// Up to `limit` chunks of the collection that have an embed key but no vector yet, with
    /// ids above `after`, in id order: a pass that pages with the last id it saw visits each
    /// once, and one that was interrupted starts again where the stored vectors end.
    async fn pending_embeddings(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<PendingChunk>>;
    /// Stores vectors for pending chunks, each `(chunk id, embed key, vector)`. A chunk that
    /// is gone, already embedded, or whose key changed (its item was re-put) is left as it
    /// is; returns how many were stored. Vectors must have the collection's dimensions.
    async fn set_embeddings(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        vectors: &[(i64, String, Vec<f32>)],
    ) -> Result<u64>;
    /// How complete the vectors of one collection, or of all the tenant's, are.
    async fn density(&self, cx: TenantCtx, collection: Option<CollectionId>) -> Result<Density>;
    /// The `scope.k` chunks that best match any of `terms` (see [`query_terms`]), ranked
    /// by BM25 over the scope's own statistics ([`crate::lexical`]).
    async fn lexical_search(
        &self,
        cx: TenantCtx,
        scope: &SearchScope,
        terms: &[String],
    ) -> Result<Vec<ChunkHit>>;
}
