//! Memory as the agents use it: text in (chunked, embedded, stored), questions out (dense,
//! lexical or both fused with reciprocal rank fusion).

use crate::chunk::{language_of, split};
use morningai_core::CollectionId;
use morningai_core::ai::Embedder;
use morningai_core::memory::{
    ChunkHit, Collection, Density, Item, Memory, NewChunk, NewItem, SearchMode, SearchScope,
    content_hash, embed_key, query_terms,
};
use morningai_core::{Error, Result, TenantCtx};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The RRF constant of Cormack et al.: ranks, not raw scores, are fused, so cosine and
/// text-rank scales never need calibrating against each other.
const RRF_K: f32 = 60.0;

/// Most chunks of one source among fused results while other sources are left: a file that
/// matches in many places must not crowd out the other files an answer needs.
const PER_SOURCE: usize = 2;

/// Fuses ranked lists: each hit scores Σ 1 / (60 + rank) over the lists it appears in;
/// then the top `k`, keeping each list's first hit (a retriever's best answer is never
/// outvoted by hits that are mediocre on both sides) and at most [`PER_SOURCE`] chunks of
/// a source while others remain.
pub fn fuse(lists: &[Vec<ChunkHit>], k: usize) -> Vec<ChunkHit> {
    let mut fused: HashMap<i64, ChunkHit> = HashMap::new();
    for list in lists {
        for (rank, hit) in list.iter().enumerate() {
            let add = 1.0 / (RRF_K + rank as f32 + 1.0);
            fused
                .entry(hit.chunk_id)
                .and_modify(|h| h.score += add)
                .or_insert_with(|| ChunkHit {
                    score: add,
                    ..hit.clone()
                });
        }
    }
    let mut out: Vec<ChunkHit> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.chunk_id.cmp(&b.chunk_id))
    });
    let position = |id: i64| out.iter().position(|h| h.chunk_id == id);
    let mut chosen: Vec<usize> = lists
        .iter()
        .filter_map(|l| l.first().and_then(|h| position(h.chunk_id)))
        .collect();
    chosen.sort_unstable();
    chosen.dedup();
    chosen.truncate(k);
    let mut per_source: HashMap<&str, usize> = HashMap::new();
    for &i in &chosen {
        *per_source.entry(out[i].source.as_str()).or_default() += 1;
    }
    let mut held = Vec::new();
    for (i, hit) in out.iter().enumerate() {
        if chosen.len() == k {
            break;
        }
        if chosen.contains(&i) {
            continue;
        }
        let n = per_source.entry(hit.source.as_str()).or_default();
        *n += 1;
        if *n <= PER_SOURCE {
            chosen.push(i);
        } else {
            held.push(i);
        }
    }
    let room = k.saturating_sub(chosen.len());
    chosen.extend(held.into_iter().take(room));
    chosen.sort_unstable();
    chosen.into_iter().map(|i| out[i].clone()).collect()
}

/// What a search found, and how.
#[derive(Debug)]
pub struct Found {
    pub hits: Vec<ChunkHit>,
    /// The mode that ran: hybrid falls back to lexical without an embedding model.
    pub mode: SearchMode,
    pub warning: Option<String>,
    /// How many of the scope's chunks had a vector, when dense search ran.
    pub density: Option<Density>,
}

/// When a text's vectors are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vectors {
    /// Before the text is stored: it is complete once stored.
    Now,
    /// Later, by [`Retriever::embed_pending`]: the text is stored (and searchable
    /// lexically) at once, with the vectors the embedding cache already holds.
    Later,
}

/// Chunks embedded per round of the background pass: what one stored batch is worth, and
/// at most what an interrupted pass loses (a few seconds of the model's work).
const PENDING_BATCH: usize = 64;

/// Texts per model call of a background pass: a query arriving meanwhile waits for one
/// such call at most (for four full-window chunks with MiniLM on two cores: ~40 ms with the
/// int8 encoder, ~0.3 s with candle's fp32 one).
const BACKGROUND_GROUP: usize = 4;

