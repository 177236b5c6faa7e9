//! The conformance suite of the `Store` port. Each backend's tests call
//! [`store_conformance!`] with an async expression that yields a fresh `Arc<dyn Store>`;
//! every case below then runs against that backend. Cases create their own users and
//! tenants with random names, so they can share one database and run in parallel.

use chrono::{Duration, Utc};
use morningai_core::entities::*;
use morningai_core::events::{NewTaskEvent, TaskEventKind};
use morningai_core::schedules::Schedule;
use morningai_core::{Email, Error, Priority, Role, Slug, Store, TaskId, TenantCtx, UserId};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

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
            task_idempotency_keys_are_per_tenant,
            task_pagination_is_newest_first,
            task_project_must_belong_to_tenant,
            audit_log_is_tenant_scoped,
            task_lifecycle_writes_the_result_once,
            task_events_are_stored_in_order_per_tenant,
            unfinished_tasks_span_tenants,
            schedules_fire_once_by_compare_and_set,
            workflow_documents_are_tenant_scoped,
        );
    };
}

fn rand_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn new_user(tag: &str) -> NewUser {
    NewUser {
        email: Email::parse(&format!("{tag}-{}@example.com", rand_suffix())).unwrap(),
        name: Some(tag.to_owned()),
        password_hash: "$argon2id$fake".into(),
        is_platform_admin: false,
    }
}

fn new_tenant(tag: &str) -> NewTenant {
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

fn new_task(kind: &str, key: Option<&str>) -> NewTask {
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

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, Error>, code: &str) {
    match r {
        Err(Error::Conflict { code: c, .. }) => assert_eq!(c, code),
        other => panic!("expected conflict {code}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::NotFound(_))),
        "expected not found, got {r:?}"
    );
}

pub async fn users_are_unique_by_email_case_insensitively(store: DynStore) {
    let u = new_user("ada");
    let created = store.create_user(u.clone()).await.unwrap();
    let upper = NewUser {
        email: Email::parse(&u.email.as_str().to_uppercase()).unwrap(),
        ..u.clone()
    };
    assert_conflict(store.create_user(upper).await, "email_taken");
    let creds = store
        .user_credentials(&u.email)
        .await
        .unwrap()
        .expect("found by email");
    assert_eq!(creds.user, created);
    assert_eq!(creds.password_hash, "$argon2id$fake");
    assert_eq!(store.user_by_id(created.id).await.unwrap(), Some(created));
    assert_eq!(store.user_by_id(UserId::new()).await.unwrap(), None);
}

pub async fn signup_creates_owner_membership(store: DynStore) {
    let (u, cx) = owner(&store, "signup").await;
    assert_eq!(
        store.role_of(cx.tenant_id, u.id).await.unwrap(),
        Some(Role::Owner)
    );
    let ms = store.memberships_of(u.id).await.unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].tenant.id, cx.tenant_id);
    let second = store
        .create_tenant(new_tenant("second"), u.id)
        .await
        .unwrap();
    let ms = store.memberships_of(u.id).await.unwrap();
    assert_eq!(
        ms.iter().map(|m| m.tenant.id).collect::<Vec<_>>(),
        vec![cx.tenant_id, second.id]
    );
    let renamed = store.rename_tenant(cx, "Renamed").await.unwrap();
    assert_eq!(renamed.name, "Renamed");
    assert_eq!(store.tenant(cx).await.unwrap(), renamed);
    assert_eq!(
        store.tenant_by_slug(renamed.slug.as_str()).await.unwrap(),
        Some(renamed)
    );
    // A failed signup (taken email) leaves no tenant behind.
    let dup = NewUser { ..new_user("dup") };
    store.create_user(dup.clone()).await.unwrap();
    let t = new_tenant("orphan");
    assert_conflict(
        store.create_user_with_tenant(dup, t.clone()).await,
        "email_taken",
    );
    assert_eq!(store.tenant_by_slug(t.slug.as_str()).await.unwrap(), None);
    assert_not_found(
        store
            .create_tenant(new_tenant("ghost"), UserId::new())
            .await,
    );
}

