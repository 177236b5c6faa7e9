//! LangGraph's long-term store on the `KeyValueStore` port. Items are embedded on write
//! when an embedding model is configured (the fields named by `index`, else every string in
//! the value), and a search with `query` ranks by cosine similarity — or, without a model,
//! by how many of the query's words an item contains.

use crate::Application;
use crate::auth::Principal;
use chrono::{DateTime, Duration, Utc};
use morningai_core::kv::KvItem;
use morningai_core::memory::query_terms;
use morningai_core::{Error, Result, Role, TenantCtx};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use utoipa::ToSchema;

/// Items a search considers, newest first, before filtering and ranking.
const SCAN_LIMIT: u32 = 10_000;

/// `index`: false (not embedded), a list of field paths (`a.b`), or absent (every string).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Index {
    Off(bool),
    Fields(Vec<String>),
}

/// `PUT /store/items`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PutItem {
    pub namespace: Vec<String>,
    pub key: String,
    #[schema(value_type = Object)]
    pub value: Map<String, Value>,
    pub index: Option<Index>,
    /// Minutes the item lives after each write or refreshing read.
    pub ttl: Option<f64>,
}

/// `GET /store/items` (query string).
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetItem {
    /// Labels joined by `.`.
    pub namespace: String,
    pub key: String,
    pub refresh_ttl: Option<bool>,
}

/// `DELETE /store/items`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct DeleteItem {
    pub namespace: Vec<String>,
    pub key: String,
}

/// `POST /store/items/search`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct SearchItems {
    #[serde(default)]
    pub namespace_prefix: Vec<String>,
    /// A value (equality) or `{"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte": v}` per field path.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Map<String, Value>>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub query: Option<String>,
    pub refresh_ttl: Option<bool>,
}

/// `POST /store/namespaces`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct ListNamespaces {
    pub prefix: Option<Vec<String>>,
    pub suffix: Option<Vec<String>>,
    pub max_depth: Option<usize>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// An item as the LangGraph API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StoreItem {
    pub namespace: Vec<String>,
    pub key: String,
    #[schema(value_type = Object)]
    pub value: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// With a search `query`: how well the item matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchItemsResponse {
    pub items: Vec<StoreItem>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NamespacesResponse {
    pub namespaces: Vec<Vec<String>>,
}

fn view(i: &KvItem, score: Option<f64>) -> StoreItem {
    StoreItem {
        namespace: i.namespace.clone(),
        key: i.key.clone(),
        value: i.value.clone(),
        created_at: i.created_at,
        updated_at: i.updated_at,
        score,
    }
}

fn namespace(field: &str, labels: &[String], allow_empty: bool) -> Result<()> {
    if labels.is_empty() && !allow_empty {
        return Err(Error::invalid(field, "must have at least one label"));
    }
    if labels.len() > 20 {
        return Err(Error::invalid(field, "must have at most 20 labels"));
    }
    for l in labels {
        if l.is_empty() || l.contains('.') || l.len() > 256 {
            return Err(Error::invalid(
                field,
                format!("label {l:?} must be 1–256 characters without '.'"),
            ));
        }
    }
    Ok(())
}

