//! Resources, tenant isolation, bad input and observability against the real server, on
//! both backends.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    tasks_create_get_list_cancel,
    task_idempotency_and_validation,
    task_pagination_and_filters,
    projects_crud,
    tenant_isolation_everywhere,
    bad_input_is_a_clear_problem,
    random_bodies_never_cause_a_server_error,
    tracing_metrics_health_and_openapi,
    nul_characters_are_refused_by_every_operation,
    integers_beyond_their_documented_range_are_refused,
);

async fn tasks_create_get_list_cancel(app: TestApp) {
    let a = app.signup("tasks").await;
    let key = app.api_key(&a, Some("member")).await;
    let (s, t) = app
        .post(
            "/api/v1/tasks",
            &key,
            json!({"kind": "echo", "input": {"q": "hi"}, "priority": 7}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["status"], "queued");
    assert_eq!(t["priority"], 7);
    assert_eq!(t["kind"], "echo");
    assert_eq!(t["input"], json!({"q": "hi"}));
    assert_eq!(t["trace_id"].as_str().unwrap().len(), 32);
    let created_at = t["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok() && created_at.ends_with('Z'),
        "{created_at}"
    );
    let id = t["id"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(id).unwrap().get_version_num(),
        7,
        "ids are UUIDv7"
    );
    let (s, got) = app.get(&format!("/api/v1/tasks/{id}"), &key).await;
    assert_eq!((s, &got), (StatusCode::OK, &t));
    let (s, c) = app
        .post(&format!("/api/v1/tasks/{id}/cancel"), &key, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "cancelled");
    let (s, b) = app
        .post(&format!("/api/v1/tasks/{id}/cancel"), &key, json!(null))
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "task_finished");
    let unknown = uuid::Uuid::now_v7();
    let (s, b) = app
        .post(
            &format!("/api/v1/tasks/{unknown}/cancel"),
            &key,
            json!(null),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app.get(&format!("/api/v1/tasks/{unknown}"), &key).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    // A member cancels only their own tasks; admins cancel any.
    let m = app.member(&a, "m", "member").await;
    let (_, t2) = app
        .post("/api/v1/tasks", &a.access, json!({"kind": "echo"}))
        .await;
    let (s, b) = app
        .post(
            &format!("/api/v1/tasks/{}/cancel", t2["id"].as_str().unwrap()),
            &m.access,
            json!(null),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
}

async fn task_idempotency_and_validation(app: TestApp) {
    let a = app.signup("idem").await;
    let body = json!({"kind": "echo", "input": {"n": 1}, "idempotency_key": "order-42"});
    let (s1, t1) = app.post("/api/v1/tasks", &a.access, body.clone()).await;
    let (s2, t2) = app.post("/api/v1/tasks", &a.access, body).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(t1["id"], t2["id"]);
    let cases: &[(Value, &str)] = &[
        (json!({"kind": "nope"}), "kind"),
        (json!({"kind": "echo", "priority": 10}), "priority"),
        (json!({"kind": "echo", "priority": -1}), "priority"),
        (json!({"kind": "echo", "priority": "high"}), "priority"),
        (json!({"kind": "echo", "priority": 1.5}), "priority"),
        (json!({"kind": 5}), "kind"),
        (json!({"input": {}}), "kind"),
        (
            json!({"kind": "echo", "project_id": "not-a-uuid"}),
            "project_id",
        ),
        (
            json!({"kind": "echo", "project_id": uuid::Uuid::now_v7()}),
            "project_id",
        ),
        (
            json!({"kind": "echo", "idempotency_key": ""}),
            "idempotency_key",
        ),
        (json!({"kind": "echo", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (s, b) = app.post("/api/v1/tasks", &a.access, body.clone()).await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(b["errors"][0]["field"], *field, "{body} → {b}");
    }
}

async fn task_pagination_and_filters(app: TestApp) {
    let a = app.signup("page").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, t) = app
            .post(
                "/api/v1/tasks",
                &a.access,
                json!({"kind": "echo", "input": {"i": i}}),
            )
            .await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let (_, p) = app
        .post("/api/v1/projects", &a.access, json!({"name": "P"}))
        .await;
    let pid = p["id"].as_str().unwrap();
    let (_, tp) = app
        .post(
            "/api/v1/tasks",
            &a.access,
            json!({"kind": "echo", "project_id": pid}),
        )
        .await;
    app.post(
        &format!("/api/v1/tasks/{}/cancel", ids[0]),
        &a.access,
        json!(null),
    )
    .await;
    ids.push(tp["id"].as_str().unwrap().to_owned());
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tasks?limit=2&cursor={c}"),
            None => "/api/v1/tasks?limit=2".to_owned(),
        };
        let (s, page) = app.get(&path, &a.access).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "newest first, every task exactly once");
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    let (_, c) = app.get("/api/v1/tasks?status=cancelled", &a.access).await;
    assert_eq!(count(&c), 1);
    let (_, q) = app
        .get(&format!("/api/v1/tasks?project_id={pid}"), &a.access)
        .await;
    assert_eq!(count(&q), 1);
    let (_, k) = app
        .get("/api/v1/tasks?kind=echo&status=queued", &a.access)
        .await;
    assert_eq!(count(&k), 5);
    for (query, field) in [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=!!", "cursor"),
        ("project_id=42", "project_id"),
    ] {
        let (s, b) = app.get(&format!("/api/v1/tasks?{query}"), &a.access).await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(b["errors"][0]["field"], field, "{query}: {b}");
    }
}

async fn projects_crud(app: TestApp) {
    let a = app.signup("proj").await;
    let (s, p) = app
        .post(
            "/api/v1/projects",
            &a.access,
            json!({"name": "  Docs  ", "description": "d"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["name"], "Docs");
    let id = p["id"].as_str().unwrap();
    let (_, p2) = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            &a.access,
            json!({"name": "Guide"}),
        )
        .await;
    assert_eq!(
        (p2["name"].as_str(), p2["description"].as_str()),
        (Some("Guide"), Some("d"))
    );
    let (_, p3) = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            &a.access,
            json!({"description": null}),
        )
        .await;
    assert_eq!(
        (p3["name"].as_str(), p3["description"].is_null()),
        (Some("Guide"), true)
    );
    let (_, list) = app.get("/api/v1/projects", &a.access).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, b) = app
        .post("/api/v1/projects", &a.access, json!({"name": ""}))
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "name");
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{id}"), &a.access)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, b) = app.get(&format!("/api/v1/projects/{id}"), &a.access).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
}