pub async fn tenant_slugs_are_unique(store: DynStore) {
    let (u, cx) = owner(&store, "slug").await;
    let slug = store.tenant(cx).await.unwrap().slug;
    let r = store
        .create_tenant(
            NewTenant {
                slug,
                name: "x".into(),
            },
            u.id,
        )
        .await;
    assert_conflict(r, "slug_taken");
}

pub async fn members_keep_at_least_one_owner(store: DynStore) {
    let (alice, cx) = owner(&store, "alice").await;
    assert_conflict(
        store.set_member_role(cx, alice.id, Role::Admin).await,
        "last_owner",
    );
    assert_conflict(store.remove_member(cx, alice.id).await, "last_owner");
    let bob = store.create_user(new_user("bob")).await.unwrap();
    store.add_member(cx, bob.id, Role::Owner).await.unwrap();
    let m = store
        .set_member_role(cx, alice.id, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(m.role, Role::Viewer);
    assert_conflict(store.remove_member(cx, bob.id).await, "last_owner");
    store.remove_member(cx, alice.id).await.unwrap();
    assert_eq!(store.role_of(cx.tenant_id, alice.id).await.unwrap(), None);
    let members = store.members(cx).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].user_id, members[0].role), (bob.id, Role::Owner));
    assert_not_found(store.remove_member(cx, alice.id).await);
}

pub async fn adding_members_validates(store: DynStore) {
    let (_a, cx) = owner(&store, "adder").await;
    let (_b, other) = owner(&store, "other").await;
    let carol = store.create_user(new_user("carol")).await.unwrap();
    let m = store.add_member(cx, carol.id, Role::Member).await.unwrap();
    assert_eq!(
        (m.user_id, m.role, m.email.clone()),
        (carol.id, Role::Member, carol.email.clone())
    );
    assert_conflict(
        store.add_member(cx, carol.id, Role::Viewer).await,
        "already_member",
    );
    assert_not_found(store.add_member(cx, UserId::new(), Role::Viewer).await);
    // Membership in one tenant says nothing about another.
    assert_eq!(
        store.role_of(other.tenant_id, carol.id).await.unwrap(),
        None
    );
    assert_not_found(store.set_member_role(other, carol.id, Role::Admin).await);
    assert_not_found(store.remove_member(other, carol.id).await);
}

pub async fn api_keys_resolve_by_hash_with_creator_role(store: DynStore) {
    let (alice, cx) = owner(&store, "keys").await;
    let (_b, other) = owner(&store, "keys-other").await;
    let hash = Uuid::new_v4().as_bytes().to_vec();
    let key = store
        .create_api_key(
            cx,
            NewApiKey {
                id: morningai_core::ApiKeyId::new(),
                name: "ci".into(),
                prefix: "mai_abcd".into(),
                key_hash: hash.clone(),
                role: Role::Member,
                created_by: alice.id,
            },
        )
        .await
        .unwrap();
    let grant = store
        .api_key_grant(&hash)
        .await
        .unwrap()
        .expect("key resolves");
    assert_eq!(
        grant,
        ApiKeyGrant {
            key_id: key.id,
            tenant_id: cx.tenant_id,
            key_role: Role::Member,
            created_by: alice.id,
            creator_role: Some(Role::Owner)
        }
    );
    assert_eq!(store.api_keys(cx).await.unwrap(), vec![key.clone()]);
    assert!(store.api_keys(other).await.unwrap().is_empty());
    assert_not_found(store.revoke_api_key(other, key.id).await);
    assert!(
        store.api_key_grant(&hash).await.unwrap().is_some(),
        "other tenant cannot revoke"
    );
    store.revoke_api_key(cx, key.id).await.unwrap();
    assert_eq!(store.api_key_grant(&hash).await.unwrap(), None);
    assert!(store.api_keys(cx).await.unwrap()[0].revoked_at.is_some());
    assert_eq!(store.api_key_grant(b"unknown").await.unwrap(), None);
}

