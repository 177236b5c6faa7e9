//! The `Memory` port on SQLite: exact dense search over one tenant's vectors (the scope
//! index bounds the scan to the tenant and collection), FTS5 for the lexical side.

use crate::convert::{get, is_unique_violation, json, json_text, micros, time};
use crate::db::Res;
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::Utc;
use morningai_core::lexical::{Analysed, analyse, bm25, idf, score_sql};
use morningai_core::memory::{
    ChunkHit, Collection, Density, Item, Memory, NewItem, PendingChunk, SearchScope, check_dims,
};
use morningai_core::{CollectionId, Error, ItemId, Result, TenantCtx};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

pub(crate) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The f32s of a stored vector.
pub(crate) fn floats(blob: &[u8]) -> impl Iterator<Item = f32> + '_ {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn dot_blob(blob: &[u8], q: &[f32]) -> f32 {
    floats(blob).zip(q).map(|(x, y)| x * y).sum()
}

/// Marks the tenant's chunks as changed (see migration 0007): cached vectors reload.
fn bump(c: &Connection, tenant: &str) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO memory_generations (tenant_id, generation) VALUES (?1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET generation = generation + 1",
    )?
    .execute(params![tenant])?;
    Ok(())
}

/// Adds an analysed chunk to the lexical index.
fn index_terms(c: &Connection, chunk: i64, a: &Analysed) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO memory_chunks_fts (rowid, body, names) VALUES (?1, ?2, ?3)")?
        .execute(params![chunk, a.body, a.names])?;
    Ok(())
}

/// Analyses the chunks stored before lexical analysis moved into Rust (migration 12), a
/// batch per transaction; a no-op once none is left.
pub(crate) fn analyse_pending(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let batch: Vec<(i64, String, Option<String>, String)> = tx
            .prepare(
                "SELECT c.id, c.text, c.heading, i.source FROM memory_chunks c
                 JOIN memory_items i ON i.id = c.item_id
                 WHERE c.n_terms IS NULL ORDER BY c.id LIMIT 500",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, text, heading, source) in &batch {
            let a = analyse(text, heading.as_deref(), source);
            index_terms(&tx, *id, &a)?;
            tx.execute(
                "UPDATE memory_chunks SET n_terms = ?2 WHERE id = ?1",
                params![id, a.length],
            )?;
        }
        tx.commit()?;
        if batch.len() < 500 {
            return Ok(());
        }
    }
}

/// Most vector components kept in memory across tenants (128 MB of f32s); the least
/// recently searched tenants are dropped first.
const CACHE_FLOATS: usize = 32 << 20;

/// One tenant's vectors of one model, contiguous, for exact search without reading BLOBs
/// per query. Valid while the tenant's generation is unchanged.
pub(crate) struct TenantVectors {
    ids: Vec<i64>,
    collections: Vec<String>,
    collection_of: Vec<u32>,
    dims: usize,
    data: Vec<f32>,
}

struct Cached {
    generation: i64,
    used: u64,
    vectors: Arc<TenantVectors>,
}

/// (tenant id, model).
type CacheKey = (String, String);

#[derive(Default)]
pub(crate) struct VectorCache {
    /// A use counter (for least-recently-used eviction) and the entries.
    entries: Mutex<(u64, HashMap<CacheKey, Cached>)>,
}

impl VectorCache {
    fn get(&self, key: &CacheKey, generation: i64) -> Option<Arc<TenantVectors>> {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (tick, map) = &mut *guard;
        *tick += 1;
        let e = map.get_mut(key).filter(|e| e.generation == generation)?;
        e.used = *tick;
        Some(e.vectors.clone())
    }

