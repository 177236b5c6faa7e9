//! LangGraph's long-term store API (`/store/items`, `/store/items/search`,
//! `/store/namespaces`) on the `KeyValueStore` port. Items are embedded on write when an
//! embedding model is configured (the fields named by `index`, else every string in the
//! value), and a search with `query` ranks by cosine similarity — or, without a model, by
//! how many of the query's words an item contains.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json as Body, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Duration;
use morningai_core::kv::KvItem;
use morningai_core::memory::query_terms;
use morningai_core::{Role, TenantCtx};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Items a search considers, newest first, before filtering and ranking.
const SCAN_LIMIT: u32 = 10_000;

fn namespace(field: &str, labels: &[String], allow_empty: bool) -> ApiResult<()> {
    if labels.is_empty() && !allow_empty {
        return Err(ApiError::invalid(field, "must have at least one label"));
    }
    if labels.len() > 20 {
        return Err(ApiError::invalid(field, "must have at most 20 labels"));
    }
    for l in labels {
        if l.is_empty() || l.contains('.') || l.len() > 256 {
            return Err(ApiError::invalid(
                field,
                format!("label {l:?} must be 1–256 characters without '.'"),
            ));
        }
    }
    Ok(())
}

fn item_key(key: &str) -> ApiResult<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(ApiError::invalid("key", "must be 1–1024 characters"));
    }
    Ok(())
}

fn item_json(i: &KvItem, score: Option<f64>) -> Value {
    let mut v = json!({
        "namespace": i.namespace,
        "key": i.key,
        "value": i.value,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
    });
    if let Some(s) = score {
        v["score"] = json!(s);
    }
    v
}

/// `index`: false (not embedded), a list of field paths (`a.b`), or absent (every string).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Index {
    Off(bool),
    Fields(Vec<String>),
}

