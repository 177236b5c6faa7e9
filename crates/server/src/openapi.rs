//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use crate::langgraph::{approvals, graphs, runs, store as lg_store, threads};
use crate::routes::{
    api_keys, assistants, auth, documents, events, integrations, memory, models, platform,
    projects, queue, schedules, system, tasks, tenant, webhooks,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API key")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

/// Every operation of the document, with its path.
fn operations_mut(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&str, &mut utoipa::openapi::path::Operation)> {
    doc.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        .map(move |op| (path.as_str(), op))
    })
}

/// Operation ids named by tag and handler (`tasks_list`, `approvals_list`); a test checks
/// they are unique, as generated clients need (a clash is a name to change, not to number).
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (_, op) in operations_mut(doc) {
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .map_or("api", String::as_str)
                .replace('-', "_");
            let name = op.operation_id.clone().unwrap_or_default();
            if !name.starts_with(&tag) {
                op.operation_id = Some(format!("{tag}_{name}"));
            }
        }
    }
}

/// Every `{name}` of a path is declared as a parameter of each of its operations: the ones an
/// annotation leaves out are added (a version number `n` as an integer, other ids as UUIDs),
/// so the document stays valid OpenAPI as routes are added.
struct PathParameters;

impl Modify for PathParameters {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        use utoipa::openapi::{Required, Schema};
        for (path, op) in operations_mut(doc) {
            let names: Vec<&str> = path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let params = op.parameters.get_or_insert_with(Vec::new);
            for name in &names {
                if params
                    .iter()
                    .any(|p| p.name == *name && p.parameter_in == ParameterIn::Path)
                {
                    continue;
                }
                let schema = if *name == "n" {
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                } else {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                };
                let param: Parameter = ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(Schema::Object(schema.build())))
                    .build();
                params.push(param);
            }
        }
    }
}

/// The errors every operation can answer, as problems (`application/problem+json`, the
/// `Problem` schema): 400 (malformed JSON, a bad path or query parameter) and 422 (a field
/// the request got wrong) everywhere; 401 and 403 where a caller must authenticate; 404 where
/// the path names a resource or the caller is authenticated (a body or query can name one
/// too); 413 and 415 where a body is read. Errors an annotation already
/// lists keep their description and get the problem media type.
struct Problems;

impl Modify for Problems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build()
        };
        for (path, op) in operations_mut(doc) {
            let names_a_resource = path.contains('{');
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let body = op.request_body.is_some();
            let json_body = op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.keys().any(|k| k.contains("json")));
            let wanted = [
                (
                    "400",
                    "malformed JSON, or a bad path or query parameter",
                    true,
                ),
                ("401", "missing, invalid or expired credentials", secured),
                ("403", "the caller's role does not allow this", secured),
                (
                    "404",
                    "no such resource in the caller's tenant",
                    names_a_resource || secured,
                ),
                ("413", "the body is over the configured limit", body),
                ("415", "the body is not JSON", json_body),
                (
                    "422",
                    "a field of the request is invalid (each one named)",
                    true,
                ),
            ];
            let responses = &mut op.responses.responses;
            for (code, description, applies) in wanted {
                if applies && !responses.contains_key(code) {
                    responses.insert(
                        code.to_owned(),
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/problem+json", problem())
                                .build(),
                        ),
                    );
                }
            }
            for (code, response) in responses.iter_mut() {
                let RefOr::T(r) = response else { continue };
                if !(code.starts_with('4') || code.starts_with('5')) {
                    continue;
                }
                if let Some(c) = r.content.shift_remove("application/json") {
                    r.content.insert("application/problem+json".to_owned(), c);
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "MorningAI API", description = "Multi-tenant platform for autonomous AI agents: the REST API under /api/v1 and the LangGraph Server API at the root."),
    modifiers(&Security, &OperationIds, &PathParameters, &Problems),
    // The frames of the event streams (text/event-stream, so no operation names them).
    components(schemas(morningai_core::events::TaskEvent)),
    paths(
        auth::signup, auth::login, auth::refresh, auth::logout, auth::switch_tenant, auth::me,
        tenant::get, tenant::update, tenant::create, tenant::members, tenant::add_member,
        tenant::update_member, tenant::remove_member,
        api_keys::create, api_keys::list, api_keys::revoke,
        integrations::create, integrations::list, integrations::get, integrations::delete,
        integrations::test, integrations::link, integrations::handshake, integrations::hook,
        webhooks::create, webhooks::list, webhooks::get, webhooks::delete, webhooks::deliveries,
        webhooks::redeliver,
        projects::create, projects::list, projects::get, projects::update, projects::delete,
        tasks::create, tasks::get, tasks::list, tasks::cancel,
        events::task_events, events::tenant_events,
        schedules::create, schedules::list, schedules::delete,
        queue::depth, queue::dead, queue::retry, queue::purge_one, queue::purge_all,
        platform::tenants, platform::dead, platform::retry, platform::purge_one, platform::purge_all,
        memory::create_collection, memory::list_collections, memory::get_collection,
        memory::delete_collection, memory::add_item, memory::list_items, memory::delete_item,
        memory::search, memory::answer,
        models::get_settings, models::put_settings, models::usage,
        assistants::create, assistants::list, assistants::get, assistants::patch,
        documents::create, documents::list, documents::get, documents::patch, documents::delete,
        documents::versions, documents::save, documents::version, documents::diff,
        documents::publish, documents::restore, documents::export, documents::import,
        approvals::list, approvals::approve, approvals::reject,
        graphs::create, graphs::list, graphs::delete,
        threads::create_assistant, threads::search_assistants, threads::get_assistant,
        threads::create_thread, threads::search_threads, threads::get_thread, threads::patch_thread,
        threads::delete_thread, threads::get_state, threads::update_state, threads::get_state_at,
        threads::history, threads::history_get,
        runs::create, runs::list, runs::get, runs::cancel, runs::join, runs::wait, runs::wait_stateless,
        runs::stream_thread, runs::stream_stateless, runs::join_stream,
        lg_store::put_item, lg_store::get_item, lg_store::delete_item, lg_store::search_items,
        lg_store::list_namespaces,
        system::healthz, system::readyz, system::metrics, system::openapi,
    )
)]
struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The router and the document describe the same (method, path) pairs: a route added
    /// without its annotation, or an annotation without its route, fails here.
    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let served: BTreeSet<(String, String)> = crate::route_table()
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        let doc = super::document();
        let mut documented = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ];
            for (m, op) in ops {
                if op.is_some() {
                    documented.insert((m.to_owned(), path.clone()));
                }
            }
        }
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "undocumented routes: {undocumented:?}; documented but not served: {unserved:?}"
        );
        assert_eq!(
            served.len(),
            crate::route_table().len(),
            "a route is listed twice"
        );
    }

    /// Generated clients name their functions after operation ids: each is unique.
    #[test]
    fn operation_ids_are_unique() {
        let doc = super::document();
        let mut ids = BTreeSet::new();
        for item in doc.paths.paths.values() {
            for op in [&item.get, &item.post, &item.put, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                let id = op.operation_id.clone().expect("every operation has an id");
                assert!(ids.insert(id.clone()), "operation id {id} is used twice");
            }
        }
    }
}