    fn put(&self, key: CacheKey, generation: i64, vectors: Arc<TenantVectors>) {
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (tick, map) = &mut *guard;
        *tick += 1;
        map.insert(
            key.clone(),
            Cached {
                generation,
                used: *tick,
                vectors,
            },
        );
        while map.values().map(|e| e.vectors.data.len()).sum::<usize>() > CACHE_FLOATS {
            let Some(oldest) = map
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
    }
}

/// Loads the tenant's vectors of `model` with `dims` components.
fn load_vectors(c: &Connection, tenant: &str, model: &str, dims: usize) -> Res<TenantVectors> {
    let mut st = c.prepare_cached(
        "SELECT c.id, c.collection_id, c.embedding FROM memory_chunks c
         JOIN memory_collections col ON col.id = c.collection_id
         WHERE c.tenant_id = ?1 AND col.embed_model = ?2 AND c.embedding IS NOT NULL",
    )?;
    let mut rows = st.query(params![tenant, model])?;
    let mut v = TenantVectors {
        ids: Vec::new(),
        collections: Vec::new(),
        collection_of: Vec::new(),
        dims,
        data: Vec::new(),
    };
    while let Some(r) = rows.next()? {
        let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        if blob.len() != dims * 4 {
            continue;
        }
        let collection: String = r.get(1)?;
        let idx = match v.collections.iter().position(|c| *c == collection) {
            Some(i) => i,
            None => {
                v.collections.push(collection);
                v.collections.len() - 1
            }
        };
        v.ids.push(r.get(0)?);
        v.collection_of.push(idx as u32);
        v.data.extend(floats(blob));
    }
    Ok(v)
}

/// `AND …` conditions and their parameters for a search scope (tenant always first).
fn scope_sql(cx: TenantCtx, scope: &SearchScope) -> Result<(String, Vec<Sql>)> {
    let mut sql = String::from("c.tenant_id = ?");
    let mut args = vec![Sql::Text(cx.tenant_id.to_string())];
    if let Some(c) = scope.collection {
        sql.push_str(" AND c.collection_id = ?");
        args.push(Sql::Text(c.to_string()));
    }
    for (key, value) in &scope.filter {
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || "_-".contains(c)) {
            return Err(Error::invalid(
                "filter",
                format!("{key:?}: keys are letters, digits, _ and -"),
            ));
        }
        sql.push_str(" AND json_extract(i.metadata, ?) = ?");
        args.push(Sql::Text(format!("$.\"{key}\"")));
        args.push(match value {
            Value::String(s) => Sql::Text(s.clone()),
            Value::Bool(b) => Sql::Integer(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Sql::Integer(i),
                None => Sql::Real(n.as_f64().unwrap_or_default()),
            },
            _ => {
                return Err(Error::invalid(
                    "filter",
                    format!("{key:?}: values are strings, numbers or booleans"),
                ));
            }
        });
    }
    Ok((sql, args))
}

const HIT_COLS: &str = "c.id, c.item_id, c.collection_id, i.source, c.text, c.start_line, \
                        c.end_line, c.language, c.heading, i.metadata";

fn hit(r: &rusqlite::Row<'_>, score: f32) -> rusqlite::Result<ChunkHit> {
    Ok(ChunkHit {
        chunk_id: r.get(0)?,
        item_id: get(r, 1)?,
        collection_id: get(r, 2)?,
        source: r.get(3)?,
        text: r.get(4)?,
        start_line: r.get(5)?,
        end_line: r.get(6)?,
        language: r.get(7)?,
        heading: r.get(8)?,
        metadata: json(r, 9)?,
        score,
    })
}

const COLLECTION_COLS: &str = "id, name, description, embed_model, dims, created_at";

fn collection(r: &rusqlite::Row<'_>) -> rusqlite::Result<Collection> {
    Ok(Collection {
        id: get(r, 0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        embed_model: r.get(3)?,
        dims: r.get(4)?,
        created_at: time(r.get(5)?),
    })
}

const ITEM_COLS: &str =
    "id, collection_id, source, content_hash, metadata, chunks, created_at, updated_at";

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        id: get(r, 0)?,
        collection_id: get(r, 1)?,
        source: r.get(2)?,
        content_hash: r.get(3)?,
        metadata: json(r, 4)?,
        chunks: r.get(5)?,
        created_at: time(r.get(6)?),
        updated_at: time(r.get(7)?),
    })
}

