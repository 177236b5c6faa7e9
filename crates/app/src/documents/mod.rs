//! Documents per project, with versions. Every save is a new version based on a parent
//! version; a save based on anything but the latest is refused (`version_conflict`), so a
//! person's edit and an agent's generation never overwrite each other. Version numbers are
//! claimed with an insert-only write, which makes the check atomic on both databases.
//! Publishing a version also puts it into the project's document collection in memory,
//! where published documents are searched (and where the documentation agent looks for
//! an existing answer).

use chrono::{DateTime, Utc};
use morningai_agents::retrieval::Vectors;
use morningai_core::memory::{Collection, SearchMode, SearchScope};
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::{Error, ProjectId, Result, Store, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

mod access;
mod transfer;
pub use access::{CreateDocument, PatchDocument, SaveVersion};
pub use transfer::{ArchiveLimits, ImportReport, unzip_files, unzip_within, zip_files};

const DOCUMENT: &str = "document";
const VERSION: &str = "document_version";
const SLUG: &str = "document_slug";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocKind {
    Faq,
    Guide,
    Reference,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Faq => "faq",
            Self::Guide => "guide",
            Self::Reference => "reference",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    Draft,
    Published,
    Archived,
}

impl DocStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Document {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub project_id: ProjectId,
    pub slug: String,
    pub title: String,
    pub kind: DocKind,
    pub status: DocStatus,
    pub tags: Vec<String>,
    pub latest_version: u32,
    pub published_version: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who wrote a version: a person, or an agent working on a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Author {
    User { user_id: String },
    Agent { agent: String, task_id: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Version {
    pub document_id: Uuid,
    pub n: u32,
    /// The version this one was based on (None for the first).
    pub parent: Option<u32>,
    pub title: String,
    /// Markdown.
    pub text: String,
    pub author: Author,
    /// The generation metadata block (task, trace, model, sources, tokens, cost); null for
    /// a version a person wrote without one.
    #[schema(value_type = Option<Object>)]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

/// A new document and its first version.
pub struct NewDocument {
    pub project_id: ProjectId,
    pub slug: Option<String>,
    pub title: String,
    pub kind: DocKind,
    pub tags: Vec<String>,
    pub text: String,
    pub author: Author,
    pub metadata: Value,
}

/// The content of a new version (`title` None keeps the document's).
pub struct Edit {
    pub title: Option<String>,
    pub text: String,
    pub author: Author,
    pub metadata: Value,
}

/// `What is the architecture?` → `what-is-the-architecture`.
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 80 {
            break;
        }
    }
    let s = out.trim_matches('-').to_owned();
    if s.is_empty() { "document".into() } else { s }
}

fn valid_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 100
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "slug",
            "must be 1–100 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}

fn decode<T: for<'de> Deserialize<'de>>(o: StoredObject) -> Result<T> {
    serde_json::from_value(o.body).map_err(|e| Error::internal("read a stored document", e))
}

fn encode(v: &impl Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::internal("encode a document", e))
}

/// A hit of a search over published documents.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentHit {
    pub document: Document,
    pub score: f32,
    /// The matching passage.
    pub excerpt: String,
}

pub struct Documents {
    pub store: Arc<dyn Store>,
    pub retriever: Arc<morningai_agents::Retriever>,
    /// Told about every publication (`document.published`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Proposes publications to GitHub repositories that take them.
    pub followups: Arc<crate::integrations::Followups>,
}

impl Documents {
    fn object(d: &Document) -> Result<StoredObject> {
        Ok(StoredObject {
            kind: DOCUMENT.into(),
            id: d.id,
            parent: Some(d.project_id.0),
            status: d.status.as_str().into(),
            body: encode(d)?,
            due_at: None,
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
    }

    async fn claim_version(&self, cx: TenantCtx, v: &Version) -> Result<bool> {
        self.store
            .insert_object(
                cx,
                &StoredObject {
                    kind: VERSION.into(),
                    id: crate::derived_id(v.document_id, &v.n.to_string()),
                    parent: Some(v.document_id),
                    status: "version".into(),
                    body: encode(v)?,
                    due_at: None,
                    created_at: v.created_at,
                    updated_at: v.created_at,
                },
            )
            .await
    }

    pub async fn create(&self, cx: TenantCtx, new: NewDocument) -> Result<(Document, Version)> {
        self.store.project(cx, new.project_id).await?;
        let title = new.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 300 {
            return Err(Error::invalid("title", "must be 1–300 characters"));
        }
        let slug = new.slug.unwrap_or_else(|| slugify(&title));
        valid_slug(&slug)?;
        let now = morningai_core::now();
        let doc = Document {
            id: Uuid::now_v7(),
            project_id: new.project_id,
            slug: slug.clone(),
            title: title.clone(),
            kind: new.kind,
            status: DocStatus::Draft,
            tags: clean_tags(new.tags)?,
            latest_version: 1,
            published_version: None,
            created_at: now,
            updated_at: now,
        };
        // The slug guard makes (project, slug) unique on both databases.
        let guard = StoredObject {
            kind: SLUG.into(),
            id: crate::derived_id(new.project_id.0, &slug),
            parent: Some(doc.id),
            status: "taken".into(),
            body: json!({"document_id": doc.id}),
            due_at: None,
            created_at: now,
            updated_at: now,
        };
        if !self.store.insert_object(cx, &guard).await? {
            // A guard whose document never got written (a crash in between) is stale.
            let holder = self.store.get_object(cx, SLUG, guard.id).await?;
            let owner =
                holder.and_then(|h| h.body["document_id"].as_str().and_then(|s| s.parse().ok()));
            let alive = match owner {
                Some(d) => self.store.get_object(cx, DOCUMENT, d).await?.is_some(),
                None => false,
            };
            if alive || owner.is_none() {
                return Err(Error::conflict(
                    "slug_taken",
                    format!("the project already has a document with slug {slug:?}"),
                ));
            }
            self.store.put_object(cx, &guard).await?;
        }
        let version = Version {
            document_id: doc.id,
            n: 1,
            parent: None,
            title,
            text: new.text,
            author: new.author,
            metadata: new.metadata,
            created_at: now,
        };
        self.claim_version(cx, &version).await?;
        self.store.put_object(cx, &Self::object(&doc)?).await?;
        Ok((doc, version))
    }

    /// The document, with `latest_version` taken from the stored versions: a version slot
    /// claimed after the document was last written (a racing metadata write, or a crash
    /// between the two writes) still counts, so saves never stay stuck on a stale number.
    pub async fn get(&self, cx: TenantCtx, id: Uuid) -> Result<Document> {
        let o = self
            .store
            .get_object(cx, DOCUMENT, id)
            .await?
            .ok_or(Error::NotFound("document"))?;
        let mut doc: Document = decode(o)?;
        while self
            .store
            .get_object(
                cx,
                VERSION,
                crate::derived_id(id, &(doc.latest_version + 1).to_string()),
            )
            .await?
            .is_some()
        {
            doc.latest_version += 1;
        }
        Ok(doc)
    }

    /// The project's document with this slug, found through its slug guard.
    pub async fn by_slug(
        &self,
        cx: TenantCtx,
        project: ProjectId,
        slug: &str,
    ) -> Result<Option<Document>> {
        let guard = self
            .store
            .get_object(cx, SLUG, crate::derived_id(project.0, slug))
            .await?;
        match guard.and_then(|g| g.body["document_id"].as_str().and_then(|s| s.parse().ok())) {
            Some(id) => match self.get(cx, id).await {
                Ok(d) => Ok(Some(d)),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// A project's documents (or every project's), newest first.
    pub async fn list(
        &self,
        cx: TenantCtx,
        project: Option<ProjectId>,
        status: Option<DocStatus>,
    ) -> Result<Vec<Document>> {
        let rows = self
            .store
            .list_objects(
                cx,
                DOCUMENT,
                &ObjectQuery {
                    parent: project.map(|p| p.0),
                    status: status.map(|s| s.as_str().to_owned()),
                    ..ObjectQuery::first(1000)
                },
            )
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// A version a request names in its body or query (not its path): one the document
    /// does not have makes the request wrong, not the document missing — 422 naming `field`.
    pub async fn named_version(
        &self,
        cx: TenantCtx,
        doc: &Document,
        field: &str,
        n: u32,
    ) -> Result<Version> {
        if n == 0 || n > doc.latest_version {
            return Err(Error::invalid(
                field,
                format!(
                    "the document has versions 1 to {}, not {n}",
                    doc.latest_version
                ),
            ));
        }
        self.version(cx, doc.id, n).await
    }

    /// One version (a deleted document's versions are gone with it).
    pub async fn version(&self, cx: TenantCtx, id: Uuid, n: u32) -> Result<Version> {
        let o = self
            .store
            .get_object(cx, VERSION, crate::derived_id(id, &n.to_string()))
            .await?
            .ok_or(Error::NotFound("version"))?;
        decode(o)
    }

    /// Newest first.
    pub async fn versions(&self, cx: TenantCtx, id: Uuid) -> Result<Vec<Version>> {
        self.get(cx, id).await?;
        let rows = self
            .store
            .list_objects(cx, VERSION, &ObjectQuery::first(10_000).parent(id))
            .await?;
        let mut out: Vec<Version> = rows.into_iter().map(decode).collect::<Result<_>>()?;
        out.sort_by_key(|v| std::cmp::Reverse(v.n));
        Ok(out)
    }

    /// Saves a new version based on `base`; refused unless `base` is the latest.
    pub async fn save(
        &self,
        cx: TenantCtx,
        id: Uuid,
        base: u32,
        edit: Edit,
    ) -> Result<(Document, Version)> {
        let Edit {
            title,
            text,
            author,
            metadata,
        } = edit;
        let mut doc = self.get(cx, id).await?;
        let conflict = |latest: u32| {
            Error::conflict(
                "version_conflict",
                format!(
                    "this edit is based on version {base}, but version {latest} is the latest: reload, merge, and save again"
                ),
            )
        };
        if base != doc.latest_version {
            return Err(conflict(doc.latest_version));
        }
        let title = match title.map(|t| t.trim().to_owned()) {
            Some(t) if t.is_empty() || t.chars().count() > 300 => {
                return Err(Error::invalid("title", "must be 1–300 characters"));
            }
            Some(t) => t,
            None => doc.title.clone(),
        };
        let now = morningai_core::now();
        let version = Version {
            document_id: id,
            n: base + 1,
            parent: Some(base),
            title: title.clone(),
            text,
            author,
            metadata,
            created_at: now,
        };
        if !self.claim_version(cx, &version).await? {
            // Someone saved version base + 1 first.
            return Err(conflict(base + 1));
        }
        // Re-read: a concurrent metadata patch may have landed; the version number only grows.
        doc = self.get(cx, id).await?;
        doc.latest_version = doc.latest_version.max(version.n);
        doc.title = title;
        doc.updated_at = now;
        self.store.put_object(cx, &Self::object(&doc)?).await?;
        Ok((doc, version))
    }

    /// Title, tags, or archiving (publishing has its own call).
    pub async fn patch(
        &self,
        cx: TenantCtx,
        id: Uuid,
        title: Option<String>,
        tags: Option<Vec<String>>,
        archived: Option<bool>,
    ) -> Result<Document> {
        let mut doc = self.get(cx, id).await?;
        if let Some(t) = title {
            let t = t.trim().to_owned();
            if t.is_empty() || t.chars().count() > 300 {
                return Err(Error::invalid("title", "must be 1–300 characters"));
            }
            doc.title = t;
        }
        if let Some(tags) = tags {
            doc.tags = clean_tags(tags)?;
        }
        match archived {
            Some(true) => {
                doc.status = DocStatus::Archived;
                self.unindex(cx, &doc).await?;
            }
            Some(false) if doc.status == DocStatus::Archived => {
                doc.status = if doc.published_version.is_some() {
                    DocStatus::Published
                } else {
                    DocStatus::Draft
                };
                if let Some(n) = doc.published_version {
                    let v = self.version(cx, id, n).await?;
                    self.index(cx, &doc, &v).await?;
                }
            }
            _ => {}
        }
        doc.updated_at = morningai_core::now();
        self.store.put_object(cx, &Self::object(&doc)?).await?;
        Ok(doc)
    }

    /// Publishes version `n` (default: the latest).
    pub async fn publish(&self, cx: TenantCtx, id: Uuid, n: Option<u32>) -> Result<Document> {
        let mut doc = self.get(cx, id).await?;
        let v = self
            .named_version(cx, &doc, "version", n.unwrap_or(doc.latest_version))
            .await?;
        doc.status = DocStatus::Published;
        doc.published_version = Some(v.n);
        doc.title = v.title.clone();
        doc.updated_at = morningai_core::now();
        self.index(cx, &doc, &v).await?;
        self.store.put_object(cx, &Self::object(&doc)?).await?;
        let data = serde_json::json!({"document_id": doc.id, "project_id": doc.project_id, "slug": doc.slug,
            "kind": doc.kind, "title": doc.title, "version": v.n});
        self.webhooks.emit(cx, "document.published", data).await;
        // Not best effort: a publication whose pull request was not queued fails, and
        // publishing again queues it (once per version).
        self.followups.document_published(cx, &doc, v.n).await?;
        Ok(doc)
    }

    /// Saves version `n`'s text as a new version based on the latest.
    pub async fn restore(
        &self,
        cx: TenantCtx,
        id: Uuid,
        n: u32,
        author: Author,
    ) -> Result<(Document, Version)> {
        let doc = self.get(cx, id).await?;
        let old = self.named_version(cx, &doc, "version", n).await?;
        let edit = Edit {
            title: Some(old.title),
            text: old.text,
            author,
            metadata: json!({"restored_from": n}),
        };
        self.save(cx, id, doc.latest_version, edit).await
    }

    pub async fn delete(&self, cx: TenantCtx, id: Uuid) -> Result<()> {
        let doc = self.get(cx, id).await?;
        self.unindex(cx, &doc).await?;
        for v in self.versions(cx, id).await? {
            self.store
                .delete_object(cx, VERSION, crate::derived_id(id, &v.n.to_string()))
                .await?;
        }
        self.store
            .delete_object(cx, SLUG, crate::derived_id(doc.project_id.0, &doc.slug))
            .await?;
        self.store.delete_object(cx, DOCUMENT, id).await?;
        Ok(())
    }

    /// The unified diff from version `from` to version `to`.
    pub async fn diff(&self, cx: TenantCtx, id: Uuid, from: u32, to: u32) -> Result<String> {
        let doc = self.get(cx, id).await?;
        let (a, b) = (
            self.named_version(cx, &doc, "from", from).await?,
            self.named_version(cx, &doc, "to", to).await?,
        );
        Ok(similar::TextDiff::from_lines(&a.text, &b.text)
            .unified_diff()
            .context_radius(3)
            .header(&format!("v{from}"), &format!("v{to}"))
            .to_string())
    }

    /// The path a published document has in exports and in memory.
    pub fn path(doc: &Document) -> String {
        format!("docs/{}/{}.md", doc.kind.as_str(), doc.slug)
    }

    /// The memory collection holding a project's published documents.
    async fn collection(&self, cx: TenantCtx, project: ProjectId) -> Result<Collection> {
        self.store.project(cx, project).await?;
        let name = format!("documents-{}", project.0);
        crate::indexing::collection_named(&self.retriever, cx, &name, Some("published documents"))
            .await
    }

    /// Stores the published version in the project's memory at once (searchable by its
    /// words); its vectors follow in the background, so publishing does not wait for the
    /// model.
    async fn index(&self, cx: TenantCtx, doc: &Document, v: &Version) -> Result<()> {
        let c = self.collection(cx, doc.project_id).await?;
        self.retriever
            .store_text(
                cx,
                &c,
                &Self::path(doc),
                &v.text,
                json!({"document_id": doc.id, "version": v.n, "kind": doc.kind}),
                Vectors::Later,
            )
            .await?;
        self.retriever.embed_in_background(cx, c);
        Ok(())
    }

    async fn unindex(&self, cx: TenantCtx, doc: &Document) -> Result<()> {
        let c = self.collection(cx, doc.project_id).await?;
        let path = Self::path(doc);
        let memory = self.retriever.memory();
        for item in memory.list_items(cx, c.id).await? {
            if item.source == path {
                memory.delete_item(cx, c.id, item.id).await?;
            }
        }
        Ok(())
    }

    /// Published documents of a project matching `query` (hybrid search in memory).
    pub async fn search(
        &self,
        cx: TenantCtx,
        project: ProjectId,
        query: &str,
        k: usize,
    ) -> Result<Vec<DocumentHit>> {
        let c = self.collection(cx, project).await?;
        let scope = SearchScope {
            collection: Some(c.id),
            k: k * 3,
            ..Default::default()
        };
        let found = self
            .retriever
            .search(cx, query, SearchMode::Hybrid, scope)
            .await?;
        let mut out: Vec<DocumentHit> = Vec::new();
        for hit in found.hits {
            let Some(id) = hit.metadata["document_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
            else {
                continue;
            };
            if out.iter().any(|h| h.document.id == id) {
                continue;
            }
            match self.get(cx, id).await {
                Ok(document) if document.status == DocStatus::Published => out.push(DocumentHit {
                    document,
                    score: hit.score,
                    excerpt: hit.text,
                }),
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            if out.len() == k {
                break;
            }
        }
        Ok(out)
    }
}

fn clean_tags(tags: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if t.is_empty() || t.len() > 50 {
            return Err(Error::invalid("tags", "each tag must be 1–50 characters"));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.len() > 20 {
        return Err(Error::invalid("tags", "at most 20 tags"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_titles() {
        assert_eq!(
            slugify("What is the System Architecture?"),
            "what-is-the-system-architecture"
        );
        assert_eq!(slugify("  ¿¡  "), "document");
        assert!(
            valid_slug("a-b-1").is_ok() && valid_slug("-a").is_err() && valid_slug("A").is_err()
        );
    }
}