#[derive(Deserialize)]
pub struct PutItem {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Map<String, Value>,
    pub index: Option<Index>,
    /// Minutes the item lives after each write or refreshing read.
    pub ttl: Option<f64>,
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

pub async fn put_item(
    State(state): State<AppState>,
    who: Principal,
    Body(req): Body<PutItem>,
) -> ApiResult<StatusCode> {
    who.require(Role::Member)?;
    namespace("namespace", &req.namespace, false)?;
    item_key(&req.key)?;
    if let Some(t) = req.ttl
        && !(t.is_finite() && t > 0.0 && t <= 5_256_000.0)
    {
        return Err(ApiError::invalid(
            "ttl",
            "must be a positive number of minutes, at most ten years",
        ));
    }
    let value = Value::Object(req.value);
    let embedding = match (&state.embedder, indexed_text(&value, req.index.as_ref())) {
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
    state.kv.kv_put(who.cx(), &item).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct GetItem {
    /// Labels joined by `.`.
    pub namespace: String,
    pub key: String,
    pub refresh_ttl: Option<bool>,
}

async fn refresh<'i>(
    state: &AppState,
    cx: TenantCtx,
    items: impl IntoIterator<Item = &'i KvItem>,
    wanted: Option<bool>,
) -> ApiResult<()> {
    if wanted == Some(false) {
        return Ok(());
    }
    let keys: Vec<(Vec<String>, String)> = items
        .into_iter()
        .filter(|i| i.ttl_minutes.is_some())
        .map(|i| (i.namespace.clone(), i.key.clone()))
        .collect();
    Ok(state
        .kv
        .kv_refresh(cx, &keys, morningai_core::now())
        .await?)
}

pub async fn get_item(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<GetItem>,
) -> ApiResult<Json<Value>> {
    let labels: Vec<String> = q.namespace.split('.').map(str::to_owned).collect();
    namespace("namespace", &labels, false)?;
    item_key(&q.key)?;
    let item = state
        .kv
        .kv_get(who.cx(), &labels, &q.key, morningai_core::now())
        .await?
        .ok_or_else(|| ApiError::not_found("item"))?;
    refresh(&state, who.cx(), [&item], q.refresh_ttl).await?;
    Ok(Json(item_json(&item, None)))
}

#[derive(Deserialize)]
pub struct DeleteItem {
    pub namespace: Vec<String>,
    pub key: String,
}

pub async fn delete_item(
    State(state): State<AppState>,
    who: Principal,
    Body(req): Body<DeleteItem>,
) -> ApiResult<StatusCode> {
    who.require(Role::Member)?;
    namespace("namespace", &req.namespace, false)?;
    item_key(&req.key)?;
    state
        .kv
        .kv_delete(who.cx(), &req.namespace, &req.key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct SearchItems {
    #[serde(default)]
    pub namespace_prefix: Vec<String>,
    pub filter: Option<Map<String, Value>>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub query: Option<String>,
    pub refresh_ttl: Option<bool>,
}

/// A filter condition: a value (equality) or `{"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte": v}`.
fn matches(value: &Value, filter: &Map<String, Value>) -> ApiResult<bool> {
    for (path, cond) in filter {
        let got = value.pointer(&format!("/{}", path.replace('.', "/")));
        let ok = match cond {
            Value::Object(ops) if ops.keys().all(|k| k.starts_with('$')) && !ops.is_empty() => {
                let mut all = true;
                for (op, want) in ops {
                    let ord = got.and_then(|g| compare(g, want));
                    all &= match op.as_str() {
                        "$eq" => got == Some(want),
                        "$ne" => got != Some(want),
                        "$gt" => ord == Some(std::cmp::Ordering::Greater),
                        "$gte" => matches!(
                            ord,
                            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                        ),
                        "$lt" => ord == Some(std::cmp::Ordering::Less),
                        "$lte" => matches!(
                            ord,
                            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                        ),
                        other => {
                            return Err(ApiError::invalid(
                                "filter",
                                format!(
                                    "unknown operator {other} (use $eq, $ne, $gt, $gte, $lt, $lte)"
                                ),
                            ));
                        }
                    };
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

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

pub async fn search_items(
    State(state): State<AppState>,
    who: Principal,
    Body(req): Body<SearchItems>,
) -> ApiResult<Json<Value>> {
    namespace("namespace_prefix", &req.namespace_prefix, true)?;
    let limit = req.limit.unwrap_or(10);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let offset = req.offset.unwrap_or(0);
    let filter = req.filter.unwrap_or_default();
    let mut found = Vec::new();
    for item in state
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
    let ranked: Vec<(Option<f64>, KvItem)> = match query {
        None => found.into_iter().map(|i| (None, i)).collect(),
        Some(q) => {
            let qv = match &state.embedder {
                Some(e) => e.embed(&[q.to_owned()]).await?.pop(),
                None => None,
            };
            let terms = query_terms(q);
            let mut scored: Vec<(Option<f64>, KvItem)> = found
                .into_iter()
                .map(|i| {
                    let score = match (&qv, &i.embedding) {
                        (Some(qv), Some(v)) if v.len() == qv.len() => {
                            f64::from(morningai_core::ai::cosine(qv, v))
                        }
                        _ => {
                            let text = indexed_text(&i.value, None)
                                .unwrap_or_default()
                                .to_lowercase();
                            let hit = terms.iter().filter(|t| text.contains(t.as_str())).count();
                            hit as f64 / terms.len().max(1) as f64
                        }
                    };
                    (Some(score), i)
                })
                .collect();
            scored.sort_by(|a, b| b.0.unwrap_or(0.0).total_cmp(&a.0.unwrap_or(0.0)));
            scored
        }
    };
    let page: Vec<(Option<f64>, KvItem)> = ranked.into_iter().skip(offset).take(limit).collect();
    refresh(
        &state,
        who.cx(),
        page.iter().map(|(_, i)| i),
        req.refresh_ttl,
    )
    .await?;
    Ok(Json(json!({
        "items": page.iter().map(|(s, i)| item_json(i, *s)).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
pub struct ListNamespaces {
    pub prefix: Option<Vec<String>>,
    pub suffix: Option<Vec<String>>,
    pub max_depth: Option<usize>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
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

pub async fn list_namespaces(
    State(state): State<AppState>,
    who: Principal,
    Body(req): Body<ListNamespaces>,
) -> ApiResult<Json<Value>> {
    let limit = req.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    if req.max_depth == Some(0) {
        return Err(ApiError::invalid("max_depth", "must be at least 1"));
    }
    let (prefix, suffix) = (
        req.prefix.unwrap_or_default(),
        req.suffix.unwrap_or_default(),
    );
    let mut out: Vec<Vec<String>> = Vec::new();
    for ns in state
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
        if out.last() != Some(&ns) && !out.contains(&ns) {
            out.push(ns);
        }
    }
    let page: Vec<Vec<String>> = out
        .into_iter()
        .skip(req.offset.unwrap_or(0))
        .take(limit)
        .collect();
    Ok(Json(json!({"namespaces": page})))
}
