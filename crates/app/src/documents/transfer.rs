//! Moving documents in and out: a project's published documents as `docs/<kind>/<slug>.md`
//! files (a zip, or a folder through the CLI), and importing such files as published
//! documents.

use super::{Author, DocKind, DocStatus, Documents, Edit, NewDocument, valid_slug};
use morningai_core::{Error, ProjectId, Result, TenantCtx};
use serde::Serialize;
use serde_json::json;

/// What an import did, by path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// Paths that are not `[docs/]<kind>/<slug>.md` or `<slug>.md`, with the reason.
    pub skipped: Vec<String>,
}

/// `docs/<kind>/<slug>.md`, `<kind>/<slug>.md` or `<slug>.md` (a guide) → kind and slug.
fn parse_path(path: &str) -> std::result::Result<(DocKind, String), String> {
    let p = path.trim_start_matches("./");
    let p = p.strip_prefix("docs/").unwrap_or(p);
    let stem = p.strip_suffix(".md").ok_or("not a .md file")?;
    let (kind, slug) = match stem.split_once('/') {
        Some((k, s)) => (
            match k {
                "faq" => DocKind::Faq,
                "guide" => DocKind::Guide,
                "reference" => DocKind::Reference,
                other => return Err(format!("unknown kind {other:?} (faq, guide, reference)")),
            },
            s,
        ),
        None => (DocKind::Guide, stem),
    };
    valid_slug(slug).map_err(|e| e.to_string())?;
    Ok((kind, slug.to_owned()))
}

/// The first `# ` heading, else the slug.
fn title_of(text: &str, slug: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(300).collect())
        .unwrap_or_else(|| slug.to_owned())
}

impl Documents {
    /// A project's published documents as `docs/<kind>/<slug>.md` files, in path order.
    pub async fn export(&self, cx: TenantCtx, project: ProjectId) -> Result<Vec<(String, String)>> {
        self.store.project(cx, project).await?;
        let mut out = Vec::new();
        for d in self
            .list(cx, Some(project), Some(DocStatus::Published))
            .await?
        {
            if let Some(n) = d.published_version {
                out.push((Self::path(&d), self.version(cx, d.id, n).await?.text));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Imports markdown files as published documents: new slugs are created, changed ones
    /// get a new version, identical ones are left alone.
    pub async fn import(
        &self,
        cx: TenantCtx,
        project: ProjectId,
        files: Vec<(String, String)>,
        author: Author,
    ) -> Result<ImportReport> {
        self.store.project(cx, project).await?;
        let existing = self.list(cx, Some(project), None).await?;
        let mut report = ImportReport::default();
        for (path, text) in files {
            let (kind, slug) = match parse_path(&path) {
                Ok(ks) => ks,
                Err(why) => {
                    report.skipped.push(format!("{path}: {why}"));
                    continue;
                }
            };
            let title = title_of(&text, &slug);
            match existing.iter().find(|d| d.slug == slug) {
                Some(d) => {
                    if self.version(cx, d.id, d.latest_version).await?.text == text {
                        report.unchanged.push(path);
                        continue;
                    }
                    let edit = Edit {
                        title: Some(title),
                        text,
                        author: author.clone(),
                        metadata: json!({"imported_from": path}),
                    };
                    let (_, v) = self.save(cx, d.id, d.latest_version, edit).await?;
                    self.publish(cx, d.id, Some(v.n)).await?;
                    report.updated.push(path);
                }
                None => {
                    let new = NewDocument {
                        project_id: project,
                        slug: Some(slug),
                        title,
                        kind,
                        tags: vec!["imported".into()],
                        text,
                        author: author.clone(),
                        metadata: json!({"imported_from": path}),
                    };
                    let (d, v) = self.create(cx, new).await?;
                    self.publish(cx, d.id, Some(v.n)).await?;
                    report.created.push(path);
                }
            }
        }
        Ok(report)
    }
}

/// Files as a zip archive.
pub fn zip_files(files: &[(String, String)]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, text) in files {
        zip.start_file(path.as_str(), options)
            .map_err(|e| Error::internal("zip a document", e))?;
        zip.write_all(text.as_bytes())
            .map_err(|e| Error::internal("zip a document", e))?;
    }
    Ok(zip
        .finish()
        .map_err(|e| Error::internal("finish the zip", e))?
        .into_inner())
}

/// The markdown files of a zip archive (at most 2,000 entries of 512 KiB; other files and
/// unsafe paths are left out).
pub fn unzip_files(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    use std::io::Read;
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid("body", format!("not a readable zip archive: {e}"))
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(&e))?;
    if archive.len() > 2_000 {
        return Err(Error::invalid("body", "more than 2000 entries"));
    }
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| bad(&e))?;
        let Some(path) = entry.enclosed_name() else {
            continue;
        };
        let path = path.to_string_lossy().replace('\\', "/");
        if entry.is_dir() || !path.ends_with(".md") {
            continue;
        }
        if entry.size() > 512 * 1024 {
            return Err(Error::invalid(
                "body",
                format!("{path} is larger than 512 KiB"),
            ));
        }
        let mut text = String::new();
        entry
            .take(512 * 1024 + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::invalid("body", format!("{path}: not UTF-8 text: {e}")))?;
        out.push((path, text));
    }
    Ok(out)
}