pub async fn refresh_tokens_rotate_and_reuse_revokes_family(store: DynStore) {
    let (u, cx) = owner(&store, "refresh").await;
    let family = Uuid::new_v4();
    let exp = Utc::now() + Duration::days(1);
    let tok = |h: &[u8]| NewRefreshToken {
        token_hash: h.to_vec(),
        family_id: family,
        user_id: u.id,
        tenant_id: cx.tenant_id,
        expires_at: exp,
    };
    let (h1, h2) = (
        Uuid::new_v4().as_bytes().to_vec(),
        Uuid::new_v4().as_bytes().to_vec(),
    );
    store.insert_refresh_token(tok(&h1)).await.unwrap();
    let used = store.use_refresh_token(&h1, Utc::now()).await.unwrap();
    assert_eq!(
        used,
        RefreshUse::Rotated {
            family_id: family,
            user_id: u.id,
            tenant_id: cx.tenant_id
        }
    );
    store.insert_refresh_token(tok(&h2)).await.unwrap();
    // Replaying the rotated token revokes the family, including the fresh successor.
    assert_eq!(
        store.use_refresh_token(&h1, Utc::now()).await.unwrap(),
        RefreshUse::Reused
    );
    assert_eq!(
        store.use_refresh_token(&h2, Utc::now()).await.unwrap(),
        RefreshUse::Reused
    );
    assert_eq!(
        store.use_refresh_token(b"nope", Utc::now()).await.unwrap(),
        RefreshUse::Invalid
    );
    // Expired tokens are invalid; logout revokes a family.
    let h3 = Uuid::new_v4().as_bytes().to_vec();
    let fam3 = Uuid::new_v4();
    store
        .insert_refresh_token(NewRefreshToken {
            family_id: fam3,
            expires_at: Utc::now() - Duration::seconds(1),
            ..tok(&h3)
        })
        .await
        .unwrap();
    assert_eq!(
        store.use_refresh_token(&h3, Utc::now()).await.unwrap(),
        RefreshUse::Invalid
    );
    let h4 = Uuid::new_v4().as_bytes().to_vec();
    store
        .insert_refresh_token(NewRefreshToken {
            family_id: Uuid::new_v4(),
            ..tok(&h4)
        })
        .await
        .unwrap();
    store.revoke_refresh_family(&h4).await.unwrap();
    assert_eq!(
        store.use_refresh_token(&h4, Utc::now()).await.unwrap(),
        RefreshUse::Reused
    );
}