/// The text a chunk's vector is computed from: the heading path gives a section's text
/// its context.
fn embedding_text(heading: Option<&str>, text: &str) -> String {
    match heading {
        Some(h) => format!("{h}\n{text}"),
        None => text.to_owned(),
    }
}

pub struct Retriever {
    memory: Arc<dyn Memory>,
    embedder: Option<Arc<dyn Embedder>>,
    /// Collections with a background pass running, and whether it was asked for again
    /// since it started (then it sweeps once more before it ends).
    filling: Mutex<HashMap<CollectionId, bool>>,
    /// [`Retriever::embed_now`] calls running, and the signal that they are all done.
    foreground: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Without an embedding model, chunks are cut at about this many whitespace-separated
/// words (lexical-only mode).
const LEXICAL_CHUNK_WORDS: usize = 200;

impl Retriever {
    pub fn new(memory: Arc<dyn Memory>, embedder: Option<Arc<dyn Embedder>>) -> Self {
        Self {
            memory,
            embedder,
            filling: Mutex::default(),
            foreground: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        }
    }

    /// A new collection for the vectors of the configured model (`none`, 0 dimensions,
    /// without one: lexical only).
    /// The embedding model, when one is configured.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// The memory this retriever reads and writes.
    pub fn memory(&self) -> &Arc<dyn Memory> {
        &self.memory
    }

    pub async fn create_collection(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
    ) -> Result<Collection> {
        let (model, dims) = match &self.embedder {
            Some(e) => (e.model().to_owned(), e.dims() as u32),
            None => ("none".to_owned(), 0),
        };
        self.memory
            .create_collection(cx, name, description, &model, dims)
            .await
    }

    /// The embedder `collection` was built with, or an error naming both models.
    fn embedder_for(&self, collection: &Collection) -> Result<Option<&Arc<dyn Embedder>>> {
        match &self.embedder {
            Some(e) if e.model() != collection.embed_model => Err(Error::invalid(
                "collection",
                format!(
                    "collection {:?} holds {} vectors; the configured model is {}",
                    collection.name,
                    collection.embed_model,
                    e.model()
                ),
            )),
            e => Ok(e.as_ref()),
        }
    }

    /// Chunks, embeds (when a model is configured) and stores `text` as the item `source`.
    pub async fn add_text(
        &self,
        cx: TenantCtx,
        collection: &Collection,
        source: &str,
        text: &str,
        metadata: Value,
    ) -> Result<Item> {
        self.store_text(cx, collection, source, text, metadata, Vectors::Now)
            .await
    }

    /// [`Retriever::add_text`], with the vectors computed [`Vectors::Now`] or later.
    pub async fn store_text(
        &self,
        cx: TenantCtx,
        collection: &Collection,
        source: &str,
        text: &str,
        metadata: Value,
        when: Vectors,
    ) -> Result<Item> {
        let embedder = self.embedder_for(collection)?;
        let pieces = match embedder {
            Some(e) => split(source, text, e.max_tokens(), &|s| e.count_tokens(s)),
            None => split(source, text, LEXICAL_CHUNK_WORDS, &|s| {
                s.split_whitespace().count()
            }),
        };
        let (vectors, keys): (Vec<Option<Vec<f32>>>, Vec<Option<String>>) = match embedder {
            Some(e) => {
                let texts: Vec<String> = pieces
                    .iter()
                    .map(|p| embedding_text(p.heading.as_deref(), &p.text))
                    .collect();
                let keys: Vec<String> = texts.iter().map(|t| embed_key(e.model(), t)).collect();
                let vectors = match when {
                    Vectors::Now => {
                        self.embed_cached(cx, e.as_ref(), &texts, &keys, Vectors::Now)
                            .await?
                            .0
                    }
                    Vectors::Later => {
                        let cached = self.memory.cached_embeddings(cx, &keys).await?;
                        keys.iter().map(|k| cached.get(k).cloned()).collect()
                    }
                };
                (vectors, keys.into_iter().map(Some).collect())
            }
            None => (vec![None; pieces.len()], vec![None; pieces.len()]),
        };
        let language = language_of(source).map(str::to_owned);
        let chunks = pieces
            .into_iter()
            .zip(vectors.into_iter().zip(keys))
            .map(|(p, (embedding, embed_key))| NewChunk {
                text: p.text,
                start_line: p.start_line,
                end_line: p.end_line,
                language: language.clone(),
                heading: p.heading,
                embedding,
                embed_key,
            })
            .collect();
        let content_hash = content_hash(text);
        // The source's length in lines: citations of it are checked against it.
        let mut metadata = metadata;
        if let Value::Object(m) = &mut metadata {
            m.insert("lines".into(), Value::from(text.lines().count()));
        }
        self.memory
            .put_item(
                cx,
                collection.id,
                NewItem {
                    source: source.to_owned(),
                    content_hash,
                    metadata,
                    chunks,
                },
            )
            .await
    }