fn item_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(Error::invalid("key", "must be 1–1024 characters"));
    }
    Ok(())
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The text an item is embedded from.
fn indexed_text(value: &Value, index: Option<&Index>) -> Option<String> {
    let mut parts = Vec::new();
    match index {
        Some(Index::Off(false)) => return None,
        Some(Index::Fields(paths)) => {
            for p in paths {
                let pointer = format!("/{}", p.replace('.', "/"));
                if let Some(v) = value.pointer(&pointer) {
                    strings(v, &mut parts);
                }
            }
        }
        _ => strings(value, &mut parts),
    }
    let text = parts.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Whether `got` meets one `$op: want` condition.
fn condition(op: &str, got: Option<&Value>, want: &Value) -> Result<bool> {
    let ord = got.and_then(|g| compare(g, want));
    Ok(match op {
        "$eq" => got == Some(want),
        "$ne" => got != Some(want),
        "$gt" => ord == Some(Ordering::Greater),
        "$gte" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        "$lt" => ord == Some(Ordering::Less),
        "$lte" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        other => {
            return Err(Error::invalid(
                "filter",
                format!("unknown operator {other} (use $eq, $ne, $gt, $gte, $lt, $lte)"),
            ));
        }
    })
}

/// A filter condition per field path: a value (equality) or a map of operators.
fn matches(value: &Value, filter: &Map<String, Value>) -> Result<bool> {
    for (path, cond) in filter {
        let got = value.pointer(&format!("/{}", path.replace('.', "/")));
        let ok = match cond {
            Value::Object(ops) if ops.keys().all(|k| k.starts_with('$')) && !ops.is_empty() => {
                let mut all = true;
                for (op, want) in ops {
                    all &= condition(op, got, want)?;
                }
                all
            }
            want => got == Some(want),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `pattern` matches the labels at the start (or end) of `ns`; `*` matches any one label.
fn affix_matches(ns: &[String], pattern: &[String], at_end: bool) -> bool {
    if pattern.len() > ns.len() {
        return false;
    }
    let part = if at_end {
        &ns[ns.len() - pattern.len()..]
    } else {
        &ns[..pattern.len()]
    };
    part.iter().zip(pattern).all(|(l, p)| p == "*" || l == p)
}

impl Application {
    pub async fn store_put(&self, who: &Principal, req: PutItem) -> Result<()> {
        who.require(Role::Member)?;
        namespace("namespace", &req.namespace, false)?;
        item_key(&req.key)?;
        if let Some(t) = req.ttl
            && !(t.is_finite() && t > 0.0 && t <= 5_256_000.0)
        {
            return Err(Error::invalid(
                "ttl",
                "must be a positive number of minutes, at most ten years",
            ));
        }
        let value = Value::Object(req.value);
        let embedding = match (&self.embedder, indexed_text(&value, req.index.as_ref())) {
            (Some(e), Some(text)) => e.embed(&[text]).await?.pop(),
            _ => None,
        };
        let now = morningai_core::now();
        let item = KvItem {
            namespace: req.namespace,
            key: req.key,
            value,
            created_at: now,
            updated_at: now,
            ttl_minutes: req.ttl,
            expires_at: req
                .ttl
                .map(|m| now + Duration::milliseconds((m * 60_000.0) as i64)),
            embedding,
        };
        self.kv.kv_put(who.cx(), &item).await
    }

    /// Refreshes the TTL of items read, unless the caller asked not to.
    async fn refresh_ttls<'i>(
        &self,
        cx: TenantCtx,
        items: impl IntoIterator<Item = &'i KvItem>,
        wanted: Option<bool>,
    ) -> Result<()> {
        if wanted == Some(false) {
            return Ok(());
        }
        let keys: Vec<(Vec<String>, String)> = items
            .into_iter()
            .filter(|i| i.ttl_minutes.is_some())
            .map(|i| (i.namespace.clone(), i.key.clone()))
            .collect();
        self.kv.kv_refresh(cx, &keys, morningai_core::now()).await
    }

    pub async fn store_get(&self, who: &Principal, q: &GetItem) -> Result<StoreItem> {
        let labels: Vec<String> = q.namespace.split('.').map(str::to_owned).collect();
        namespace("namespace", &labels, false)?;
        item_key(&q.key)?;
        let item = self
            .kv
            .kv_get(who.cx(), &labels, &q.key, morningai_core::now())
            .await?
            .ok_or(Error::NotFound("item"))?;
        self.refresh_ttls(who.cx(), [&item], q.refresh_ttl).await?;
        Ok(view(&item, None))
    }

    pub async fn store_delete(&self, who: &Principal, req: &DeleteItem) -> Result<()> {
        who.require(Role::Member)?;
        namespace("namespace", &req.namespace, false)?;
        item_key(&req.key)?;
        self.kv
            .kv_delete(who.cx(), &req.namespace, &req.key)
            .await?;
        Ok(())
    }

    /// Items under a namespace prefix, filtered, ranked by `query` when given.
    pub async fn store_search(
        &self,
        who: &Principal,
        req: SearchItems,
    ) -> Result<SearchItemsResponse> {
        namespace("namespace_prefix", &req.namespace_prefix, true)?;
        let limit = req.limit.unwrap_or(10);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 1000"));
        }
        let filter = req.filter.unwrap_or_default();
        let mut found = Vec::new();
        for item in self
            .kv
            .kv_scan(
                who.cx(),
                &req.namespace_prefix,
                morningai_core::now(),
                SCAN_LIMIT,
            )
            .await?
        {
            if matches(&item.value, &filter)? {
                found.push(item);
            }
        }
        let query = req
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        let ranked = match query {
            None => found.into_iter().map(|i| (None, i)).collect(),
            Some(q) => self.rank(q, found).await?,
        };
        let page: Vec<(Option<f64>, KvItem)> = ranked
            .into_iter()
            .skip(req.offset.unwrap_or(0))
            .take(limit)
            .collect();
        self.refresh_ttls(who.cx(), page.iter().map(|(_, i)| i), req.refresh_ttl)
            .await?;
        Ok(SearchItemsResponse {
            items: page.iter().map(|(s, i)| view(i, *s)).collect(),
        })
    }

    /// Items by similarity to `query`: cosine with a model, else the share of its words.
    async fn rank(&self, query: &str, items: Vec<KvItem>) -> Result<Vec<(Option<f64>, KvItem)>> {
        let qv = match &self.embedder {
            Some(e) => e.embed(&[query.to_owned()]).await?.pop(),
            None => None,
        };
        let terms = query_terms(query);
        let mut scored: Vec<(Option<f64>, KvItem)> = items
            .into_iter()
            .map(|i| {
                let score = match (&qv, &i.embedding) {
                    (Some(qv), Some(v)) if v.len() == qv.len() => {
                        f64::from(morningai_core::ai::cosine(qv, v))
                    }
                    _ => {
                        let text = indexed_text(&i.value, None).unwrap_or_default();
                        let words: std::collections::HashSet<String> =
                            morningai_core::lexical::terms(&text).into_iter().collect();
                        let hit = terms.iter().filter(|t| words.contains(t.as_str())).count();
                        hit as f64 / terms.len().max(1) as f64
                    }
                };
                (Some(score), i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.unwrap_or(0.0).total_cmp(&a.0.unwrap_or(0.0)));
        Ok(scored)
    }

    /// Namespaces by prefix and suffix (`*` matches a label), cut at `max_depth`.
    pub async fn store_namespaces(
        &self,
        who: &Principal,
        req: ListNamespaces,
    ) -> Result<NamespacesResponse> {
        let limit = req.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 1000"));
        }
        if req.max_depth == Some(0) {
            return Err(Error::invalid("max_depth", "must be at least 1"));
        }
        let (prefix, suffix) = (
            req.prefix.unwrap_or_default(),
            req.suffix.unwrap_or_default(),
        );
        let mut out: Vec<Vec<String>> = Vec::new();
        for ns in self
            .kv
            .kv_namespaces(who.cx(), morningai_core::now())
            .await?
        {
            if !affix_matches(&ns, &prefix, false) || !affix_matches(&ns, &suffix, true) {
                continue;
            }
            let ns = match req.max_depth {
                Some(d) => ns.into_iter().take(d).collect(),
                None => ns,
            };
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        Ok(NamespacesResponse {
            namespaces: out
                .into_iter()
                .skip(req.offset.unwrap_or(0))
                .take(limit)
                .collect(),
        })
    }
}
