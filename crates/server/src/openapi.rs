//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use crate::routes::{
    api_keys, assistants, auth, documents, events, memory, models, projects, queue, schedules,
    system, tasks, tenant,
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

#[derive(OpenApi)]
#[openapi(
    info(title = "MorningAI API", description = "Multi-tenant platform for autonomous AI agents."),
    modifiers(&Security),
    paths(
        auth::signup, auth::login, auth::refresh, auth::logout, auth::switch_tenant, auth::me,
        tenant::get, tenant::update, tenant::create, tenant::members, tenant::add_member,
        tenant::update_member, tenant::remove_member,
        api_keys::create, api_keys::list, api_keys::revoke,
        projects::create, projects::list, projects::get, projects::update, projects::delete,
        tasks::create, tasks::get, tasks::list, tasks::cancel,
        events::task_events, events::tenant_events,
        schedules::create, schedules::list, schedules::delete,
        queue::depth, queue::dead, queue::retry, queue::purge_one, queue::purge_all,
        memory::create_collection, memory::list_collections, memory::get_collection,
        memory::delete_collection, memory::add_item, memory::list_items, memory::delete_item,
        memory::search, memory::answer,
        models::get_settings, models::put_settings, models::usage,
        assistants::create, assistants::list, assistants::get, assistants::patch,
        documents::create, documents::list, documents::get, documents::patch, documents::delete,
        documents::versions, documents::save, documents::version, documents::diff,
        documents::publish, documents::restore, documents::export, documents::import,
        crate::langgraph::approvals::list, crate::langgraph::approvals::approve, crate::langgraph::approvals::reject,
        crate::langgraph::graphs::create, crate::langgraph::graphs::list, crate::langgraph::graphs::delete,
        system::healthz, system::readyz, system::metrics, system::openapi,
    )
)]
struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