pub async fn projects_crud_is_tenant_scoped(store: DynStore) {
    let (u, cx) = owner(&store, "proj").await;
    let (_v, other) = owner(&store, "proj-other").await;
    let p = store
        .create_project(cx, "Docs", Some("the docs"), Some(u.id))
        .await
        .unwrap();
    assert_eq!(store.project(cx, p.id).await.unwrap(), p);
    assert_not_found(store.project(other, p.id).await);
    assert_not_found(
        store
            .update_project(
                other,
                p.id,
                ProjectPatch {
                    name: Some("x".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    assert_not_found(store.delete_project(other, p.id).await);
    assert!(store.projects(other).await.unwrap().is_empty());
    let patched = store
        .update_project(
            cx,
            p.id,
            ProjectPatch {
                name: None,
                description: Some(None),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (patched.name.as_str(), patched.description.as_deref()),
        ("Docs", None)
    );
    let patched = store
        .update_project(
            cx,
            p.id,
            ProjectPatch {
                name: Some("Guide".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "Guide");
    assert_eq!(store.projects(cx).await.unwrap(), vec![patched]);
    store.delete_project(cx, p.id).await.unwrap();
    assert_not_found(store.project(cx, p.id).await);
}

pub async fn tasks_create_get_list_cancel(store: DynStore) {
    let (_u, cx) = owner(&store, "tasks").await;
    let (_v, other) = owner(&store, "tasks-other").await;
    let TaskCreated::New(t, _) = store.create_task(cx, new_task("echo", None)).await.unwrap()
    else {
        panic!("expected a new task")
    };
    assert_eq!(t.status, TaskStatus::Queued);
    assert_eq!(t.input, json!({"hello": "world", "n": 1}));
    let got = store.task(cx, t.id).await.unwrap();
    assert_eq!(got.id, t.id);
    assert_eq!(got.input, t.input);
    assert_eq!(got.trace_id, t.trace_id);
    assert_not_found(store.task(other, t.id).await);
    assert_not_found(store.cancel_task(other, t.id).await);
    assert!(
        store
            .tasks(
                other,
                &TaskFilter {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    let cancelled = store.cancel_task(cx, t.id).await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(
        store.task(cx, t.id).await.unwrap().status,
        TaskStatus::Cancelled
    );
    assert_conflict(store.cancel_task(cx, t.id).await, "task_finished");
    let by_status = |s| TaskFilter {
        status: Some(s),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .tasks(cx, &by_status(TaskStatus::Cancelled))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .tasks(cx, &by_status(TaskStatus::Queued))
            .await
            .unwrap()
            .is_empty()
    );
    let by_kind = TaskFilter {
        kind: Some("other".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(store.tasks(cx, &by_kind).await.unwrap().is_empty());
}

pub async fn task_idempotency_keys_are_per_tenant(store: DynStore) {
    let (_u, cx) = owner(&store, "idem").await;
    let (_v, other) = owner(&store, "idem-other").await;
    let first = match store
        .create_task(cx, new_task("echo", Some("k1")))
        .await
        .unwrap()
    {
        TaskCreated::New(t, _) => t,
        e => panic!("expected new, got {e:?}"),
    };
    match store
        .create_task(cx, new_task("echo", Some("k1")))
        .await
        .unwrap()
    {
        TaskCreated::Existing(t) => assert_eq!(t.id, first.id),
        n => panic!("expected existing, got {n:?}"),
    }
    assert!(matches!(
        store
            .create_task(other, new_task("echo", Some("k1")))
            .await
            .unwrap(),
        TaskCreated::New(..)
    ));
    assert!(matches!(
        store
            .create_task(cx, new_task("echo", Some("k2")))
            .await
            .unwrap(),
        TaskCreated::New(..)
    ));
}

pub async fn task_pagination_is_newest_first(store: DynStore) {
    let (_u, cx) = owner(&store, "page").await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        match store.create_task(cx, new_task("echo", None)).await.unwrap() {
            TaskCreated::New(t, _) => ids.push(t.id),
            e => panic!("{e:?}"),
        }
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .tasks(
                cx,
                &TaskFilter {
                    before,
                    limit: 3,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|t| t.id);
        seen.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(seen, ids);
}

pub async fn task_project_must_belong_to_tenant(store: DynStore) {
    let (_u, cx) = owner(&store, "tp").await;
    let (_v, other) = owner(&store, "tp-other").await;
    let theirs = store
        .create_project(other, "theirs", None, None)
        .await
        .unwrap();
    let r = store
        .create_task(
            cx,
            NewTask {
                project_id: Some(theirs.id),
                ..new_task("echo", None)
            },
        )
        .await;
    assert!(
        matches!(r, Err(Error::Invalid { ref field, .. }) if field == "project_id"),
        "{r:?}"
    );
    let mine = store.create_project(cx, "mine", None, None).await.unwrap();
    let TaskCreated::New(t, _) = store
        .create_task(
            cx,
            NewTask {
                project_id: Some(mine.id),
                ..new_task("echo", None)
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let f = TaskFilter {
        project_id: Some(mine.id),
        limit: 5,
        ..Default::default()
    };
    assert_eq!(store.tasks(cx, &f).await.unwrap().len(), 1);
    // Deleting the project keeps its tasks (they are history), unlinked.
    store.delete_project(cx, mine.id).await.unwrap();
    assert_eq!(store.task(cx, t.id).await.unwrap().project_id, None);
}

pub async fn audit_log_is_tenant_scoped(store: DynStore) {
    let (u, cx) = owner(&store, "audit").await;
    let (_v, other) = owner(&store, "audit-other").await;
    for action in ["project.create", "project.delete"] {
        store
            .audit(
                cx,
                NewAuditEntry {
                    actor: Actor::User { id: u.id },
                    action: action.into(),
                    resource_type: "project".into(),
                    resource_id: Some("p1".into()),
                    ip: Some("127.0.0.1".into()),
                    details: json!({"name": "Docs"}),
                },
            )
            .await
            .unwrap();
    }
    let log = store.audit_log(cx, 10, None).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["project.delete", "project.create"]
    );
    assert_eq!(log[0].actor, Actor::User { id: u.id });
    assert_eq!(log[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        store
            .audit_log(cx, 10, Some(log[0].id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.audit_log(other, 10, None).await.unwrap().is_empty());
}

async fn new_task_in(store: &DynStore, cx: TenantCtx) -> Task {
    match store.create_task(cx, new_task("echo", None)).await.unwrap() {
        TaskCreated::New(t, ev) => {
            assert_eq!(
                (ev.task_id, ev.kind, ev.tenant_id),
                (t.id, TaskEventKind::Queued, cx.tenant_id)
            );
            t
        }
        e => panic!("{e:?}"),
    }
}

fn outcome(
    status: TaskStatus,
    result: Option<serde_json::Value>,
    error: Option<&str>,
) -> TaskOutcome {
    TaskOutcome {
        status,
        result,
        error: error.map(str::to_owned),
        event_data: json!({"by": "test"}),
    }
}

pub async fn task_lifecycle_writes_the_result_once(store: DynStore) {
    let (_u, cx) = owner(&store, "life").await;
    let (_v, other) = owner(&store, "life-other").await;
    let t = new_task_in(&store, cx).await;
    assert!(
        store
            .start_task(other, t.id, json!({}))
            .await
            .unwrap()
            .is_none(),
        "other tenant"
    );
    let (running, started) = store
        .start_task(cx, t.id, json!({"attempt": 1}))
        .await
        .unwrap()
        .expect("startable");
    assert_eq!(running.status, TaskStatus::Running);
    assert_eq!(
        (started.kind, started.data.clone()),
        (TaskEventKind::Started, json!({"attempt": 1}))
    );
    let ev = store
        .finish_task(cx, t.id, outcome(TaskStatus::Retrying, None, Some("flaky")))
        .await
        .unwrap()
        .expect("changed");
    assert_eq!(ev.kind, TaskEventKind::Retrying);
    assert_eq!(
        store.task(cx, t.id).await.unwrap().error.as_deref(),
        Some("flaky")
    );
    assert!(
        store
            .start_task(cx, t.id, json!({}))
            .await
            .unwrap()
            .is_some(),
        "a retrying task starts again"
    );
    let ev = store
        .finish_task(
            cx,
            t.id,
            outcome(TaskStatus::Succeeded, Some(json!({"ok": 1})), None),
        )
        .await
        .unwrap();
    assert_eq!(ev.map(|e| e.kind), Some(TaskEventKind::Succeeded));
    // A duplicate run (at-least-once delivery) cannot overwrite the visible result, and
    // records no second event.
    assert!(
        store
            .finish_task(
                cx,
                t.id,
                outcome(TaskStatus::Succeeded, Some(json!({"ok": 2})), None)
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .finish_task(cx, t.id, outcome(TaskStatus::Failed, None, Some("late")))
            .await
            .unwrap()
            .is_none()
    );
    let done = store.task(cx, t.id).await.unwrap();
    assert_eq!(
        (done.status, done.result, done.error),
        (TaskStatus::Succeeded, Some(json!({"ok": 1})), None)
    );
    let kinds: Vec<_> = store
        .task_events(cx, Some(t.id), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    use TaskEventKind as K;
    assert_eq!(
        kinds,
        [K::Queued, K::Started, K::Retrying, K::Started, K::Succeeded]
    );
    assert!(
        store
            .start_task(cx, t.id, json!({}))
            .await
            .unwrap()
            .is_none(),
        "finished tasks never start again"
    );
    let c = new_task_in(&store, cx).await;
    store.cancel_task(cx, c.id).await.unwrap();
    assert!(
        store
            .start_task(cx, c.id, json!({}))
            .await
            .unwrap()
            .is_none(),
        "cancelled tasks never start"
    );
    assert!(
        !store.reopen_task(cx, c.id).await.unwrap(),
        "only failed tasks reopen"
    );
    let f = new_task_in(&store, cx).await;
    store
        .finish_task(cx, f.id, outcome(TaskStatus::Failed, None, Some("dead")))
        .await
        .unwrap();
    assert!(!store.reopen_task(other, f.id).await.unwrap());
    assert!(store.reopen_task(cx, f.id).await.unwrap());
    let reopened = store.task(cx, f.id).await.unwrap();
    assert_eq!(
        (reopened.status, reopened.error),
        (TaskStatus::Queued, None)
    );
}

pub async fn task_events_are_stored_in_order_per_tenant(store: DynStore) {
    let (_u, cx) = owner(&store, "ev").await;
    let (_v, other) = owner(&store, "ev-other").await;
    let (a, b) = (new_task_in(&store, cx).await, new_task_in(&store, cx).await);
    let theirs = new_task_in(&store, other).await;
    let e1 = store
        .append_task_event(
            cx,
            NewTaskEvent {
                task_id: a.id,
                kind: TaskEventKind::Progress,
                data: json!({"pct": 50}),
            },
        )
        .await
        .unwrap();
    let e2 = store
        .append_task_event(
            cx,
            NewTaskEvent {
                task_id: b.id,
                kind: TaskEventKind::Log,
                data: json!({"message": "hi"}),
            },
        )
        .await
        .unwrap();
    assert!(e2.id > e1.id, "ids grow");
    let of_a = store.task_events(cx, Some(a.id), 0, 100).await.unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [TaskEventKind::Queued, TaskEventKind::Progress]
    );
    assert_eq!(of_a[1].data, json!({"pct": 50}));
    let all = store.task_events(cx, None, 0, 100).await.unwrap();
    assert_eq!(all.len(), 4, "two queued events and two appended");
    assert_eq!(store.last_task_event_id(cx).await.unwrap(), e2.id);
    let (_w, empty) = owner(&store, "ev-empty").await;
    assert_eq!(store.last_task_event_id(empty).await.unwrap(), 0);
    assert!(all.iter().all(|e| e.tenant_id == cx.tenant_id));
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let after = store.task_events(cx, None, e1.id, 100).await.unwrap();
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e2.id]);
    assert!(
        store
            .task_events(cx, Some(theirs.id), 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "other tenant's task"
    );
    assert_eq!(
        store.task_events(other, None, 0, 100).await.unwrap().len(),
        1
    );
}

pub async fn unfinished_tasks_span_tenants(store: DynStore) {
    let (_u, a) = owner(&store, "unf-a").await;
    let (_v, b) = owner(&store, "unf-b").await;
    let (ta, tb, done) = (
        new_task_in(&store, a).await,
        new_task_in(&store, b).await,
        new_task_in(&store, a).await,
    );
    store.start_task(a, done.id, json!({})).await.unwrap();
    store
        .finish_task(
            a,
            done.id,
            outcome(TaskStatus::Succeeded, Some(json!(1)), None),
        )
        .await
        .unwrap();
    let soon = chrono::Utc::now() + Duration::seconds(1);
    let found: Vec<(morningai_core::TenantId, TaskId)> = store
        .unfinished_tasks(soon, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(t, task)| (t, task.id))
        .collect();
    assert!(
        found.contains(&(a.tenant_id, ta.id)) && found.contains(&(b.tenant_id, tb.id)),
        "both tenants"
    );
    assert!(
        !found.iter().any(|(_, id)| *id == done.id),
        "finished tasks are not listed"
    );
    let past = chrono::Utc::now() - Duration::hours(1);
    assert!(
        !store
            .unfinished_tasks(past, 100_000)
            .await
            .unwrap()
            .iter()
            .any(|(_, t)| t.id == ta.id),
        "too recent"
    );
}

pub async fn schedules_fire_once_by_compare_and_set(store: DynStore) {
    let (u, cx) = owner(&store, "sched").await;
    let (_v, other) = owner(&store, "sched-other").await;
    let due = morningai_core::now() - Duration::seconds(5);
    let s = Schedule {
        id: Uuid::now_v7(),
        tenant_id: cx.tenant_id,
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        timezone: "Europe/Paris".into(),
        kind: "echo".into(),
        input: json!({"x": 1}),
        priority: Priority::new(7).unwrap(),
        next_run_at: due,
        created_by: Some(u.id),
        created_at: morningai_core::now(),
    };
    let created = store.create_schedule(cx, s.clone()).await.unwrap();
    assert_eq!(created, s);
    assert_eq!(store.schedules(cx).await.unwrap(), vec![s.clone()]);
    assert!(store.schedules(other).await.unwrap().is_empty());
    let found = store
        .due_schedules(morningai_core::now(), 100_000)
        .await
        .unwrap();
    assert!(
        found
            .iter()
            .any(|x| x.id == s.id && x.tenant_id == cx.tenant_id)
    );
    let next = due + Duration::days(1);
    assert!(store.advance_schedule(s.id, due, next).await.unwrap());
    assert!(
        !store.advance_schedule(s.id, due, next).await.unwrap(),
        "the second process loses"
    );
    assert!(
        !store
            .due_schedules(morningai_core::now(), 100_000)
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == s.id)
    );
    assert!(matches!(
        store.delete_schedule(other, s.id).await,
        Err(Error::NotFound(_))
    ));
    store.delete_schedule(cx, s.id).await.unwrap();
    assert!(store.schedules(cx).await.unwrap().is_empty());
}

pub async fn workflow_documents_are_tenant_scoped(store: DynStore) {
    use morningai_core::objects::StoredObject;
    let (_u, cx) = owner(&store, "docs").await;
    let (_v, other) = owner(&store, "docs-other").await;
    let thread = Uuid::now_v7();
    let obj = |kind: &str, id: Uuid, parent: Option<Uuid>, status: &str| StoredObject {
        kind: kind.into(),
        id,
        parent,
        status: status.into(),
        body: json!({"id": id, "n": 1}),
        created_at: morningai_core::now(),
        updated_at: morningai_core::now(),
    };
    let t = obj("thread", thread, None, "idle");
    store.put_object(cx, &t).await.unwrap();
    let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .put_object(cx, &obj("run", r1, Some(thread), "success"))
        .await
        .unwrap();
    store
        .put_object(cx, &obj("run", r2, Some(thread), "pending"))
        .await
        .unwrap();
    assert_eq!(
        store.get_object(cx, "thread", thread).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(
        store.get_object(other, "thread", thread).await.unwrap(),
        None
    );
    let runs = store
        .list_objects(cx, "run", Some(thread), None, 10, 0)
        .await
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r2, r1],
        "newest first"
    );
    assert_eq!(
        store
            .list_objects(cx, "run", Some(thread), Some("pending"), 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_objects(cx, "run", None, None, 1, 1)
            .await
            .unwrap()[0]
            .id,
        r1,
        "limit and offset"
    );
    assert!(
        store
            .list_objects(other, "run", None, None, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let everywhere = store
        .objects_everywhere("run", "pending", 100_000)
        .await
        .unwrap();
    assert!(
        everywhere
            .iter()
            .any(|(tenant, o)| *tenant == cx.tenant_id && o.id == r2)
    );
    let updated = StoredObject {
        status: "busy".into(),
        body: json!({"n": 2}),
        updated_at: morningai_core::now(),
        ..t.clone()
    };
    store.put_object(cx, &updated).await.unwrap();
    let got = store
        .get_object(cx, "thread", thread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.status.as_str(), got.body, got.created_at),
        ("busy", json!({"n": 2}), t.created_at)
    );
    // Insert-only: refused for an existing id (nothing changes), taken for a new one, and
    // ids are per tenant.
    let mut again = updated.clone();
    again.body = json!({"n": 3});
    assert!(!store.insert_object(cx, &again).await.unwrap());
    let got = store
        .get_object(cx, "thread", thread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.body, json!({"n": 2}));
    let fresh = StoredObject {
        id: uuid::Uuid::now_v7(),
        ..again.clone()
    };
    assert!(store.insert_object(cx, &fresh).await.unwrap());
    assert!(
        store.insert_object(other, &again).await.unwrap(),
        "another tenant's id space"
    );
    // Deleting the other tenant's copy leaves this one.
    assert!(store.delete_object(other, "thread", thread).await.unwrap());
    assert!(
        store
            .get_object(cx, "thread", thread)
            .await
            .unwrap()
            .is_some()
    );
    assert!(!store.delete_object(other, "thread", thread).await.unwrap());
    assert!(store.delete_object(cx, "thread", thread).await.unwrap());
    assert_eq!(store.get_object(cx, "thread", thread).await.unwrap(), None);
}