/// Tenant B, with owner credentials (token and API key), aims at every one of tenant A's
/// ids: every call answers 404 and nothing of A's changes.
async fn tenant_isolation_everywhere(app: TestApp) {
    let a = app.signup("alice").await;
    let a_member = app.member(&a, "alices-colleague", "member").await;
    let (_, project) = app
        .post("/api/v1/projects", &a.access, json!({"name": "secret"}))
        .await;
    let (_, task) = app
        .post(
            "/api/v1/tasks",
            &a.access,
            json!({"kind": "echo", "input": {"secret": true}}),
        )
        .await;
    let a_key = app.api_key(&a, Some("admin")).await;
    let (_, keys) = app.get("/api/v1/api-keys", &a.access).await;
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    let (pid, tid) = (
        project["id"].as_str().unwrap(),
        task["id"].as_str().unwrap(),
    );

    let b = app.signup("bob").await;
    let b_key = app.api_key(&b, None).await;
    for cred in [&b.access, &b_key] {
        let calls = [
            (Method::GET, format!("/api/v1/projects/{pid}"), None),
            (
                Method::PATCH,
                format!("/api/v1/projects/{pid}"),
                Some(json!({"name": "pwned"})),
            ),
            (Method::DELETE, format!("/api/v1/projects/{pid}"), None),
            (Method::GET, format!("/api/v1/tasks/{tid}"), None),
            (Method::POST, format!("/api/v1/tasks/{tid}/cancel"), None),
            (Method::DELETE, format!("/api/v1/api-keys/{key_id}"), None),
            (
                Method::PATCH,
                format!("/api/v1/tenant/members/{}", a_member.user_id),
                Some(json!({"role": "viewer"})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/tenant/members/{}", a_member.user_id),
                None,
            ),
            (
                Method::POST,
                "/api/v1/auth/switch-tenant".to_owned(),
                Some(json!({"tenant_id": a.tenant_id})),
            ),
        ];
        for (method, path, body) in calls {
            let (s, resp) = app.call(method.clone(), &path, Some(cred), body).await;
            if path.ends_with("switch-tenant") && cred.starts_with("mai_") {
                assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {resp}");
                continue;
            }
            assert_problem(s, &resp, StatusCode::NOT_FOUND, "not_found");
            assert!(!resp.to_string().contains("secret"), "{resp}");
        }
        // B's listings never show A's data; a task cannot point at A's project.
        let (_, tasks) = app.get("/api/v1/tasks", cred).await;
        assert!(tasks["items"].as_array().unwrap().is_empty(), "{tasks}");
        let (_, projects) = app.get("/api/v1/projects", cred).await;
        assert!(projects.as_array().unwrap().is_empty());
        let (_, members) = app.get("/api/v1/tenant/members", cred).await;
        assert_eq!(members.as_array().unwrap().len(), 1);
        let (s, resp) = app
            .post(
                "/api/v1/tasks",
                cred,
                json!({"kind": "echo", "project_id": pid}),
            )
            .await;
        assert_problem(
            s,
            &resp,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    // Nothing of A's changed.
    let (_, p) = app.get(&format!("/api/v1/projects/{pid}"), &a.access).await;
    assert_eq!(p["name"], "secret");
    let (_, t) = app.get(&format!("/api/v1/tasks/{tid}"), &a.access).await;
    assert_eq!(t["status"], "queued");
    assert_eq!(
        app.get("/api/v1/tenant", &a_key).await.0,
        StatusCode::OK,
        "A's key survived"
    );
    let (_, m) = app.get("/api/v1/tenant/members", &a.access).await;
    let colleague = m
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["user_id"] == a_member.user_id.as_str())
        .cloned();
    assert_eq!(colleague.unwrap()["role"], "member");
}

async fn bad_input_is_a_clear_problem(app: TestApp) {
    let a = app.signup("bad").await;
    let raw = |method: Method, path: &str, ctype: Option<&str>, body: Vec<u8>| {
        let mut r = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&a.access)
            .body(body);
        if let Some(c) = ctype {
            r = r.header("content-type", c);
        }
        async move {
            let res = r.send().await.unwrap();
            let s = res.status();
            let ct = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: Value = res.json().await.unwrap_or(Value::Null);
            (s, ct, v)
        }
    };
    let json_ct = Some("application/json");
    /// method, path, content type, body, expected status, expected code
    type Case<'a> = (
        Method,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/v1/tasks",
            json_ct,
            b"{\"kind\": \"echo\",".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json_ct,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json_ct,
            b"[1,2]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            json_ct,
            format!("{{\"kind\":\"echo\",\"input\":\"{}\"}}", "x".repeat(70_000)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        // Far over the limit: the answer is read, never a reset connection (the server drains
        // what the client is still sending before it answers).
        (
            Method::POST,
            "/api/v1/documents",
            json_ct,
            vec![b' '; 3_000_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            Method::GET,
            "/api/v1/tasks/not-a-uuid",
            None,
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_path_parameter",
        ),
        (
            Method::GET,
            "/api/v1/projects/123",
            None,
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_path_parameter",
        ),
        (
            Method::PATCH,
            "/api/v1/tenant/members/zzz",
            json_ct,
            b"{\"role\":\"admin\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_path_parameter",
        ),
        (
            Method::POST,
            "/api/v1/tenant/members",
            json_ct,
            b"{\"email\":\"x@y.io\",\"role\":\"god\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/tenant/members",
            json_ct,
            b"{\"email\":\"nope\",\"role\":\"admin\"}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::GET,
            "/api/v1/does-not-exist",
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            Method::GET,
            "/nowhere",
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
        (
            Method::DELETE,
            "/api/v1/tasks",
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, ct, body, want, code) in cases {
        let (s, ctype, b) = raw(method.clone(), path, ct, body).await;
        assert_eq!(
            ctype.as_deref(),
            Some("application/problem+json"),
            "{method} {path}"
        );
        assert_problem(s, &b, want, code);
    }
    // The field is named for type errors deep in the body.
    let (s, b) = app
        .post(
            "/api/v1/tenant/members",
            &a.access,
            json!({"email": "x@y.io", "role": "god"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["errors"][0]["field"], "role", "{b}");
    let (_, _, b) = raw(Method::GET, "/api/v1/tasks/not-a-uuid", None, vec![]).await;
    assert!(b["detail"].as_str().unwrap().contains("id"), "{b}");
}

/// A fixed-seed stream of random and mutated bodies: whatever arrives, the answer is a
/// 2xx or a 4xx problem, never a 5xx.
async fn random_bodies_never_cause_a_server_error(app: TestApp) {
    let a = app.signup("fuzz").await;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let seeds = [
        r#"{"kind":"echo","input":{"a":1},"priority":5,"idempotency_key":"k"}"#,
        r#"{"name":"p","description":"d"}"#,
        r#"{"email":"a@b.io","role":"member"}"#,
    ];
    let paths = [
        "/api/v1/tasks",
        "/api/v1/projects",
        "/api/v1/tenant/members",
        "/api/v1/api-keys",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
    ];
    let alphabet = b"{}[]\":,0123456789-.eE+ truefalsnul\\u00ffkindechoinputpriority";
    for i in 0..240 {
        let mut body = seeds[i % seeds.len()].as_bytes().to_vec();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % (body.len() + 1);
            match next() % 3 {
                0 if !body.is_empty() => {
                    body.remove(pos.min(body.len() - 1));
                }
                1 => body.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                _ => body.insert(pos, (next() % 256) as u8),
            }
        }
        let path = paths[(next() as usize) % paths.len()];
        let res = app
            .client
            .post(app.url(path))
            .bearer_auth(&a.access)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let s = res.status();
        assert!(
            !s.is_server_error(),
            "{path} {:?} → {s}",
            String::from_utf8_lossy(&body)
        );
        if s.is_client_error() {
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
    }
}

async fn tracing_metrics_health_and_openapi(app: TestApp) {
    let a = app.signup("obs").await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&a.access)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"kind": "echo"}))
        .send()
        .await
        .unwrap();
    let tp = res.headers()["traceparent"].to_str().unwrap().to_owned();
    assert!(
        tp.starts_with(&format!("00-{trace}-")) && tp.ends_with("-01"),
        "{tp}"
    );
    assert!(res.headers().contains_key("x-request-id"));
    let task: Value = res.json().await.unwrap();
    assert_eq!(
        task["trace_id"], trace,
        "the task keeps the creating request's trace id"
    );
    // Errors carry the same trace id.
    let res = app
        .client
        .get(app.url("/api/v1/tasks/nope"))
        .bearer_auth(&a.access)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["trace_id"], trace);

    let (s, h) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, r) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["database"], "ok");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total{"), "{metrics}");
    assert!(
        metrics.contains(r#"route="/api/v1/tasks""#),
        "route label: {metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "histogram"
    );
    assert!(metrics.contains("db_pool_connections"), "pool gauge");

    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/switch-tenant", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/tenant", "get"),
        ("/api/v1/tenant", "patch"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/tenant/members", "get"),
        ("/api/v1/tenant/members", "post"),
        ("/api/v1/tenant/members/{user_id}", "patch"),
        ("/api/v1/tenant/members/{user_id}", "delete"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys", "get"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/projects", "post"),
        ("/api/v1/projects", "get"),
        ("/api/v1/projects/{id}", "get"),
        ("/api/v1/projects/{id}", "patch"),
        ("/api/v1/projects/{id}", "delete"),
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks/{id}", "get"),
        ("/api/v1/tasks/{id}/cancel", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/tasks/{id}/events", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/schedules", "post"),
        ("/api/v1/schedules", "get"),
        ("/api/v1/schedules/{id}", "delete"),
        ("/api/v1/queue", "get"),
        ("/api/v1/queue/dead", "get"),
        ("/api/v1/queue/dead", "delete"),
        ("/api/v1/queue/dead/{id}", "delete"),
        ("/api/v1/queue/dead/{id}/retry", "post"),
        ("/api/v1/approvals", "get"),
        ("/api/v1/approvals/{id}/approve", "post"),
        ("/api/v1/approvals/{id}/reject", "post"),
        ("/api/v1/graphs", "post"),
        ("/api/v1/graphs", "get"),
        ("/api/v1/graphs/{id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from OpenAPI"
        );
    }
}

