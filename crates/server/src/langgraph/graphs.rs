//! Uploading declarative graphs: `POST /api/v1/graphs` with a JSON `definition` (or a YAML
//! `definition_yaml`), validated on upload — every problem reported with the path of the
//! offending field — then served as an assistant like the built-in graphs.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path};
use crate::langgraph::catalog::TENANT_GRAPH;
use crate::langgraph::runs::{doc, save};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::Role;
use morningai_graph::{Definition, DefinitionError, NodeTypes};
use serde_json::{Value, json};
use uuid::Uuid;

fn invalid(errors: Vec<DefinitionError>) -> ApiError {
    let errors: Vec<FieldError> = errors
        .into_iter()
        .map(|e| FieldError {
            field: if e.path.is_empty() {
                "definition".into()
            } else {
                format!("definition.{}", e.path)
            },
            message: e.message,
        })
        .collect();
    let detail = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError {
        errors,
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
    }
}

/// Uploads a declarative graph (JSON `definition` or YAML `definition_yaml`), validated.
#[utoipa::path(post, path = "/api/v1/graphs", tag = "graphs", responses((status = 201, description = "the graph, served as an assistant"), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<Value>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    who.require(Role::Admin)?;
    let name = crate::routes::clean_name("name", req["name"].as_str().unwrap_or_default())?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid("name", "letters, digits, - and _ only"));
    }
    let def = match (&req["definition"], req["definition_yaml"].as_str()) {
        (Value::Object(_), None) => Definition::from_json(&req["definition"]).map_err(invalid)?,
        (Value::Null, Some(yaml)) => Definition::from_yaml(yaml).map_err(invalid)?,
        _ => {
            return Err(ApiError::invalid(
                "definition",
                "give exactly one of definition (JSON object) or definition_yaml (string)",
            ));
        }
    };
    def.compile(&NodeTypes::default()).map_err(invalid)?;
    if let Some(r) = req["approvals"]["min_role"].as_str()
        && r.parse::<Role>().is_err()
    {
        return Err(ApiError::invalid(
            "approvals.min_role",
            "owner, admin, member or viewer",
        ));
    }
    let graph_id = format!("custom:{name}");
    if state
        .catalog
        .resolve(&*state.store, who.cx(), &graph_id)
        .await
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "graph_exists",
            format!("a graph named {name:?} exists"),
        ));
    }
    let id = Uuid::now_v7();
    let now = morningai_core::now();
    let body = json!({
        "assistant_id": id, "graph_id": graph_id, "name": name, "description": req["description"].as_str().unwrap_or_default(),
        "definition": serde_json::to_value(&req["definition"]).ok().filter(|v| !v.is_null()).unwrap_or_else(|| yaml_as_json(&req)),
        "approvals": req["approvals"], "config": {}, "context": {}, "metadata": {}, "version": 1,
        "created_at": now, "updated_at": now, "created_by": who.user_id,
    });
    let saved = save(
        &*state.store,
        who.cx(),
        doc(TENANT_GRAPH, id, None, "active", body),
    )
    .await?;
    state
        .audit(&who, "graph.create", "graph", id, json!({"name": name}))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(saved.body)))
}

fn yaml_as_json(req: &Value) -> Value {
    req["definition_yaml"]
        .as_str()
        .and_then(|y| serde_yaml_ng::from_str::<Value>(y).ok())
        .unwrap_or(Value::Null)
}

#[utoipa::path(get, path = "/api/v1/graphs", tag = "graphs", responses((status = 200, description = "uploaded graphs")), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, who: Principal) -> ApiResult<axum::Json<Value>> {
    let docs = state
        .store
        .list_objects(who.cx(), TENANT_GRAPH, None, None, 1000, 0)
        .await?;
    Ok(axum::Json(Value::Array(
        docs.into_iter().map(|d| d.body).collect(),
    )))
}

#[utoipa::path(delete, path = "/api/v1/graphs/{id}", tag = "graphs", params(("id" = String, Path, format = Uuid)), responses((status = 204), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    if !state
        .store
        .delete_object(who.cx(), TENANT_GRAPH, id)
        .await?
    {
        return Err(ApiError::not_found("graph"));
    }
    state
        .audit(&who, "graph.delete", "graph", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