/// The collection must be the tenant's: another tenant's id looks like a missing one.
fn own_collection(c: &Connection, cx: TenantCtx, id: CollectionId) -> Res<Collection> {
    c.prepare_cached(&format!(
        "SELECT {COLLECTION_COLS} FROM memory_collections WHERE tenant_id = ?1 AND id = ?2"
    ))?
    .query_row(
        params![cx.tenant_id.to_string(), id.to_string()],
        collection,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("collection").into())
}

#[async_trait]
impl Memory for SqliteStore {
    async fn create_collection(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
        embed_model: &str,
        dims: u32,
    ) -> Result<Collection> {
        let c = Collection::new(name, description, embed_model, dims);
        let row = c.clone();
        self.db
            .write("create collection", move |tx| {
                match tx.execute(
                    "INSERT INTO memory_collections (id, tenant_id, name, description, embed_model, dims, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![row.id.to_string(), cx.tenant_id.to_string(), row.name, row.description, row.embed_model, row.dims, micros(row.created_at)],
                ) {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(Error::conflict(
                        "collection_exists",
                        "a collection with this name already exists",
                    )
                    .into()),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        Ok(c)
    }

    async fn list_collections(&self, cx: TenantCtx) -> Result<Vec<Collection>> {
        self.db
            .read("list collections", move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLLECTION_COLS} FROM memory_collections WHERE tenant_id = ?1 ORDER BY name"
                ))?;
                let rows = st.query_map(params![cx.tenant_id.to_string()], collection)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn get_collection(&self, cx: TenantCtx, id: CollectionId) -> Result<Collection> {
        self.db
            .read("get collection", move |c| own_collection(c, cx, id))
            .await
    }

    async fn delete_collection(&self, cx: TenantCtx, id: CollectionId) -> Result<()> {
        self.db
            .write_queued("delete collection", move |tx| {
                let n = tx.execute(
                    "DELETE FROM memory_collections WHERE tenant_id = ?1 AND id = ?2",
                    params![cx.tenant_id.to_string(), id.to_string()],
                )?;
                if n == 0 {
                    return Err(Error::NotFound("collection").into());
                }
                bump(tx, &cx.tenant_id.to_string())?;
                Ok(())
            })
            .await
    }

    async fn put_item(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        new: NewItem,
    ) -> Result<Item> {
        self.db
            .write_queued("put memory item", move |tx| {
                let col = own_collection(tx, cx, collection)?;
                new.check_dims(col.dims)?;
                let (t, cid, now) = (cx.tenant_id.to_string(), collection.to_string(), Utc::now());
                let existing: Option<(ItemId, i64)> = tx
                    .prepare_cached(
                        "SELECT id, created_at FROM memory_items WHERE tenant_id = ?1 AND collection_id = ?2 AND source = ?3",
                    )?
                    .query_row(params![t, cid, new.source], |r| Ok((get(r, 0)?, r.get(1)?)))
                    .optional()?;
                let (id, created) = match existing {
                    Some((id, created)) => {
                        tx.execute("DELETE FROM memory_chunks WHERE item_id = ?1", params![id.to_string()])?;
                        tx.execute(
                            "UPDATE memory_items SET content_hash = ?2, metadata = ?3, chunks = ?4, updated_at = ?5 WHERE id = ?1",
                            params![id.to_string(), new.content_hash, json_text(&new.metadata), new.chunks.len(), micros(now)],
                        )?;
                        (id, time(created))
                    }
                    None => {
                        let id = ItemId::new();
                        tx.execute(
                            "INSERT INTO memory_items (id, tenant_id, collection_id, source, content_hash, metadata, chunks, created_at, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                            params![id.to_string(), t, cid, new.source, new.content_hash, json_text(&new.metadata), new.chunks.len(), micros(now)],
                        )?;
                        (id, now)
                    }
                };
                let mut st = tx.prepare_cached(
                    "INSERT INTO memory_chunks (tenant_id, collection_id, item_id, text, start_line, end_line, language, heading, embedding, embed_key, n_terms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
                )?;
                for c in &new.chunks {
                    let a = analyse(&c.text, c.heading.as_deref(), &new.source);
                    let row: i64 = st.query_row(
                        params![
                            t,
                            cid,
                            id.to_string(),
                            c.text,
                            c.start_line,
                            c.end_line,
                            c.language,
                            c.heading,
                            c.embedding.as_deref().map(to_blob),
                            c.embed_key,
                            a.length
                        ],
                        |r| r.get(0),
                    )?;
                    index_terms(tx, row, &a)?;
                }
                bump(tx, &t)?;
                Ok(Item {
                    id,
                    collection_id: collection,
                    source: new.source,
                    content_hash: new.content_hash,
                    metadata: new.metadata,
                    chunks: new.chunks.len() as u32,
                    created_at: created,
                    updated_at: now,
                })
            })
            .await
    }

    async fn list_items(&self, cx: TenantCtx, collection: CollectionId) -> Result<Vec<Item>> {
        self.db
            .read("list memory items", move |c| {
                own_collection(c, cx, collection)?;
                let mut st = c.prepare_cached(&format!(
                    "SELECT {ITEM_COLS} FROM memory_items WHERE tenant_id = ?1 AND collection_id = ?2 ORDER BY source"
                ))?;
                let rows = st.query_map(params![cx.tenant_id.to_string(), collection.to_string()], item)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn delete_item(&self, cx: TenantCtx, collection: CollectionId, id: ItemId) -> Result<()> {
        self.db
            .write_queued("delete memory item", move |tx| {
                let n = tx.execute(
                    "DELETE FROM memory_items WHERE tenant_id = ?1 AND collection_id = ?2 AND id = ?3",
                    params![cx.tenant_id.to_string(), collection.to_string(), id.to_string()],
                )?;
                if n == 0 {
                    return Err(Error::NotFound("item").into());
                }
                bump(tx, &cx.tenant_id.to_string())?;
                Ok(())
            })
            .await
    }

    async fn delete_sources(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        sources: &[String],
    ) -> Result<u64> {
        let sources = sources.to_vec();
        self.db
            .write_queued("delete memory sources", move |tx| {
                let mut st = tx.prepare_cached(
                    "DELETE FROM memory_items WHERE tenant_id = ?1 AND collection_id = ?2 AND source = ?3",
                )?;
                let (t, c) = (cx.tenant_id.to_string(), collection.to_string());
                let mut n = 0;
                for s in sources {
                    n += st.execute(params![t, c, s])? as u64;
                }
                if n > 0 {
                    bump(tx, &t)?;
                }
                Ok(n)
            })
            .await
    }

    async fn source_hashes(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
    ) -> Result<HashMap<String, String>> {
        self.db
            .read("memory source hashes", move |c| {
                own_collection(c, cx, collection)?;
                let mut st = c.prepare_cached(
                    "SELECT source, content_hash FROM memory_items WHERE tenant_id = ?1 AND collection_id = ?2",
                )?;
                let rows = st.query_map(
                    params![cx.tenant_id.to_string(), collection.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok(rows.collect::<rusqlite::Result<HashMap<_, _>>>()?)
            })
            .await
    }

    async fn dense_search(
        &self,
        cx: TenantCtx,
        scope: &SearchScope,
        model: &str,
        vector: &[f32],
    ) -> Result<Vec<ChunkHit>> {
        let (cond, mut args) = scope_sql(cx, scope)?;
        args.push(Sql::Text(model.to_owned()));
        let (k, q) = (scope.k, vector.to_vec());
        let (cache, model) = (self.vectors.clone(), model.to_owned());
        let (tenant, collection) = (
            cx.tenant_id.to_string(),
            scope.collection.map(|c| c.to_string()),
        );
        let filtered = !scope.filter.is_empty();
        self.db
            .read("dense search", move |c| {
                // Exact: every vector in scope is scored; the heap keeps the k best.
                let mut best: BinaryHeap<(std::cmp::Reverse<Score>, i64)> = BinaryHeap::new();
                let mut keep = |score: f32, id: i64| {
                    best.push((std::cmp::Reverse(Score(score)), id));
                    if best.len() > k {
                        best.pop();
                    }
                };
                if filtered {
                    // Metadata filters: the database selects, then every selected vector
                    // is scored.
                    let mut st = c.prepare_cached(&format!(
                        "SELECT c.id, c.embedding FROM memory_chunks c
                         JOIN memory_items i ON i.id = c.item_id
                         JOIN memory_collections col ON col.id = c.collection_id
                         WHERE {cond} AND col.embed_model = ? AND c.embedding IS NOT NULL"
                    ))?;
                    let mut rows = st.query(params_from_iter(args))?;
                    while let Some(r) = rows.next()? {
                        let blob = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                        if blob.len() == q.len() * 4 {
                            keep(dot_blob(blob, &q), r.get(0)?);
                        }
                    }
                } else {
                    // The tenant's vectors from memory, reloaded when its generation moved.
                    let generation: i64 = c
                        .prepare_cached("SELECT generation FROM memory_generations WHERE tenant_id = ?1")?
                        .query_row(params![tenant], |r| r.get(0))
                        .optional()?
                        .unwrap_or(0);
                    let key = (tenant.clone(), model.clone());
                    let vectors = match cache.get(&key, generation).filter(|v| v.dims == q.len()) {
                        Some(v) => v,
                        None => {
                            let v = Arc::new(load_vectors(c, &tenant, &model, q.len())?);
                            cache.put(key, generation, v.clone());
                            v
                        }
                    };
                    let wanted = collection
                        .as_ref()
                        .map(|id| vectors.collections.iter().position(|c| c == id));
                    for (i, row) in vectors.data.chunks_exact(vectors.dims).enumerate() {
                        match wanted {
                            Some(Some(w)) if vectors.collection_of[i] as usize != w => continue,
                            Some(None) => break, // the collection holds no vectors
                            _ => {}
                        }
                        keep(row.iter().zip(&q).map(|(x, y)| x * y).sum(), vectors.ids[i]);
                    }
                }
                let ranked: Vec<(i64, f32)> = best
                    .into_sorted_vec()
                    .into_iter()
                    .map(|(s, id)| (id, s.0.0))
                    .collect();
                let mut st = c.prepare_cached(&format!(
                    "SELECT {HIT_COLS} FROM memory_chunks c JOIN memory_items i ON i.id = c.item_id WHERE c.id = ?1"
                ))?;
                let mut out = Vec::with_capacity(ranked.len());
                for (id, score) in ranked {
                    // A chunk deleted since the vectors were loaded is skipped.
                    if let Some(h) = st.query_row(params![id], |r| hit(r, score)).optional()? {
                        out.push(h);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn cached_embeddings(
        &self,
        cx: TenantCtx,
        keys: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let keys = keys.to_vec();
        self.db
            .read("cached embeddings", move |c| {
                let mut st = c.prepare_cached(
                    "SELECT embedding FROM memory_chunks
                     WHERE tenant_id = ?1 AND embed_key = ?2 AND embedding IS NOT NULL LIMIT 1",
                )?;
                let t = cx.tenant_id.to_string();
                let mut out = HashMap::new();
                for k in keys {
                    let blob: Option<Vec<u8>> =
                        st.query_row(params![t, k], |r| r.get(0)).optional()?;
                    if let Some(b) = blob {
                        out.insert(k, floats(&b).collect());
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn pending_embeddings(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<PendingChunk>> {
        self.db
            .read("pending embeddings", move |c| {
                own_collection(c, cx, collection)?;
                let mut st = c.prepare_cached(
                    "SELECT id, heading, text, embed_key FROM memory_chunks
                     WHERE tenant_id = ?1 AND collection_id = ?2 AND id > ?3
                       AND embedding IS NULL AND embed_key IS NOT NULL
                     ORDER BY id LIMIT ?4",
                )?;
                let rows = st.query_map(
                    params![
                        cx.tenant_id.to_string(),
                        collection.to_string(),
                        after,
                        limit as i64
                    ],
                    |r| {
                        Ok(PendingChunk {
                            chunk_id: r.get(0)?,
                            heading: r.get(1)?,
                            text: r.get(2)?,
                            embed_key: r.get(3)?,
                        })
                    },
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn set_embeddings(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        vectors: &[(i64, String, Vec<f32>)],
    ) -> Result<u64> {
        let vectors = vectors.to_vec();
        self.db
            .write_queued("store embeddings", move |tx| {
                let col = own_collection(tx, cx, collection)?;
                check_dims(col.dims, vectors.iter().map(|(_, _, v)| v.as_slice()))?;
                let t = cx.tenant_id.to_string();
                let mut st = tx.prepare_cached(
                    "UPDATE memory_chunks SET embedding = ?1
                     WHERE id = ?2 AND tenant_id = ?3 AND collection_id = ?4 AND embed_key = ?5
                       AND embedding IS NULL",
                )?;
                let mut stored = 0;
                for (id, key, v) in &vectors {
                    stored +=
                        st.execute(params![to_blob(v), id, t, collection.to_string(), key])? as u64;
                }
                if stored > 0 {
                    bump(tx, &t)?;
                }
                Ok(stored)
            })
            .await
    }

    async fn density(&self, cx: TenantCtx, collection: Option<CollectionId>) -> Result<Density> {
        self.db
            .read("embedding density", move |c| {
                let t = cx.tenant_id.to_string();
                let scope = collection.map(|id| id.to_string());
                // Both counts read a partial index alone, never a chunk.
                let count = |sql: &str| -> rusqlite::Result<i64> {
                    c.prepare_cached(sql)?
                        .query_row(params![t, scope], |r| r.get(0))
                };
                let pending = count(
                    "SELECT count(*) FROM memory_chunks
                     WHERE tenant_id = ?1 AND (?2 IS NULL OR collection_id = ?2)
                       AND embedding IS NULL AND embed_key IS NOT NULL",
                )?;
                let total = count(
                    "SELECT count(*) FROM memory_chunks
                     WHERE tenant_id = ?1 AND (?2 IS NULL OR collection_id = ?2)
                       AND embed_key IS NOT NULL",
                )?;
                Ok(Density {
                    embedded: (total - pending) as u64,
                    total: total as u64,
                })
            })
            .await
    }

    async fn lexical_search(
        &self,
        cx: TenantCtx,
        scope: &SearchScope,
        terms: &[String],
    ) -> Result<Vec<ChunkHit>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // Terms are letters and digits only (query_terms), so quoting is enough.
        let terms = terms.to_vec();
        let (cond, scope_args) = scope_sql(cx, scope)?;
        let k = scope.k as i64;
        let small_scope = self.small_scope;
        self.db
            .read("lexical search", move |c| {
                // The scope's statistics: chunk count, average length, and per term how
                // many chunks hold it — this tenant's (and collection's) only.
                let (chunks, avgdl): (i64, f64) = c
                    .prepare_cached(&format!(
                        "SELECT count(*), coalesce(avg(c.n_terms), 0) FROM memory_chunks c
                         JOIN memory_items i ON i.id = c.item_id WHERE {cond}"
                    ))?
                    .query_row(params_from_iter(scope_args.iter()), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                let mut holding = c.prepare_cached(&format!(
                    "SELECT count(*) FROM memory_chunks_fts f
                     JOIN memory_chunks c ON c.id = f.rowid
                     JOIN memory_items i ON i.id = c.item_id
                     WHERE memory_chunks_fts MATCH ? AND {cond}"
                ))?;
                let mut weights = Vec::with_capacity(terms.len());
                for t in &terms {
                    let args = std::iter::once(Sql::Text(format!("\"{t}\"")))
                        .chain(scope_args.iter().cloned());
                    let df: i64 = holding.query_row(params_from_iter(args), |r| r.get(0))?;
                    if df > 0 {
                        weights.push((t.clone(), idf(chunks as u64, df as u64)));
                    }
                }
                if weights.is_empty() {
                    return Ok(Vec::new());
                }
                if chunks <= small_scope {
                    return rank_small_scope(c, &cond, &scope_args, &weights, avgdl.max(1.0), k);
                }
                // Each chunk holding a term: the term's count per field, from the index.
                let values = vec!["(?, ?)"; weights.len()].join(", ");
                let mut args: Vec<Sql> = weights
                    .iter()
                    .flat_map(|(t, w)| [Sql::Text(t.clone()), Sql::Real(*w)])
                    .collect();
                args.push(Sql::Real(avgdl.max(1.0)));
                args.extend(scope_args);
                args.push(Sql::Integer(k));
                let mut st = c.prepare_cached(&format!(
                    "WITH q(term, idf) AS (VALUES {values}),
                          k(avgdl) AS (SELECT ?),
                          t AS (SELECT v.doc AS id, v.term,
                                       sum(v.col = 'body') AS body_tf,
                                       sum(v.col = 'names') AS names_tf
                                FROM q JOIN memory_chunks_terms v ON v.term = q.term
                                GROUP BY v.doc, v.term),
                          ranked AS (
                            SELECT c.id, sum({score}) AS score
                            FROM t JOIN q ON q.term = t.term
                            JOIN memory_chunks c ON c.id = t.id
                            JOIN memory_items i ON i.id = c.item_id, k
                            WHERE {cond}
                            GROUP BY c.id ORDER BY score DESC, c.id LIMIT ?)
                     SELECT {HIT_COLS}, ranked.score FROM ranked
                     JOIN memory_chunks c ON c.id = ranked.id
                     JOIN memory_items i ON i.id = c.item_id
                     ORDER BY ranked.score DESC, c.id",
                    score = score_sql()
                ))?;
                let rows = st.query_map(params_from_iter(args), |r| {
                    let score: f64 = r.get(10)?;
                    hit(r, score as f32)
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}

/// Scopes of at most this many chunks are ranked by counting the query's terms in the
/// chunks that hold one (re-analysed here): `fts5vocab` lists every occurrence of a term
/// in the whole table, so through it a term common in a big collection costs seconds even
/// in a small one (1.6 s for "redis" in a project's 220 document chunks beside a
/// 3,655-chunk tree of the redis crate; 1,000 chunks re-analyse in tens of ms).
pub(crate) const SMALL_SCOPE: i64 = 1_000;

/// BM25 over a small scope (see [`SMALL_SCOPE`]): the same statistics and formula as the
/// SQL ranking, term counts taken from the chunks' own analysis.
fn rank_small_scope(
    c: &Connection,
    cond: &str,
    scope_args: &[Sql],
    weights: &[(String, f64)],
    avgdl: f64,
    k: i64,
) -> Res<Vec<ChunkHit>> {
    let any = weights
        .iter()
        .map(|(t, _)| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut st = c.prepare_cached(&format!(
        "SELECT c.id, c.text, c.heading, i.source FROM memory_chunks_fts f
         JOIN memory_chunks c ON c.id = f.rowid
         JOIN memory_items i ON i.id = c.item_id
         WHERE memory_chunks_fts MATCH ? AND {cond}"
    ))?;
    let args = std::iter::once(Sql::Text(any)).chain(scope_args.iter().cloned());
    let mut rows = st.query(params_from_iter(args))?;
    let mut scored: Vec<(f64, i64)> = Vec::new();
    while let Some(r) = rows.next()? {
        let (text, heading, source): (String, Option<String>, String) =
            (r.get(1)?, r.get(2)?, r.get(3)?);
        let a = analyse(&text, heading.as_deref(), &source);
        let count = |field: &str, t: &str| field.split(' ').filter(|w| *w == t).count() as f64;
        let score: f64 = weights
            .iter()
            .map(|(t, idf)| match (count(&a.body, t), count(&a.names, t)) {
                (0.0, 0.0) => 0.0,
                (body, names) => bm25(*idf, body, names, f64::from(a.length), avgdl),
            })
            .sum();
        scored.push((score, r.get(0)?));
    }
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    scored.truncate(k as usize);
    let mut st = c.prepare_cached(&format!(
        "SELECT {HIT_COLS} FROM memory_chunks c JOIN memory_items i ON i.id = c.item_id WHERE c.id = ?1"
    ))?;
    let mut out = Vec::with_capacity(scored.len());
    for (score, id) in scored {
        out.push(st.query_row(params![id], |r| hit(r, score as f32))?);
    }
    Ok(out)
}

/// A similarity with a total order (NaN sorts lowest), for the top-k heap.
#[derive(Clone, Copy, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
