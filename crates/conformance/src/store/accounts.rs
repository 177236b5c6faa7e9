//! Accounts and tenancy: users, tenants, members, API keys, refresh tokens, projects, the
//! audit log.

use super::*;
use chrono::{Duration, Utc};
use morningai_core::{Email, Role, UserId};
use serde_json::json;
use uuid::Uuid;

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
