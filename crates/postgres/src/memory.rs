//! The `Memory` port on PostgreSQL: pgvector (HNSW with iterative scans, exact scans for
//! small tenants through the scope btree) and tsvector, under row-level security.

use crate::store::{PgStore, unique_violation};
use crate::tx::{Tx, db_err, one_shot};
use async_trait::async_trait;
use chrono::Utc;
use morningai_core::lexical::{Analysed, analyse, idf, score_sql};
use morningai_core::memory::{
    ChunkHit, Collection, Density, Item, Memory, NewItem, PendingChunk, SearchScope, check_dims,
};
use morningai_core::{CollectionId, Error, ItemId, Result, TenantCtx};
use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// Below this many vectors in scope, dense search scans exactly instead of walking HNSW.
pub(crate) const EXACT_BELOW: i64 = 20_000;

/// pgvector's text form, `[0.1,0.2,…]`.
fn vector_text(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// Most positions PostgreSQL keeps per lexeme (a term's count is capped there) and the
/// highest position it stores.
const MAX_POSITIONS: usize = 256;
const MAX_POSITION: usize = 16_383;

/// The `tsvector` of an analysed chunk, in its text form: body terms at weight D, names at
/// weight A, each with its positions (so a term's count per field survives). Terms are
/// letters and digits only, so quoting needs no escapes; the database's parser is never
/// involved, so the terms are exactly the ones SQLite indexes.
fn tsvector_text(a: &Analysed) -> String {
    let mut positions: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let body = a.body.split_whitespace().map(|t| (t, ""));
    let names = a.names.split_whitespace().map(|t| (t, "A"));
    for (i, (term, weight)) in body.chain(names).enumerate() {
        let at = positions.entry(term).or_default();
        if at.len() < MAX_POSITIONS {
            at.push(format!("{}{weight}", (i + 1).min(MAX_POSITION)));
        }
    }
    positions
        .iter()
        .map(|(t, at)| format!("'{t}':{}", at.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Analyses the chunks stored before lexical analysis moved into Rust (migration 10), a
/// batch per statement; a no-op once none is left. Runs as the platform (owner) role.
pub(crate) async fn analyse_pending(
    client: &tokio_postgres::Client,
) -> std::result::Result<(), tokio_postgres::Error> {
    loop {
        let rows = client
            .query(
                "SELECT c.id, c.text, c.heading, c.source FROM memory_chunks c
                 WHERE c.n_terms IS NULL ORDER BY c.id LIMIT 500",
                &[],
            )
            .await?;
        let (mut ids, mut vectors, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
        for r in &rows {
            let a = analyse(r.get(1), r.get(2), r.get(3));
            ids.push(r.get::<_, i64>(0));
            vectors.push(tsvector_text(&a));
            lengths.push(a.length as i32);
        }
        client
            .execute(
                "UPDATE memory_chunks c SET tsv = u.v::tsvector, n_terms = u.n
                 FROM unnest($1::int8[], $2::text[], $3::int4[]) AS u(id, v, n) WHERE c.id = u.id",
                &[&ids, &vectors, &lengths],
            )
            .await?;
        if rows.len() < 500 {
            return Ok(());
        }
    }
}

const COLLECTION_COLS: &str = "id, name, description, embed_model, dims, created_at";

fn collection(r: &Row) -> Collection {
    Collection {
        id: CollectionId(r.get(0)),
        name: r.get(1),
        description: r.get(2),
        embed_model: r.get(3),
        dims: r.get::<_, i32>(4) as u32,
        created_at: r.get(5),
    }
}

const ITEM_COLS: &str =
    "id, collection_id, source, content_hash, metadata, chunks, created_at, updated_at";

fn item(r: &Row) -> Item {
    Item {
        id: ItemId(r.get(0)),
        collection_id: CollectionId(r.get(1)),
        source: r.get(2),
        content_hash: r.get(3),
        metadata: r.get(4),
        chunks: r.get::<_, i32>(5) as u32,
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

const HIT_COLS: &str = "c.id, c.item_id, c.collection_id, c.source, c.text, c.start_line, \
                        c.end_line, c.language, c.heading, i.metadata";

fn hit(r: &Row) -> ChunkHit {
    ChunkHit {
        chunk_id: r.get(0),
        item_id: ItemId(r.get(1)),
        collection_id: CollectionId(r.get(2)),
        source: r.get(3),
        text: r.get(4),
        start_line: r.get::<_, i32>(5) as u32,
        end_line: r.get::<_, i32>(6) as u32,
        language: r.get(7),
        heading: r.get(8),
        metadata: r.get(9),
        score: r.get::<_, f64>(10) as f32,
    }
}

/// Scope conditions; parameters `$1` tenant, `$2` collection (or NULL), `$3` metadata
/// containment (`{}` when there is no filter).
const SCOPE: &str =
    "c.tenant_id = $1 AND ($2::uuid IS NULL OR c.collection_id = $2) AND i.metadata @> $3";

fn check_filter(scope: &SearchScope) -> Result<Value> {
    for (key, value) in &scope.filter {
        if matches!(value, Value::Array(_) | Value::Object(_) | Value::Null) {
            return Err(Error::invalid(
                "filter",
                format!("{key:?}: values are strings, numbers or booleans"),
            ));
        }
    }
    Ok(Value::Object(scope.filter.clone()))
}

async fn own_collection(tx: &Tx, cx: TenantCtx, id: CollectionId) -> Result<Collection> {
    tx.query_opt(
        &format!(
            "SELECT {COLLECTION_COLS} FROM memory_collections WHERE tenant_id = $1 AND id = $2"
        ),
        &[&cx.tenant_id.0, &id.0],
    )
    .await
    .map_err(db_err("get collection"))?
    .map(|r| collection(&r))
    .ok_or(Error::NotFound("collection"))
}

#[async_trait]
impl Memory for PgStore {
    async fn create_collection(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
        embed_model: &str,
        dims: u32,
    ) -> Result<Collection> {
        let c = Collection::new(name, description, embed_model, dims);
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        tx.execute(
            "INSERT INTO memory_collections (id, tenant_id, name, description, embed_model, dims, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&c.id.0, &cx.tenant_id.0, &c.name, &c.description, &c.embed_model, &(dims as i32), &c.created_at],
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::conflict("collection_exists", "a collection with this name already exists")
            } else {
                db_err("create collection")(e)
            }
        })?;
        tx.commit().await?;
        Ok(c)
    }

    async fn list_collections(&self, cx: TenantCtx) -> Result<Vec<Collection>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "list collections",
            &format!("SELECT {COLLECTION_COLS} FROM memory_collections WHERE tenant_id = $1 ORDER BY name"),
            &[&cx.tenant_id.0],
        )
        .await?;
        Ok(rows.iter().map(collection).collect())
    }

    async fn get_collection(&self, cx: TenantCtx, id: CollectionId) -> Result<Collection> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        let c = own_collection(&tx, cx, id).await?;
        tx.commit().await?;
        Ok(c)
    }

    async fn delete_collection(&self, cx: TenantCtx, id: CollectionId) -> Result<()> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "delete collection",
            "DELETE FROM memory_collections WHERE tenant_id = $1 AND id = $2 RETURNING id",
            &[&cx.tenant_id.0, &id.0],
        )
        .await?;
        if rows.is_empty() {
            return Err(Error::NotFound("collection"));
        }
        Ok(())
    }

    async fn put_item(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        new: NewItem,
    ) -> Result<Item> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        let col = own_collection(&tx, cx, collection).await?;
        new.check_dims(col.dims)?;
        let now = Utc::now();
        let n = new.chunks.len() as i32;
        let row = tx
            .query_opt(
                "INSERT INTO memory_items (id, tenant_id, collection_id, source, content_hash, metadata, chunks, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (tenant_id, collection_id, source) DO UPDATE
                   SET content_hash = excluded.content_hash, metadata = excluded.metadata,
                       chunks = excluded.chunks, updated_at = excluded.updated_at
                 RETURNING id, created_at",
                &[&Uuid::now_v7(), &cx.tenant_id.0, &collection.0, &new.source, &new.content_hash, &new.metadata, &n, &now],
            )
            .await
            .map_err(db_err("put memory item"))?
            .ok_or_else(|| Error::internal("put memory item", "no row returned"))?;
        let id: Uuid = row.get(0);
        tx.execute("DELETE FROM memory_chunks WHERE item_id = $1", &[&id])
            .await
            .map_err(db_err("replace memory chunks"))?;
        // One statement for all chunks: arrays unnested server-side.
        let texts: Vec<&str> = new.chunks.iter().map(|c| c.text.as_str()).collect();
        let starts: Vec<i32> = new.chunks.iter().map(|c| c.start_line as i32).collect();
        let ends: Vec<i32> = new.chunks.iter().map(|c| c.end_line as i32).collect();
        let langs: Vec<Option<&str>> = new.chunks.iter().map(|c| c.language.as_deref()).collect();
        let heads: Vec<Option<&str>> = new.chunks.iter().map(|c| c.heading.as_deref()).collect();
        let vectors: Vec<Option<String>> = new
            .chunks
            .iter()
            .map(|c| c.embedding.as_deref().map(vector_text))
            .collect();
        let dims = col.dims as i32;
        let keys: Vec<Option<&str>> = new.chunks.iter().map(|c| c.embed_key.as_deref()).collect();
        let analysed: Vec<Analysed> = new
            .chunks
            .iter()
            .map(|c| analyse(&c.text, c.heading.as_deref(), &new.source))
            .collect();
        let tsvs: Vec<String> = analysed.iter().map(tsvector_text).collect();
        let lengths: Vec<i32> = analysed.iter().map(|a| a.length as i32).collect();
        let params: [&(dyn ToSql + Sync); 14] = [
            &cx.tenant_id.0,
            &collection.0,
            &id,
            &new.source,
            &texts,
            &starts,
            &ends,
            &langs,
            &heads,
            &vectors,
            &dims,
            &keys,
            &tsvs,
            &lengths,
        ];
        tx.execute(
            "INSERT INTO memory_chunks (tenant_id, collection_id, item_id, source, text, start_line, end_line, language, heading, dims, embedding, embed_key, tsv, n_terms)
             SELECT $1, $2, $3, $4, t, s, e, l, h, CASE WHEN v IS NULL THEN NULL ELSE $11::int4 END, v::vector, k, w::tsvector, n
             FROM unnest($5::text[], $6::int4[], $7::int4[], $8::text[], $9::text[], $10::text[], $12::text[], $13::text[], $14::int4[]) AS u(t, s, e, l, h, v, k, w, n)",
            &params,
        )
        .await
        .map_err(db_err("insert memory chunks"))?;
        tx.commit().await?;
        Ok(Item {
            id: ItemId(id),
            collection_id: collection,
            source: new.source,
            content_hash: new.content_hash,
            metadata: new.metadata,
            chunks: n as u32,
            created_at: row.get(1),
            updated_at: now,
        })
    }

    async fn list_items(&self, cx: TenantCtx, collection: CollectionId) -> Result<Vec<Item>> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        own_collection(&tx, cx, collection).await?;
        let rows = tx
            .query(
                &format!("SELECT {ITEM_COLS} FROM memory_items WHERE tenant_id = $1 AND collection_id = $2 ORDER BY source"),
                &[&cx.tenant_id.0, &collection.0],
            )
            .await
            .map_err(db_err("list memory items"))?;
        tx.commit().await?;
        Ok(rows.iter().map(item).collect())
    }

    async fn delete_item(&self, cx: TenantCtx, collection: CollectionId, id: ItemId) -> Result<()> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "delete memory item",
            "DELETE FROM memory_items WHERE tenant_id = $1 AND collection_id = $2 AND id = $3 RETURNING id",
            &[&cx.tenant_id.0, &collection.0, &id.0],
        )
        .await?;
        if rows.is_empty() {
            return Err(Error::NotFound("item"));
        }
        Ok(())
    }

    async fn delete_sources(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        sources: &[String],
    ) -> Result<u64> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "delete memory sources",
            "DELETE FROM memory_items WHERE tenant_id = $1 AND collection_id = $2 AND source = ANY($3) RETURNING id",
            &[&cx.tenant_id.0, &collection.0, &sources],
        )
        .await?;
        Ok(rows.len() as u64)
    }

    async fn source_hashes(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
    ) -> Result<HashMap<String, String>> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        own_collection(&tx, cx, collection).await?;
        let rows = tx
            .query(
                "SELECT source, content_hash FROM memory_items WHERE tenant_id = $1 AND collection_id = $2",
                &[&cx.tenant_id.0, &collection.0],
            )
            .await
            .map_err(db_err("memory source hashes"))?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn dense_search(
        &self,
        cx: TenantCtx,
        scope: &SearchScope,
        model: &str,
        vector: &[f32],
    ) -> Result<Vec<ChunkHit>> {
        let filter = check_filter(scope)?;
        let dims = vector.len();
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        // A scope of a few thousand vectors is scanned exactly through the tenant btree
        // (about a millisecond); HNSW pays off only beyond that, where a filtered walk
        // over a big index would otherwise cost tens of milliseconds per query.
        let in_scope: i64 = tx
            .query_opt(
                "SELECT count(*) FROM memory_chunks c
                 WHERE c.tenant_id = $1 AND ($2::uuid IS NULL OR c.collection_id = $2) AND c.dims = $3",
                &[&cx.tenant_id.0, &scope.collection.map(|c| c.0), &(dims as i32)],
            )
            .await
            .map_err(db_err("dense search scope"))?
            .map_or(0, |r| r.get(0));
        let exact = in_scope < self.exact_below;
        if !exact {
            // Iterative scans: a filtered HNSW walk continues until it has k rows in scope.
            tx.batch_execute(&format!(
                "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {}",
                (scope.k * 2).clamp(40, 1000)
            ))
            .await
            .map_err(db_err("dense search settings"))?;
        }
        // The dimension is a number we hold, not input text; the cast matches the index.
        // Ordering by the similarity (not the distance) keeps the planner off the HNSW
        // index for the exact scan.
        // The query vector is parsed once, in a scalar subquery: with a cached (generic)
        // plan a bare `$4::vector` cast would be parsed again for every row.
        let query_vector = format!("(SELECT $4::text::vector({dims}))");
        let order = if exact {
            "score DESC".to_owned()
        } else {
            format!("(c.embedding::vector({dims})) <=> {query_vector}")
        };
        let sql = format!(
            "SELECT {HIT_COLS}, (1 - ((c.embedding::vector({dims})) <=> {query_vector}))::float8 AS score
             FROM memory_chunks c
             JOIN memory_items i ON i.id = c.item_id
             JOIN memory_collections col ON col.id = c.collection_id
             WHERE {SCOPE} AND c.dims = {dims} AND col.embed_model = $5
             ORDER BY {order}
             LIMIT $6"
        );
        let rows = tx
            .query(
                &sql,
                &[
                    &cx.tenant_id.0,
                    &scope.collection.map(|c| c.0),
                    &filter,
                    &vector_text(vector),
                    &model,
                    &(scope.k as i64),
                ],
            )
            .await
            .map_err(db_err("dense search"))?;
        tx.commit().await?;
        let mut hits: Vec<ChunkHit> = rows.iter().map(hit).collect();
        // relaxed_order may return neighbours slightly out of order.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }

    async fn cached_embeddings(
        &self,
        cx: TenantCtx,
        keys: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "cached embeddings",
            "SELECT DISTINCT ON (embed_key) embed_key, embedding::text FROM memory_chunks
             WHERE tenant_id = $1 AND embed_key = ANY($2) AND embedding IS NOT NULL",
            &[&cx.tenant_id.0, &keys],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.get(1);
                let v = text
                    .trim_matches(['[', ']'])
                    .split(',')
                    .map(|x| x.trim().parse::<f32>())
                    .collect::<std::result::Result<Vec<f32>, _>>()
                    .map_err(|e| Error::internal("decode a stored vector", e))?;
                Ok((r.get(0), v))
            })
            .collect()
    }

    async fn pending_embeddings(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<PendingChunk>> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        own_collection(&tx, cx, collection).await?;
        let rows = tx
            .query(
                "SELECT id, heading, text, embed_key FROM memory_chunks
                 WHERE tenant_id = $1 AND collection_id = $2 AND id > $3
                   AND embedding IS NULL AND embed_key IS NOT NULL
                 ORDER BY id LIMIT $4",
                &[&cx.tenant_id.0, &collection.0, &after, &(limit as i64)],
            )
            .await
            .map_err(db_err("pending embeddings"))?;
        tx.commit().await?;
        Ok(rows
            .iter()
            .map(|r| PendingChunk {
                chunk_id: r.get(0),
                heading: r.get(1),
                text: r.get(2),
                embed_key: r.get(3),
            })
            .collect())
    }

    async fn set_embeddings(
        &self,
        cx: TenantCtx,
        collection: CollectionId,
        vectors: &[(i64, String, Vec<f32>)],
    ) -> Result<u64> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        let col = own_collection(&tx, cx, collection).await?;
        check_dims(col.dims, vectors.iter().map(|(_, _, v)| v.as_slice()))?;
        let ids: Vec<i64> = vectors.iter().map(|(id, _, _)| *id).collect();
        let keys: Vec<&str> = vectors.iter().map(|(_, k, _)| k.as_str()).collect();
        let texts: Vec<String> = vectors.iter().map(|(_, _, v)| vector_text(v)).collect();
        let stored = tx
            .execute(
                "UPDATE memory_chunks c SET embedding = u.v::vector, dims = $5
                 FROM unnest($3::int8[], $4::text[], $6::text[]) AS u(i, k, v)
                 WHERE c.tenant_id = $1 AND c.collection_id = $2 AND c.id = u.i
                   AND c.embed_key = u.k AND c.embedding IS NULL",
                &[
                    &cx.tenant_id.0,
                    &collection.0,
                    &ids,
                    &keys,
                    &(col.dims as i32),
                    &texts,
                ],
            )
            .await
            .map_err(db_err("store embeddings"))?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn density(&self, cx: TenantCtx, collection: Option<CollectionId>) -> Result<Density> {
        // Both counts read a partial index (migration 12), never a chunk.
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "embedding density",
            "SELECT
               (SELECT count(*) FROM memory_chunks
                WHERE tenant_id = $1 AND ($2::uuid IS NULL OR collection_id = $2)
                  AND embedding IS NULL AND embed_key IS NOT NULL),
               (SELECT count(*) FROM memory_chunks
                WHERE tenant_id = $1 AND ($2::uuid IS NULL OR collection_id = $2)
                  AND embed_key IS NOT NULL)",
            &[&cx.tenant_id.0, &collection.map(|c| c.0)],
        )
        .await?;
        let (pending, total): (i64, i64) = rows.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
        Ok(Density {
            embedded: (total - pending) as u64,
            total: total as u64,
        })
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
        let filter = check_filter(scope)?;
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        // The scope's statistics: chunk count, average length, and per term how many
        // chunks hold it — this tenant's (and collection's) only, under its RLS policy.
        // Terms are letters and digits only (query_terms): each is a tsquery lexeme as is.
        let scope_args: [&(dyn ToSql + Sync); 3] =
            [&cx.tenant_id.0, &scope.collection.map(|c| c.0), &filter];
        let stats = tx
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(avg(c.n_terms), 0)::float8 FROM memory_chunks c
                     JOIN memory_items i ON i.id = c.item_id WHERE {SCOPE}"
                ),
                &scope_args,
            )
            .await
            .map_err(db_err("lexical search statistics"))?;
        let (chunks, avgdl): (i64, f64) = (stats.get(0), stats.get(1));
        let holding = tx
            .query(
                &format!(
                    "SELECT q.term, (SELECT count(*) FROM memory_chunks c
                                     JOIN memory_items i ON i.id = c.item_id
                                     WHERE {SCOPE} AND c.tsv @@ q.term::tsquery)
                     FROM unnest($4::text[]) AS q(term)"
                ),
                &[scope_args[0], scope_args[1], scope_args[2], &terms],
            )
            .await
            .map_err(db_err("lexical search statistics"))?;
        let (words, idfs): (Vec<String>, Vec<f64>) = holding
            .iter()
            .filter(|r| r.get::<_, i64>(1) > 0)
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    idf(chunks as u64, r.get::<_, i64>(1) as u64),
                )
            })
            .unzip();
        if words.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let query = words.join(" | ");
        // Each chunk holding a term: the term's count per field (weight A: names).
        let rows = tx
            .query(
                &format!(
                    "WITH q(term, idf) AS (SELECT * FROM unnest($4::text[], $5::float8[])),
                          k(avgdl) AS (SELECT $6::float8),
                          ranked AS (
                            SELECT c.id, sum({score}) AS score
                            FROM memory_chunks c
                            JOIN memory_items i ON i.id = c.item_id
                            CROSS JOIN LATERAL (
                                SELECT u.lexeme AS term,
                                       count(*) FILTER (WHERE w <> 'A') AS body_tf,
                                       count(*) FILTER (WHERE w = 'A') AS names_tf
                                FROM unnest(c.tsv) AS u, unnest(u.weights) AS w
                                WHERE u.lexeme = ANY($4)
                                GROUP BY u.lexeme) t
                            JOIN q ON q.term = t.term
                            CROSS JOIN k
                            WHERE {SCOPE} AND c.tsv @@ $7::text::tsquery
                            GROUP BY c.id ORDER BY score DESC, c.id LIMIT $8)
                     SELECT {HIT_COLS}, ranked.score FROM ranked
                     JOIN memory_chunks c ON c.id = ranked.id
                     JOIN memory_items i ON i.id = c.item_id
                     ORDER BY ranked.score DESC, c.id",
                    score = score_sql()
                ),
                &[
                    scope_args[0],
                    scope_args[1],
                    scope_args[2],
                    &words,
                    &idfs,
                    &avgdl.max(1.0),
                    &query,
                    &(scope.k as i64),
                ],
            )
            .await
            .map_err(db_err("lexical search"))?;
        tx.commit().await?;
        Ok(rows.iter().map(hit).collect())
    }
}
