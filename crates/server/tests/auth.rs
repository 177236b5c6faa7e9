//! Authentication and authorisation against the real server, on both backends.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    signup_login_me_and_switch_tenant,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_revokes_the_session,
    bad_tokens_are_rejected,
    removed_members_lose_access_at_once,
    viewers_cannot_write,
    api_keys_never_exceed_their_creator,
    members_and_owners_rules,
    login_is_rate_limited,
    signup_can_be_disabled_and_validates,
    abuse_controls_for_a_hosted_deployment,
);

async fn signup_login_me_and_switch_tenant(app: TestApp) {
    let a = app.signup("ada").await;
    let (s, me) = app.get("/api/v1/me", &a.access).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["email"], a.email.as_str());
    assert_eq!(me["current_role"], "owner");
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1);
    // Case-insensitive email: login with upper case, duplicate sign-up refused.
    let again = app.login(&a.email.to_uppercase(), None).await;
    assert_eq!(again.tenant_id, a.tenant_id);
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": a.email.to_uppercase(), "password": PASSWORD})),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "email_taken");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": a.email, "password": "wrong password"})),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    // A second tenant, then switch into it.
    let (s, t2) = app
        .post("/api/v1/tenants", &a.access, json!({"name": "Second Co"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t2}");
    let (s, sw) = app
        .post(
            "/api/v1/auth/switch-tenant",
            &a.access,
            json!({"tenant_id": t2["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sw}");
    assert_eq!(sw["tenant"]["id"], t2["id"]);
    assert_eq!(sw["token_type"], "Bearer");
    assert_eq!(sw["expires_in"], 900);
    let (_, tenant) = app
        .get("/api/v1/tenant", sw["access_token"].as_str().unwrap())
        .await;
    assert_eq!(tenant["name"], "Second Co");
    let (_, me) = app.get("/api/v1/me", &a.access).await;
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
    // Login straight into a tenant; a tenant the user is not in answers 404.
    let into = app.login(&a.email, Some(t2["id"].as_str().unwrap())).await;
    assert_eq!(into.tenant_id, t2["id"].as_str().unwrap());
    let other = app.signup("other").await;
    let (s, b) = app
        .post(
            "/api/v1/auth/switch-tenant",
            &a.access,
            json!({"tenant_id": other.tenant_id}),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": a.email, "password": PASSWORD, "tenant_id": other.tenant_id})),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let a = app.signup("rot").await;
    let refresh = |tok: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": tok})),
            )
            .await
        }
    };
    let (s, r1) = refresh(a.refresh.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r1}");
    let second = r1["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, a.refresh);
    let (s, _) = app
        .get("/api/v1/me", r1["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    // Replaying the first token: reuse detected, family revoked, successor dead too.
    let (s, b) = refresh(a.refresh.clone()).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "refresh_token_reused");
    let (s, b) = refresh(second).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "refresh_token_reused");
    let (s, b) = refresh("mrt_unknown".into()).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    // The cookie works in place of the body, and is set HttpOnly/Secure/Strict.
    let fresh = app.login(&a.email, None).await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("morningai_refresh={}", fresh.refresh))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
}

async fn logout_revokes_the_session(app: TestApp) {
    let a = app.signup("bye").await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            Some(json!({"refresh_token": a.refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": a.refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
}

fn forge(header: serde_json::Value, claims: serde_json::Value, key: &[u8]) -> String {
    use hmac_sha256::sign;
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = URL_SAFE_NO_PAD.encode(sign(format!("{h}.{c}").as_bytes(), key));
    format!("{h}.{c}.{sig}")
}

mod hmac_sha256 {
    use sha2::{Digest, Sha256};
    /// HMAC-SHA256 (RFC 2104), to forge tokens independently of the server's JWT library.
    pub fn sign(msg: &[u8], key: &[u8]) -> Vec<u8> {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new()
            .chain_update(&ipad)
            .chain_update(msg)
            .finalize();
        Sha256::new()
            .chain_update(&opad)
            .chain_update(inner)
            .finalize()
            .to_vec()
    }
}

async fn bad_tokens_are_rejected(app: TestApp) {
    let a = app.signup("tok").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": a.user_id, "tid": a.tenant_id, "iat": now - 10, "exp": exp, "iss": "morningai"});
    let key = SIGNING_KEY.as_bytes();
    // The forger itself is right: a well-formed token signed with the key is accepted.
    let good = forge(json!({"alg": "HS256", "typ": "JWT"}), claims(now + 60), key);
    assert_eq!(app.get("/api/v1/me", &good).await.0, StatusCode::OK);
    let parts: Vec<&str> = a.access.split('.').collect();
    let tampered_payload = {
        let mut c = claims(now + 60);
        c["tid"] = json!(uuid::Uuid::now_v7());
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(c.to_string()),
            parts[2]
        )
    };
    let mut sig = parts[2].to_owned();
    let flipped = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(flipped);
    let cases = [
        (
            "expired",
            forge(json!({"alg": "HS256", "typ": "JWT"}), claims(now - 5), key),
        ),
        (
            "tampered signature",
            format!("{}.{}.{}", parts[0], parts[1], sig),
        ),
        ("tampered payload", tampered_payload),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(claims(now + 60).to_string())
            ),
        ),
        (
            "RS256 header, HMAC-signed (key confusion)",
            forge(json!({"alg": "RS256", "typ": "JWT"}), claims(now + 60), key),
        ),
        (
            "HS512",
            forge(json!({"alg": "HS512", "typ": "JWT"}), claims(now + 60), key),
        ),
        (
            "other key",
            forge(
                json!({"alg": "HS256", "typ": "JWT"}),
                claims(now + 60),
                b"another-key-another-key-another-key!",
            ),
        ),
        (
            "wrong issuer",
            forge(
                json!({"alg": "HS256"}),
                json!({"sub": a.user_id, "tid": a.tenant_id, "exp": now + 60, "iss": "evil"}),
                key,
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
        ("api key lookalike", "mai_doesnotexist".to_owned()),
    ];
    for (name, token) in cases {
        let (s, b) = app.get("/api/v1/me", &token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}: {b}");
        assert_eq!(b["code"], "unauthorized", "{name}: {b}");
    }
    let (s, b) = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn removed_members_lose_access_at_once(app: TestApp) {
    let owner = app.signup("boss").await;
    let m = app.member(&owner, "leaver", "member").await;
    let key = app.api_key(&m, None).await;
    assert_eq!(
        app.get("/api/v1/projects", &m.access).await.0,
        StatusCode::OK
    );
    assert_eq!(app.get("/api/v1/projects", &key).await.0, StatusCode::OK);
    let (s, _) = app
        .delete(
            &format!("/api/v1/tenant/members/{}", m.user_id),
            &owner.access,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.get("/api/v1/projects", &m.access).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "token still works: {b}");
    let (s, b) = app.get("/api/v1/projects", &key).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "their key still works: {b}");
}

async fn viewers_cannot_write(app: TestApp) {
    let owner = app.signup("own").await;
    let v = app.member(&owner, "viewer", "viewer").await;
    let (_, p) = app
        .post("/api/v1/projects", &owner.access, json!({"name": "P"}))
        .await;
    let (_, t) = app
        .post(
            "/api/v1/tasks",
            &owner.access,
            json!({"kind": "echo", "input": {}}),
        )
        .await;
    let pid = p["id"].as_str().unwrap();
    let tid = t["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/projects/{pid}"), &v.access)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/tasks/{tid}"), &v.access).await.0,
        StatusCode::OK
    );
    assert_eq!(app.get("/api/v1/tasks", &v.access).await.0, StatusCode::OK);
    let writes = [
        (
            Method::POST,
            "/api/v1/projects".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{pid}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/api/v1/projects/{pid}"), None),
        (
            Method::POST,
            "/api/v1/tasks".to_owned(),
            Some(json!({"kind": "echo", "input": {}})),
        ),
        (Method::POST, format!("/api/v1/tasks/{tid}/cancel"), None),
        (
            Method::PATCH,
            "/api/v1/tenant".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            "/api/v1/tenant/members".to_owned(),
            Some(json!({"email": owner.email, "role": "viewer"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/tenant/members/{}", owner.user_id),
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": "k"})),
        ),
        (Method::GET, "/api/v1/api-keys".to_owned(), None),
    ];
    for (method, path, body) in writes {
        let (s, b) = app.call(method.clone(), &path, Some(&v.access), body).await;
        assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    }
    // Nothing changed.
    let (_, p2) = app
        .get(&format!("/api/v1/projects/{pid}"), &owner.access)
        .await;
    assert_eq!(p2["name"], "P");
    let (_, t2) = app
        .get(&format!("/api/v1/tasks/{tid}"), &owner.access)
        .await;
    assert_eq!(t2["status"], "queued");
}

async fn api_keys_never_exceed_their_creator(app: TestApp) {
    let owner = app.signup("keyowner").await;
    let admin = app.member(&owner, "keyadmin", "admin").await;
    let (s, b) = app
        .post(
            "/api/v1/api-keys",
            &admin.access,
            json!({"name": "k", "role": "owner"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let key = app.api_key(&admin, Some("admin")).await;
    assert!(key.starts_with("mai_"));
    // Works as bearer and as x-api-key; the secret is never listed.
    assert_eq!(app.get("/api/v1/api-keys", &key).await.0, StatusCode::OK);
    let res = app
        .client
        .get(app.url("/api/v1/tenant"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, list) = app.get("/api/v1/api-keys", &owner.access).await;
    assert!(
        !list.to_string().contains(&key[12..]),
        "secret leaked in list"
    );
    assert_eq!(list[0]["prefix"], &key[..12]);
    // Demote the creator: the key's effective role drops with them, at once.
    let (s, _) = app
        .patch(
            &format!("/api/v1/tenant/members/{}", admin.user_id),
            &owner.access,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app.get("/api/v1/api-keys", &key).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .post("/api/v1/projects", &key, json!({"name": "x"}))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    // Revoked keys stop working; keys cannot create tenants or switch.
    let key2 = app.api_key(&owner, Some("member")).await;
    let (s, b) = app
        .post("/api/v1/tenants", &key2, json!({"name": "x"}))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (_, list) = app.get("/api/v1/api-keys", &owner.access).await;
    let id2 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == key2[..12])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete(&format!("/api/v1/api-keys/{id2}"), &owner.access)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/tenant", &key2).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn members_and_owners_rules(app: TestApp) {
    let owner = app.signup("o").await;
    let admin = app.member(&owner, "a", "admin").await;
    let plain = app.signup("p").await;
    // Admins add members but cannot grant owner or touch owners.
    let (s, b) = app
        .post(
            "/api/v1/tenant/members",
            &admin.access,
            json!({"email": plain.email, "role": "owner"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, m) = app
        .post(
            "/api/v1/tenant/members",
            &admin.access,
            json!({"email": plain.email, "role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let (s, b) = app
        .post(
            "/api/v1/tenant/members",
            &admin.access,
            json!({"email": plain.email, "role": "member"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "already_member");
    let (s, b) = app
        .post(
            "/api/v1/tenant/members",
            &admin.access,
            json!({"email": unique_email("ghost"), "role": "member"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app
        .patch(
            &format!("/api/v1/tenant/members/{}", owner.user_id),
            &admin.access,
            json!({"role": "viewer"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .delete(
            &format!("/api/v1/tenant/members/{}", owner.user_id),
            &admin.access,
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    // The last owner can neither leave nor step down.
    let (s, b) = app
        .patch(
            &format!("/api/v1/tenant/members/{}", owner.user_id),
            &owner.access,
            json!({"role": "admin"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "last_owner");
    let (s, b) = app
        .delete(
            &format!("/api/v1/tenant/members/{}", owner.user_id),
            &owner.access,
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "last_owner");
    // With a second owner, the first may step down.
    let (s, _) = app
        .patch(
            &format!("/api/v1/tenant/members/{}", admin.user_id),
            &owner.access,
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .patch(
            &format!("/api/v1/tenant/members/{}", owner.user_id),
            &owner.access,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, members) = app.get("/api/v1/tenant/members", &admin.access).await;
    let roles: Vec<_> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| *r == "owner").count(),
        1,
        "{members}"
    );
    // Every decision is in the audit log.
    let log = app
        .store
        .audit_log(
            morningai_core::TenantCtx::new(owner.tenant_id.parse().unwrap()),
            50,
            None,
        )
        .await
        .unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"member.add") && actions.contains(&"member.update"),
        "{actions:?}"
    );
    assert!(
        log.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")),
        "ip recorded"
    );
}

async fn login_is_rate_limited(app: TestApp) {
    let a = app.signup("rl").await;
    let mut limited = None;
    for i in 0..15 {
        let (s, b) = app
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": a.email, "password": "bad password"})),
            )
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(b["code"], "rate_limited");
            limited = Some(i);
            break;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        limited,
        Some(10),
        "the 11th attempt for one email within a minute is refused"
    );
    // Behind a proxy (the client is the last X-Forwarded-For hop), a stranger guessing the
    // password from many addresses uses up the account's budget for unknown clients, and
    // the owner's browser, which logged in before, still gets in.
    let proxied = spawn_app_with(app.backend, |c| {
        c.trust_forwarded_for = true;
        c.login_per_hour_per_account = 5;
    })
    .await;
    let owner = proxied.signup("rl-owner").await;
    let login = |from: String, password: &'static str, client: Option<String>| {
        let mut req = proxied
            .client
            .post(proxied.url("/api/v1/auth/login"))
            .header("x-forwarded-for", format!("10.9.8.7, {from}"))
            .json(&json!({"email": owner.email, "password": password}));
        if let Some(c) = client {
            req = req.header("cookie", format!("morningai_client={c}"));
        }
        req.send()
    };
    let res = login("198.51.100.7".into(), PASSWORD, None).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let remembered = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("morningai_client="))
        .and_then(|v| v.split(';').next())
        .expect("the client cookie")
        .to_owned();
    for i in 1..=4 {
        let res = login(format!("203.0.113.{i}"), "wrong guess", None)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let res = login("203.0.113.5".into(), "wrong guess", None)
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the account's budget is spent"
    );
    for (client, want) in [
        (None, StatusCode::TOO_MANY_REQUESTS),
        (Some("0".repeat(64)), StatusCode::TOO_MANY_REQUESTS),
        (Some(remembered), StatusCode::OK),
    ] {
        let res = login("198.51.100.8".into(), PASSWORD, client.clone())
            .await
            .unwrap();
        assert_eq!(res.status(), want, "{client:?}");
    }
}

async fn signup_can_be_disabled_and_validates(app: TestApp) {
    let closed = spawn_app_with(app.backend, |c| c.signup_enabled = false).await;
    let (s, b) = closed
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": unique_email("x"), "password": PASSWORD})),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "signup_disabled");
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": unique_email("s"), "password": "short"}),
            "password",
        ),
        (
            json!({"email": unique_email("s"), "password": PASSWORD, "tenant_name": "  "}),
            "tenant_name",
        ),
        (
            json!({"email": unique_email("s"), "password": 12345678}),
            "password",
        ),
        (
            json!({"email": unique_email("s"), "password": PASSWORD, "role": "owner"}),
            "role",
        ),
    ];
    for (body, field) in cases {
        let (s, b) = app
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(body.clone()),
            )
            .await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            b["errors"][0]["field"].as_str().unwrap().contains(field)
                || b["detail"].as_str().unwrap().contains(field),
            "{body} → {b}"
        );
    }
}

async fn abuse_controls_for_a_hosted_deployment(app: TestApp) {
    // Sign-ups are limited per client address.
    let limited = spawn_app_with(app.backend, |c| {
        c.signup_per_hour_per_ip = 2;
        c.metrics_token = Some("scrape-me".into());
    })
    .await;
    limited.signup("su1").await;
    limited.signup("su2").await;
    let res = limited
        .client
        .post(limited.url("/api/v1/auth/signup"))
        .json(&json!({"email": unique_email("su3"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "limits answer as problems too"
    );
    // /metrics takes its token.
    for (auth, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("Bearer wrong"), StatusCode::UNAUTHORIZED),
        (Some("Bearer scrape-me"), StatusCode::OK),
    ] {
        let mut req = limited.client.get(limited.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), want, "{auth:?}");
    }
    let production = spawn_app_with(app.backend, |c| {
        c.env = morningai_app::config::Environment::Production;
    })
    .await;
    let res = production
        .client
        .get(production.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "never open in production"
    );
    // Security headers on every answer: JSON, problems, health; HSTS only over TLS.
    let a = app.signup("headers").await;
    for (path, auth) in [
        ("/api/v1/me", Some(&a.access)),
        ("/api/v1/me", None),
        ("/healthz", None),
        ("/no/such/route", None),
    ] {
        let mut req = app.client.get(app.url(path));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(!h.contains_key("strict-transport-security"), "{path}");
    }
    let proxied = spawn_app_with(app.backend, |c| c.trust_forwarded_for = true).await;
    let res = proxied
        .client
        .get(proxied.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    // Internal task kinds are not for requests, from the API or a schedule.
    for (path, body) in [
        (
            "/api/v1/tasks",
            json!({"kind": "graph_run", "input": {"run_id": uuid::Uuid::now_v7()}}),
        ),
        (
            "/api/v1/schedules",
            json!({"name": "sneaky", "cron": "* * * * *", "kind": "graph_run", "input": {"run_id": uuid::Uuid::now_v7()}}),
        ),
    ] {
        let (s, b) = app.post(path, &a.access, body).await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(b["errors"][0]["field"], "kind", "{b}");
    }
}