    /// Vectors for `texts`: those the tenant stored before under the same key, the rest
    /// embedded now (their number is the second value) — for someone waiting, or as
    /// [`Vectors::Later`] work that yields to them.
    async fn embed_cached(
        &self,
        cx: TenantCtx,
        embedder: &dyn Embedder,
        texts: &[String],
        keys: &[String],
        when: Vectors,
    ) -> Result<(Vec<Option<Vec<f32>>>, usize)> {
        let mut cached = self.memory.cached_embeddings(cx, keys).await?;
        // Each missing text once, however many chunks share it.
        let mut asked = std::collections::HashSet::new();
        let mut missing: Vec<usize> = (0..texts.len())
            .filter(|&i| !cached.contains_key(&keys[i]) && asked.insert(&keys[i]))
            .collect();
        let fresh = missing.len();
        match when {
            Vectors::Now => {
                let batch: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
                for (i, v) in missing
                    .into_iter()
                    .zip(self.embed_now(embedder, &batch).await?)
                {
                    cached.insert(keys[i].clone(), v);
                }
            }
            Vectors::Later => {
                // Small groups of similar length (little padding), each started only when
                // no one waits for the model: a query waits for one group at most.
                missing.sort_by_key(|&i| texts[i].len());
                for group in missing.chunks(BACKGROUND_GROUP) {
                    self.yield_to_foreground().await;
                    let batch: Vec<String> = group.iter().map(|&i| texts[i].clone()).collect();
                    for (&i, v) in group.iter().zip(embedder.embed(&batch).await?) {
                        cached.insert(keys[i].clone(), v);
                    }
                }
            }
        }
        let vectors = keys.iter().map(|k| cached.get(k).cloned()).collect();
        Ok((vectors, fresh))
    }

