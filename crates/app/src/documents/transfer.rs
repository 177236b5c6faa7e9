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
    /// get a new version, ones identical to the published version (a draft: its latest)
    /// are left alone — so importing an export changes nothing.
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
                    // What an export of this document holds: its published version (a
                    // draft's latest). An edit saved since is not what the file differs from.
                    let current = d.published_version.unwrap_or(d.latest_version);
                    if self.version(cx, d.id, current).await?.text == text {
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

/// What an uploaded archive may expand to. Checked while it inflates, never after: an
/// entry is read through a cap, so a header that lies about its size changes nothing.
#[derive(Clone, Copy, Debug)]
pub struct ArchiveLimits {
    pub max_entries: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    /// An entry may inflate to at most this many times its compressed size (plus 64 KiB,
    /// so that small files, which compress little, are never refused for it).
    pub max_ratio: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_entries: 1_000,
            max_file_bytes: 512 * 1024,
            max_total_bytes: 32 * 1024 * 1024,
            max_ratio: 100,
        }
    }
}

/// The markdown files of a zip archive within the default [`ArchiveLimits`] (other files
/// and unsafe paths are left out).
pub fn unzip_files(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    unzip_within(bytes, ArchiveLimits::default())
}

pub fn unzip_within(bytes: &[u8], limits: ArchiveLimits) -> Result<Vec<(String, String)>> {
    use std::io::Read;
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid("body", format!("not a readable zip archive: {e}"))
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(&e))?;
    if archive.len() > limits.max_entries {
        return Err(Error::invalid(
            "body",
            format!(
                "the archive has {} entries; at most {} are accepted",
                archive.len(),
                limits.max_entries
            ),
        ));
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| bad(&e))?;
        let Some(path) = entry.enclosed_name() else {
            continue;
        };
        let path = path.to_string_lossy().replace('\\', "/");
        if entry.is_dir() || !path.ends_with(".md") {
            continue;
        }
        let left = limits.max_total_bytes.saturating_sub(total);
        let by_ratio = entry
            .compressed_size()
            .saturating_mul(limits.max_ratio)
            .saturating_add(64 * 1024);
        let (cap, why) = [
            (
                limits.max_file_bytes,
                format!("{path} is larger than {} bytes", limits.max_file_bytes),
            ),
            (
                left,
                format!(
                    "the archive expands to more than {} bytes of markdown",
                    limits.max_total_bytes
                ),
            ),
            (
                by_ratio,
                format!(
                    "{path} inflates more than {}:1 (a decompression bomb?)",
                    limits.max_ratio
                ),
            ),
        ]
        .into_iter()
        .min_by_key(|(cap, _)| *cap)
        .unwrap_or_default();
        if entry.size() > cap {
            return Err(Error::invalid("body", why));
        }
        let mut raw = Vec::with_capacity(entry.size() as usize);
        entry
            .take(cap + 1)
            .read_to_end(&mut raw)
            .map_err(|e| bad(&format!("{path}: {e}")))?;
        if raw.len() as u64 > cap {
            return Err(Error::invalid("body", why));
        }
        total += raw.len() as u64;
        let text = String::from_utf8(raw)
            .map_err(|e| Error::invalid("body", format!("{path}: not UTF-8 text: {e}")))?;
        if text.contains('\0') || path.contains('\0') {
            return Err(Error::invalid(
                "body",
                format!("{path}: contains a NUL character (U+0000), which text cannot hold"),
            ));
        }
        out.push((path, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(r: Result<Vec<(String, String)>>) -> String {
        match r {
            Err(Error::Invalid { message, .. }) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn archives_are_refused_at_each_limit_while_inflating() {
        let file = |n: usize, text: String| (format!("docs/guide/f{n}.md"), text);
        // A bomb: 8 MiB of one repeated byte compresses ~1000:1.
        let bomb = zip_files(&[file(0, "a".repeat(8 << 20))]).unwrap();
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let why = problem(unzip_within(
            &bomb,
            ArchiveLimits {
                max_file_bytes: 16 << 20,
                max_total_bytes: 64 << 20,
                ..ArchiveLimits::default()
            },
        ));
        assert!(why.contains("100:1"), "{why}");
        // Files that compress normally, but too many bytes together.
        let text = |n: usize| -> String {
            (0..2_000)
                .map(|i| format!("line {i} of file {n}: {}\n", i * 7919 % 1013))
                .collect()
        };
        let many: Vec<_> = (0..8).map(|n| file(n, text(n))).collect();
        let archive = zip_files(&many).unwrap();
        let roomy = ArchiveLimits {
            max_total_bytes: 1 << 30,
            ..ArchiveLimits::default()
        };
        assert_eq!(unzip_within(&archive, roomy).unwrap(), many);
        let why = problem(unzip_within(
            &archive,
            ArchiveLimits {
                max_total_bytes: 100_000,
                ..roomy
            },
        ));
        assert!(why.contains("more than 100000 bytes"), "{why}");
        let why = problem(unzip_within(
            &archive,
            ArchiveLimits {
                max_file_bytes: 10_000,
                ..roomy
            },
        ));
        assert!(why.contains("larger than 10000 bytes"), "{why}");
        let why = problem(unzip_within(
            &archive,
            ArchiveLimits {
                max_entries: 7,
                ..roomy
            },
        ));
        assert!(why.contains("8 entries"), "{why}");
    }
}
