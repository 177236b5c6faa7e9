//! Documents as use cases for a caller: viewers read, members write, publish and restore,
//! admins delete; publishing, deleting and importing are audited.

use super::{Author, DocKind, Document, Edit, ImportReport, NewDocument, Version, unzip_files};
use crate::Application;
use crate::auth::Principal;
use morningai_core::{Error, ProjectId, Result, Role};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// Largest markdown text of a version.
const MAX_TEXT: usize = 512 * 1024;

fn text(raw: String) -> Result<String> {
    if raw.len() > MAX_TEXT {
        return Err(Error::invalid("text", "must be at most 512 KiB"));
    }
    Ok(raw)
}

/// A person (an API key writes as the user who created it).
fn author(who: &Principal) -> Author {
    Author::User {
        user_id: who.user_id.to_string(),
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDocument {
    #[schema(value_type = String)]
    pub project_id: ProjectId,
    pub title: String,
    /// Derived from the title when omitted; unique within the project.
    pub slug: Option<String>,
    pub kind: DocKind,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Markdown of the first version.
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchDocument {
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
    /// true archives (and removes it from search); false brings it back.
    pub archived: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveVersion {
    /// The version this edit started from; it must still be the latest.
    pub base_version: u32,
    pub title: Option<String>,
    pub text: String,
}

impl Application {
    pub async fn create_document(
        &self,
        who: &Principal,
        req: CreateDocument,
    ) -> Result<(Document, Version)> {
        who.require(Role::Member)?;
        let new = NewDocument {
            project_id: req.project_id,
            slug: req.slug,
            title: req.title,
            kind: req.kind,
            tags: req.tags,
            text: text(req.text)?,
            author: author(who),
            metadata: Value::Null,
        };
        self.documents.create(who.cx(), new).await
    }

    pub async fn patch_document(
        &self,
        who: &Principal,
        id: Uuid,
        req: PatchDocument,
    ) -> Result<Document> {
        who.require(Role::Member)?;
        self.documents
            .patch(who.cx(), id, req.title, req.tags, req.archived)
            .await
    }

    pub async fn delete_document(&self, who: &Principal, id: Uuid) -> Result<()> {
        who.require(Role::Admin)?;
        self.documents.delete(who.cx(), id).await?;
        self.audit(who, "document.delete", "document", id, json!({}))
            .await
    }

    /// Saves a new version based on `base_version`, which must still be the latest.
    pub async fn save_version(
        &self,
        who: &Principal,
        id: Uuid,
        req: SaveVersion,
    ) -> Result<(Document, Version)> {
        who.require(Role::Member)?;
        let edit = Edit {
            title: req.title,
            text: text(req.text)?,
            author: author(who),
            metadata: Value::Null,
        };
        self.documents
            .save(who.cx(), id, req.base_version, edit)
            .await
    }

    /// Publishes version `n` (default: the latest).
    pub async fn publish_document(
        &self,
        who: &Principal,
        id: Uuid,
        n: Option<u32>,
    ) -> Result<Document> {
        who.require(Role::Member)?;
        let doc = self.documents.publish(who.cx(), id, n).await?;
        self.audit(
            who,
            "document.publish",
            "document",
            id,
            json!({"version": doc.published_version}),
        )
        .await?;
        Ok(doc)
    }

    /// Saves version `n`'s text as a new version.
    pub async fn restore_document(
        &self,
        who: &Principal,
        id: Uuid,
        n: u32,
    ) -> Result<(Document, Version)> {
        who.require(Role::Member)?;
        self.documents.restore(who.cx(), id, n, author(who)).await
    }

    /// Imports a zip of markdown files (`[docs/]<kind>/<slug>.md`) as published documents.
    pub async fn import_documents(
        &self,
        who: &Principal,
        project: ProjectId,
        zip: &[u8],
    ) -> Result<ImportReport> {
        who.require(Role::Member)?;
        let files = unzip_files(zip)?;
        let report = self
            .documents
            .import(who.cx(), project, files, author(who))
            .await?;
        self.audit(
            who,
            "document.import",
            "project",
            project.0,
            json!({"created": report.created.len(), "updated": report.updated.len()}),
        )
        .await?;
        Ok(report)
    }
}
