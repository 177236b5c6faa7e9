//! Vector memory as use cases: collections, items (chunked and embedded on upload), hybrid
//! search with citations, and answers grounded in what was found — by the tenant's chat
//! model when one is configured (metered against its budget), otherwise extractively.

use crate::Application;
use crate::auth::Principal;
use morningai_agents::answer::{Answer, Citation, Instructions, extractive, grounded};
use morningai_core::memory::{ChunkHit, Collection, Density, Item, SearchMode, SearchScope};
use morningai_core::{CollectionId, Error, ItemId, Result, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    #[schema(value_type = Option<String>)]
    pub collection: Option<CollectionId>,
    /// Results to return, 1–50 (default 8).
    pub k: Option<usize>,
    /// Items whose metadata has each of these keys with exactly this value.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Map<String, Value>>,
    #[serde(default)]
    pub mode: SearchMode,
}

impl SearchRequest {
    fn scope(&self) -> Result<SearchScope> {
        let k = self.k.unwrap_or(8);
        if !(1..=50).contains(&k) {
            return Err(Error::invalid("k", "must be between 1 and 50"));
        }
        if self.query.chars().count() > 2000 {
            return Err(Error::invalid("query", "must be at most 2000 characters"));
        }
        Ok(SearchScope {
            collection: self.collection,
            filter: self.filter.clone().unwrap_or_default(),
            k,
        })
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The mode that ran (hybrid runs as lexical when no embedding model is configured).
    pub mode: SearchMode,
    pub warning: Option<String>,
    /// How many of the searched chunks had a vector, when dense search ran: below `total`
    /// while an embedding pass fills them in.
    pub dense: Option<Density>,
    pub hits: Vec<Hit>,
}

/// A collection and how complete its vectors are.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CollectionStatus {
    #[serde(flatten)]
    pub collection: Collection,
    /// Chunks with a vector out of those that should have one (an `index` task stores
    /// chunks first and embeds them in the background).
    pub dense: Density,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Hit {
    #[serde(flatten)]
    pub chunk: ChunkHit,
    /// `source:start-end`, for citing the passage.
    pub citation: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AnswerResponse {
    pub answer: Answer,
    /// The retrieval the answer rests on.
    #[serde(flatten)]
    pub search: SearchResponse,
}

/// A text to add to a collection.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// A path or label; adding the same source again replaces the item.
    pub source: String,
    pub text: String,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

pub(crate) fn cite(hits: Vec<ChunkHit>) -> Vec<Hit> {
    hits.into_iter()
        .map(|chunk| Hit {
            citation: Citation::of(&chunk).to_string(),
            chunk,
        })
        .collect()
}

impl Application {
    /// A collection (admin+). Its vectors all come from the model configured now.
    pub async fn create_collection(
        &self,
        who: &Principal,
        name: &str,
        description: Option<&str>,
    ) -> Result<Collection> {
        who.require(Role::Admin)?;
        let name = crate::clean_name("name", name)?;
        let c = self
            .retriever
            .create_collection(who.cx(), &name, description)
            .await?;
        self.audit(
            who,
            "memory.collection.create",
            "collection",
            c.id,
            json!({"name": c.name}),
        )
        .await?;
        Ok(c)
    }

    /// A collection with the state of its vectors (viewer+).
    pub async fn collection_status(
        &self,
        who: &Principal,
        id: CollectionId,
    ) -> Result<CollectionStatus> {
        let (collection, dense) = tokio::try_join!(
            self.memory.get_collection(who.cx(), id),
            self.memory.density(who.cx(), Some(id)),
        )?;
        Ok(CollectionStatus { collection, dense })
    }

    pub async fn delete_collection(&self, who: &Principal, id: CollectionId) -> Result<()> {
        who.require(Role::Admin)?;
        self.memory.delete_collection(who.cx(), id).await?;
        self.audit(who, "memory.collection.delete", "collection", id, json!({}))
            .await
    }

    /// Chunks, embeds and stores a text (member+).
    pub async fn add_item(&self, who: &Principal, id: CollectionId, req: AddItem) -> Result<Item> {
        who.require(Role::Member)?;
        let source = req.source.trim();
        if source.is_empty() || source.chars().count() > 1000 {
            return Err(Error::invalid("source", "1 to 1000 characters"));
        }
        if req.text.trim().is_empty() {
            return Err(Error::invalid("text", "must not be empty"));
        }
        let metadata = match req.metadata {
            None => json!({}),
            Some(m @ Value::Object(_)) => m,
            Some(_) => return Err(Error::invalid("metadata", "must be an object")),
        };
        let collection = self.memory.get_collection(who.cx(), id).await?;
        self.retriever
            .add_text(who.cx(), &collection, source, &req.text, metadata)
            .await
    }

    pub async fn delete_item(&self, who: &Principal, id: CollectionId, item: ItemId) -> Result<()> {
        who.require(Role::Member)?;
        self.memory.delete_item(who.cx(), id, item).await
    }

    pub async fn search(&self, who: &Principal, req: &SearchRequest) -> Result<SearchResponse> {
        let found = self
            .retriever
            .search(who.cx(), &req.query, req.mode, req.scope()?)
            .await?;
        Ok(SearchResponse {
            mode: found.mode,
            warning: found.warning,
            dense: found.density,
            hits: cite(found.hits),
        })
    }

    /// Answers a question from memory (see the module docs).
    pub async fn answer(&self, who: &Principal, req: &SearchRequest) -> Result<AnswerResponse> {
        if req.query.trim().is_empty() {
            return Err(Error::invalid("query", "must not be empty"));
        }
        let found = self
            .retriever
            .search(who.cx(), &req.query, req.mode, req.scope()?)
            .await?;
        let answer = match self.models.chat(who.cx(), None).await? {
            Some(model) => {
                grounded(
                    model.as_ref(),
                    &req.query,
                    &found.hits,
                    Instructions::default(),
                    None,
                )
                .await?
            }
            None => extractive(&req.query, &found.hits, 4_000),
        };
        Ok(AnswerResponse {
            answer,
            search: SearchResponse {
                mode: found.mode,
                warning: found.warning,
                dense: found.density,
                hits: cite(found.hits),
            },
        })
    }
}
