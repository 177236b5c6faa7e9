//! The conformance suite of the `Store` port. Each backend's tests call
//! [`store_conformance!`] with an async expression that yields a fresh `Arc<dyn Store>`;
//! every case below then runs against that backend. Cases create their own users and
//! tenants with random names, so they can share one database and run in parallel.
use morningai_core::entities::*;
use morningai_core::{Email, Error, Priority, Slug, Store, TaskId, TenantCtx};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

mod accounts;
mod objects;
mod tasks;

pub use accounts::*;
pub use objects::*;
pub use tasks::*;

pub type DynStore = Arc<dyn Store>;

/// Generates one `#[tokio::test]` per conformance case for a backend.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store: $crate::DynStore = $make.await;
                $crate::store::$case(store).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::store_conformance!($make;
            users_are_unique_by_email_case_insensitively,
            signup_creates_owner_membership,
            tenant_slugs_are_unique,
            members_keep_at_least_one_owner,
            adding_members_validates,
            api_keys_resolve_by_hash_with_creator_role,
            refresh_tokens_rotate_and_reuse_revokes_family,
            projects_crud_is_tenant_scoped,
            tasks_create_get_list_cancel,
            concurrent_task_reads_each_get_their_own,
            concurrent_task_creations_stay_apart,
            creations_under_a_key_beside_its_holders_updates,
            task_idempotency_keys_are_per_tenant,
            task_pagination_is_newest_first,
            task_project_must_belong_to_tenant,
            audit_log_is_tenant_scoped,
            task_lifecycle_writes_the_result_once,
            task_events_are_stored_in_order_per_tenant,
            task_event_ids_become_visible_in_order,
            unfinished_tasks_span_tenants,
            tenants_overview_counts_members_and_tasks,
            schedules_fire_once_by_compare_and_set,
            workflow_documents_are_tenant_scoped,
            records_are_found_by_body_fields,
            due_records_are_found_across_tenants,
        );
    };
}

pub(crate) fn rand_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

pub(crate) fn new_user(tag: &str) -> NewUser {
    NewUser {
        email: Email::parse(&format!("{tag}-{}@example.com", rand_suffix())).unwrap(),
        name: Some(tag.to_owned()),
        password_hash: "$argon2id$fake".into(),
        is_platform_admin: false,
    }
}

pub(crate) fn new_tenant(tag: &str) -> NewTenant {
    NewTenant {
        slug: Slug::parse(&format!("{tag}-{}", rand_suffix())).unwrap(),
        name: tag.to_owned(),
    }
}

/// A user with their own tenant.
pub async fn owner(store: &DynStore, tag: &str) -> (User, TenantCtx) {
    let (u, t) = store
        .create_user_with_tenant(new_user(tag), new_tenant(tag))
        .await
        .unwrap();
    (u, TenantCtx::new(t.id))
}

/// Two tenants that exist in `store`: the setup of every tenant-scoped port's suite.
pub async fn two_tenants(store: DynStore) -> (TenantCtx, TenantCtx) {
    let (_, a) = owner(&store, "tenant-a").await;
    let (_, b) = owner(&store, "tenant-b").await;
    (a, b)
}

pub(crate) fn new_task(kind: &str, key: Option<&str>) -> NewTask {
    NewTask {
        id: TaskId::new(),
        kind: kind.into(),
        priority: Priority::default(),
        project_id: None,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        input: json!({"hello": "world", "n": 1}),
        idempotency_key: key.map(str::to_owned),
        created_by: None,
    }
}

pub(crate) fn assert_conflict<T: std::fmt::Debug>(r: Result<T, Error>, code: &str) {
    match r {
        Err(Error::Conflict { code: c, .. }) => assert_eq!(c, code),
        other => panic!("expected conflict {code}, got {other:?}"),
    }
}

pub(crate) fn assert_not_found<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::NotFound(_))),
        "expected not found, got {r:?}"
    );
}