/// The schema a `$ref` points to (or the schema itself).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => schema,
    }
}

/// Every operation of the OpenAPI document with a JSON body, a query or a text path
/// parameter gets a U+0000 in it: each answers 422 naming that field, on both backends
/// (PostgreSQL would otherwise fail to store it, SQLite would store it).
async fn nul_characters_are_refused_by_every_operation(app: TestApp) {
    let a = app.signup("nul").await;
    let (_, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let mut tried = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        // Chat platforms' webhooks read nothing before the connection's signature verifies
        // (an unknown connection is 404 whatever the body); a NUL in a verified body is
        // tested in integrations.rs.
        if path.starts_with("/hooks/") {
            continue;
        }
        for (method, op) in ops.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut url = path.clone();
            let mut required_query = Vec::new();
            for p in &params {
                let name = p["name"].as_str().unwrap();
                let uuid = p["schema"]["format"] == "uuid";
                let value = if uuid {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    "x".into()
                };
                match p["in"].as_str() {
                    Some("path") => url = url.replace(&format!("{{{name}}}"), &value),
                    Some("query") if p["required"] == true => {
                        required_query.push(format!("{name}={value}"))
                    }
                    _ => {}
                }
            }
            let query = |extra: Option<String>| {
                let all: Vec<String> = required_query.iter().cloned().chain(extra).collect();
                if all.is_empty() {
                    String::new()
                } else {
                    format!("?{}", all.join("&"))
                }
            };
            // A JSON body: a NUL in its first property (or a whole-body string).
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            if !body.is_null() {
                let schema = resolve(&doc, body);
                let field = schema["properties"]
                    .as_object()
                    .and_then(|p| p.keys().next().cloned())
                    .unwrap_or_else(|| "name".to_owned());
                let (s, b) = app
                    .call(
                        method.clone(),
                        &format!("{url}{}", query(None)),
                        Some(&a.access),
                        Some(json!({ field.clone(): "a\u{0}b" })),
                    )
                    .await;
                assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}: {b}");
                assert_eq!(
                    b["errors"][0]["field"],
                    field.as_str(),
                    "{method} {path}: {b}"
                );
                assert!(
                    b["errors"][0]["message"].as_str().unwrap().contains("NUL"),
                    "{b}"
                );
                tried += 1;
            }
            // Each query parameter, as %00.
            for p in params.iter().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                let q = query(Some(format!("{name}=%00")));
                let (s, b) = app
                    .call(
                        method.clone(),
                        &format!("{url}{q}"),
                        Some(&a.access),
                        (!body.is_null()).then(|| json!({})),
                    )
                    .await;
                assert_eq!(
                    s,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{method} {path}?{name}: {b}"
                );
                assert_eq!(b["errors"][0]["field"], name, "{method} {path}: {b}");
                tried += 1;
            }
        }
    }
    assert!(tried > 40, "only {tried} operations tried");
    // A text path parameter.
    let (s, b) = app.get("/assistants/%00", &a.access).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // A NUL beside a field the typed parse would skip without reading (a number out of
    // range, a lone surrogate) is still refused.
    for body in [
        r#"{"namespace":["a\u0000"],"key":"k","value":{},"x":1e400}"#,
        r#"{"namespace":["a\u0000"],"key":"k","value":{},"x":"\ud800"}"#,
    ] {
        let res = app
            .client
            .put(app.url("/store/items"))
            .bearer_auth(&a.access)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{body}: {}", res.status());
    }
    let (s, spaces) = app.post("/store/namespaces", &a.access, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{spaces}");
    assert!(
        !spaces.to_string().contains("\\u0000"),
        "a NUL was stored: {spaces}"
    );
}