    /// Embeds `texts` for someone waiting (a query, a comparison of titles): ahead of any
    /// background pass in this process, which holds back between its groups while one of
    /// these runs.
    pub async fn embed_now(
        &self,
        embedder: &dyn Embedder,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>> {
        struct Waiting<'a>(&'a Retriever);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if self.0.foreground.fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.0.idle.notify_waiters();
                }
            }
        }
        self.foreground.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(self);
        embedder.embed(texts).await
    }

    /// Returns once no [`Retriever::embed_now`] call is running.
    async fn yield_to_foreground(&self) {
        loop {
            // Registered before the check: a wake-up between the two is not lost.
            let idle = self.idle.notified();
            if self.foreground.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Embeds the collection's chunks that were stored without a vector, a batch at a time,
    /// each batch stored before the next is embedded: an interrupted pass resumes where the
    /// stored vectors end. `progress` hears the collection's density after each batch.
    /// Returns how many chunks this pass embedded (vectors found in the cache not counted)
    /// and the collection's density at its end.
    pub async fn embed_pending(
        &self,
        cx: TenantCtx,
        collection: &Collection,
        progress: &(dyn Fn(Density) + Send + Sync),
    ) -> Result<(u64, Density)> {
        let Some(embedder) = self.embedder_for(collection)? else {
            return Ok((0, Density::default()));
        };
        let mut density = self.memory.density(cx, Some(collection.id)).await?;
        progress(density);
        let (mut embedded, mut after, mut swept) = (0, 0, 0);
        loop {
            let page = self
                .memory
                .pending_embeddings(cx, collection.id, after, PENDING_BATCH)
                .await?;
            let Some(last) = page.last() else {
                // Chunks stored behind the cursor meanwhile (an item re-put) get another
                // sweep, as long as sweeps make progress.
                if after == 0 || swept == 0 {
                    break;
                }
                (after, swept) = (0, 0);
                continue;
            };
            after = last.chunk_id;
            let texts: Vec<String> = page
                .iter()
                .map(|p| embedding_text(p.heading.as_deref(), &p.text))
                .collect();
            let keys: Vec<String> = page.iter().map(|p| p.embed_key.clone()).collect();
            let (vectors, fresh) = self
                .embed_cached(cx, embedder.as_ref(), &texts, &keys, Vectors::Later)
                .await?;
            embedded += fresh as u64;
            let writes: Vec<(i64, String, Vec<f32>)> = page
                .into_iter()
                .zip(vectors)
                .filter_map(|(p, v)| Some((p.chunk_id, p.embed_key, v?)))
                .collect();
            let stored = self
                .memory
                .set_embeddings(cx, collection.id, &writes)
                .await?;
            swept += stored;
            density.embedded += stored;
            progress(density);
        }
        let density = self.memory.density(cx, Some(collection.id)).await?;
        progress(density);
        Ok((embedded, density))
    }

    fn filling(&self) -> std::sync::MutexGuard<'_, HashMap<CollectionId, bool>> {
        self.filling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs [`Retriever::embed_pending`] for `collection` on a task of its own: what was
    /// just stored with [`Vectors::Later`] gets its vectors without the caller waiting. One
    /// pass per collection at a time; asking while one runs makes it sweep once more. A
    /// pass that fails (or dies with the process) leaves its chunks pending — searchable
    /// by their words, counted in the collection's density — for the next one.
    pub fn embed_in_background(self: &Arc<Self>, cx: TenantCtx, collection: Collection) {
        {
            let mut filling = self.filling();
            if let Some(again) = filling.get_mut(&collection.id) {
                *again = true;
                return;
            }
            filling.insert(collection.id, false);
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.embed_pending(cx, &collection, &|_| {}).await {
                    tracing::warn!(collection = %collection.id, error = %e, "background embedding pass failed; its chunks stay pending");
                }
                let mut filling = this.filling();
                match filling.get_mut(&collection.id) {
                    Some(again) if *again => *again = false,
                    _ => {
                        filling.remove(&collection.id);
                        return;
                    }
                }
            }
        });
    }

    /// Searches the tenant's memory. Each side fetches twice `k` candidates before fusion,
    /// so a chunk ranked just outside one list can still win on the other.
    pub async fn search(
        &self,
        cx: TenantCtx,
        query: &str,
        mode: SearchMode,
        scope: SearchScope,
    ) -> Result<Found> {
        if query.trim().is_empty() {
            return Err(Error::invalid("query", "must not be empty"));
        }
        let (mode, warning) = match (mode, &self.embedder) {
            (SearchMode::Dense, None) => {
                return Err(Error::invalid(
                    "mode",
                    "dense search needs an embedding model (set MORNINGAI_EMBED_MODEL_DIR)",
                ));
            }
            (SearchMode::Hybrid, None) => (
                SearchMode::Lexical,
                Some("no embedding model is configured: lexical results only".to_owned()),
            ),
            (m, _) => (m, None),
        };
        let wide = SearchScope {
            k: scope.k * 2,
            ..scope.clone()
        };
        let (mut warning, mut density) = (warning, None);
        let dense = match (&self.embedder, mode) {
            (Some(e), SearchMode::Dense | SearchMode::Hybrid) => {
                let q = self
                    .embed_now(e.as_ref(), &[query.to_owned()])
                    .await?
                    .remove(0);
                let (hits, d) = tokio::try_join!(
                    self.memory.dense_search(cx, &wide, e.model(), &q),
                    self.memory.density(cx, scope.collection),
                )?;
                if !d.complete() {
                    let rest = match mode {
                        SearchMode::Dense => "the others cannot be found by meaning yet",
                        _ => "the others are found by their words only",
                    };
                    warning = Some(format!(
                        "{} of {} chunks have vectors so far (an embedding pass is running or was interrupted): {rest}",
                        d.embedded, d.total
                    ));
                }
                density = Some(d);
                Some(hits)
            }
            _ => None,
        };
        let lexical = match mode {
            SearchMode::Lexical | SearchMode::Hybrid => Some(
                self.memory
                    .lexical_search(cx, &wide, &query_terms(query))
                    .await?,
            ),
            SearchMode::Dense => None,
        };
        let hits = match (dense, lexical) {
            (Some(d), Some(l)) => fuse(&[d, l], scope.k),
            (Some(mut one), None) | (None, Some(mut one)) => {
                one.truncate(scope.k);
                one
            }
            (None, None) => Vec::new(),
        };
        Ok(Found {
            hits,
            mode,
            warning,
            density,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use morningai_core::{CollectionId, ItemId};

    fn hit(id: i64) -> ChunkHit {
        ChunkHit {
            chunk_id: id,
            item_id: ItemId::new(),
            collection_id: CollectionId::new(),
            source: format!("s{id}"),
            text: String::new(),
            start_line: 1,
            end_line: 1,
            language: None,
            heading: None,
            metadata: Value::Null,
            score: 0.0,
        }
    }

    #[test]
    fn fusion_rewards_agreement_between_lists() {
        let dense = vec![hit(1), hit(2), hit(3)];
        let lexical = vec![hit(3), hit(4), hit(1)];
        let f = fuse(&[dense, lexical], 3);
        let ids: Vec<i64> = f.iter().map(|h| h.chunk_id).collect();
        // 1: 1/61 + 1/63, 3: 1/63 + 1/61 tie, broken by id; both beat the single-list hits.
        assert_eq!(ids, [1, 3, 2]);
        assert!((f[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-6);
        assert!(fuse(&[vec![], vec![]], 5).is_empty());
    }

    #[test]
    fn each_lists_best_hit_survives_and_one_source_cannot_crowd_the_rest() {
        // 9 is lexical's clear first but absent from dense; 1–4 are middling on both sides.
        let dense = vec![hit(1), hit(2), hit(3), hit(4)];
        let lexical = vec![hit(9), hit(4), hit(3), hit(2), hit(1)];
        let ids: Vec<i64> = fuse(&[dense, lexical], 3)
            .iter()
            .map(|h| h.chunk_id)
            .collect();
        assert_eq!(ids, [1, 2, 9], "RRF alone would give 1, 2, 3");

        // Three chunks of one file rank first; the third yields to another file.
        let mut same = vec![hit(1), hit(2), hit(3), hit(4)];
        for h in &mut same[..3] {
            h.source = "big.rs".into();
        }
        let ids: Vec<i64> = fuse(&[same.clone()], 3)
            .iter()
            .map(|h| h.chunk_id)
            .collect();
        assert_eq!(ids, [1, 2, 4]);
        // With nothing else left, the held-back chunk fills the page.
        let ids: Vec<i64> = fuse(&[same[..3].to_vec()], 3)
            .iter()
            .map(|h| h.chunk_id)
            .collect();
        assert_eq!(ids, [1, 2, 3]);
    }
}