/// What the OpenAPI document says an integer may be is what the server takes: an unsigned
/// 32-bit field is documented up to 2^32 - 1 (not `int32`'s 2^31 - 1), and an integer
/// above 2^63 - 1 (which an unsigned 64-bit field, or stored JSON, would take) is refused
/// at the edge with 422 naming the field.
async fn integers_beyond_their_documented_range_are_refused(app: TestApp) {
    let a = app.signup("ints").await;
    let (_, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let offset = &doc["components"]["schemas"]["ThreadSearch"]["properties"]["offset"];
    assert_eq!(offset["maximum"], json!(4_294_967_295_u64), "{offset}");
    assert_eq!(offset["format"], "int64", "{offset}");
    let limit = &doc["components"]["schemas"]["ThreadSearch"]["properties"]["limit"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&json!(1), &json!(1000))
    );

    let (s, b) = app
        .post(
            "/threads/search",
            &a.access,
            json!({"offset": 2_147_483_648_u64}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "documented, so accepted: {b}");
    let (s, b) = app
        .post(
            "/threads/search",
            &a.access,
            json!({"offset": 4_294_967_296_u64}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["errors"][0]["field"], "offset", "{b}");

    let (s, b) = app
        .post(
            "/store/items/search",
            &a.access,
            json!({"namespace_prefix": ["a"], "offset": 9_223_372_036_854_775_808_u64}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["errors"][0]["field"], "offset", "{b}");
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2^63 - 1"),
        "{b}"
    );
    // Inside stored JSON too, where no type would catch it; 2^63 - 1 itself is fine.
    let put = |n: Value| {
        app.call(
            Method::PUT,
            "/store/items",
            Some(&a.access),
            Some(json!({"namespace": ["a"], "key": "k", "value": {"n": n}})),
        )
    };
    let (s, b) = put(json!([1, 9_223_372_036_854_775_808_u64])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["errors"][0]["field"], "value.n[1]", "{b}");
    let (s, b) = put(json!(i64::MAX)).await;
    assert!(s.is_success(), "{s}: {b}");
}
