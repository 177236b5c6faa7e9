//! The LangGraph-compatible API and approvals over HTTP, on both backends, with workers
//! running the graph runs: approvals (roles, self-approval, audit, resume), multitask
//! strategies, tenant isolation of threads and runs, time travel through the API.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

running_on_both_backends!(super::running_app;
    approvals_resume_runs_and_follow_the_graph_policy,
    multitask_reject_refuses_a_second_run,
    threads_and_runs_are_tenant_isolated,
    state_update_and_time_travel_through_the_api,
    uploaded_definitions_are_validated_and_run,
    every_path_past_an_interrupt_takes_the_approval_policy,
    runaway_runs_stop_at_the_server_ceilings,
);

async fn running_app(backend: Backend) -> TestApp {
    let db = own_database(backend).await;
    spawn_app_with(backend, |c| {
        c.worker_concurrency = 4;
        c.job_lease_secs = 2;
        c.retry_base_ms = 50;
        // Ceilings low enough for a looping graph to reach each of them quickly.
        c.run_max_steps = 300;
        c.run_max_state_bytes = 64 * 1024;
        c.run_max_events = 400;
        c.run_max_event_bytes = 256 * 1024;
        c.run_max_secs = 8;
        if db.is_some() {
            c.database_url = db;
        }
    })
    .await
}

impl TestApp {
    async fn lg(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(auth), body).await
    }

    async fn wait_run(&self, auth: &str, thread: &str, run: &str, want: &str) -> Value {
        let start = Instant::now();
        loop {
            let (s, r) = self
                .lg(
                    reqwest::Method::GET,
                    &format!("/threads/{thread}/runs/{run}"),
                    auth,
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{r}");
            if r["status"] == want {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "run stuck: {r}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Starts a run on `thread` and waits until it reaches `status`.
    async fn run_until(&self, auth: &str, thread: &str, body: Value, status: &str) -> Value {
        let (s, run) = self
            .post(&format!("/threads/{thread}/runs"), auth, body)
            .await;
        assert_eq!(s, StatusCode::OK, "{run}");
        self.wait_run(auth, thread, run["run_id"].as_str().unwrap(), status)
            .await
    }

    async fn new_thread(&self, auth: &str) -> String {
        let (s, t) = self
            .lg(reqwest::Method::POST, "/threads", auth, Some(json!({})))
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        t["thread_id"].as_str().unwrap().to_owned()
    }

    async fn pending_approval(&self, auth: &str, thread: &str) -> Value {
        let start = Instant::now();
        loop {
            let (s, list) = self.get("/api/v1/approvals?status=pending", auth).await;
            assert_eq!(s, StatusCode::OK, "{list}");
            if let Some(a) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["thread_id"] == thread)
            {
                return a.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no approval appeared"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

async fn approvals_resume_runs_and_follow_the_graph_policy(app: TestApp) {
    let owner = app.signup("appr-owner").await;
    let member = app.member(&owner, "appr-member", "member").await;
    let admin = app.member(&owner, "appr-admin", "admin").await;
    // A member starts the run; it pauses for approval.
    let thread = app.new_thread(&member.access).await;
    let (s, run) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &member.access,
            json!({"assistant_id": "approval", "input": {"topic": "Rust"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    app.wait_run(
        &member.access,
        &thread,
        run["run_id"].as_str().unwrap(),
        "interrupted",
    )
    .await;
    let approval = app.pending_approval(&admin.access, &thread).await;
    assert_eq!(approval["value"]["question"], "Publish this draft?");
    let id = approval["id"].as_str().unwrap().to_owned();
    // Members may not decide (policy: admin+); nobody may approve their own run.
    let (s, b) = app
        .post(
            &format!("/api/v1/approvals/{id}/approve"),
            &member.access,
            json!({"comment": "mine"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    // Another tenant cannot see or decide it.
    let stranger = app.signup("appr-stranger").await;
    let (s, b) = app
        .post(
            &format!("/api/v1/approvals/{id}/approve"),
            &stranger.access,
            json!({}),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (_, theirs) = app
        .get("/api/v1/approvals?status=pending", &stranger.access)
        .await;
    assert_eq!(theirs, json!([]));
    // An admin approves with a comment: the run resumes and publishes.
    let (s, decided) = app
        .post(
            &format!("/api/v1/approvals/{id}/approve"),
            &admin.access,
            json!({"comment": "ship it"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{decided}");
    let resumed = decided["run"]["run_id"].as_str().unwrap().to_owned();
    app.wait_run(&admin.access, &thread, &resumed, "success")
        .await;
    let (_, st) = app
        .lg(
            reqwest::Method::GET,
            &format!("/threads/{thread}/state"),
            &admin.access,
            None,
        )
        .await;
    assert_eq!(st["values"]["status"], "published", "{st}");
    assert_eq!(st["values"]["decision"]["comment"], "ship it");
    let (s, b) = app
        .post(
            &format!("/api/v1/approvals/{id}/reject"),
            &admin.access,
            json!({}),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "approval_decided");
    let (_, done) = app
        .get("/api/v1/approvals?status=approved", &admin.access)
        .await;
    assert_eq!(done[0]["decided_by"], admin.user_id.as_str());
    // A rejection ends the run the other way; the audit log has both decisions.
    let t2 = app.new_thread(&member.access).await;
    app.run_until(
        &member.access,
        &t2,
        json!({"assistant_id": "approval", "input": {"topic": "Go"}}),
        "interrupted",
    )
    .await;
    let a2 = app.pending_approval(&owner.access, &t2).await;
    let (s, d2) = app
        .post(
            &format!("/api/v1/approvals/{}/reject", a2["id"].as_str().unwrap()),
            &owner.access,
            json!({"comment": "no"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d2}");
    app.wait_run(
        &owner.access,
        &t2,
        d2["run"]["run_id"].as_str().unwrap(),
        "success",
    )
    .await;
    let (_, st2) = app
        .lg(
            reqwest::Method::GET,
            &format!("/threads/{t2}/state"),
            &owner.access,
            None,
        )
        .await;
    assert_eq!(st2["values"]["status"], "rejected");
    let log = app
        .store
        .audit_log(
            morningai_core::TenantCtx::new(owner.tenant_id.parse().unwrap()),
            100,
            None,
        )
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"approval.approve") && actions.contains(&"approval.reject"),
        "{actions:?}"
    );
    let (s, b) = app
        .get("/api/v1/approvals?status=maybe", &owner.access)
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

async fn multitask_reject_refuses_a_second_run(app: TestApp) {
    let a = app.signup("mt").await;
    let thread = app.new_thread(&a.access).await;
    let (s, first) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &a.access,
            json!({"assistant_id": "steps", "input": {"target": 5, "sleep_ms": 200}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, b) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &a.access,
            json!({"assistant_id": "steps", "input": {}, "multitask_strategy": "reject"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "thread_busy");
    let (s, b) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &a.access,
            json!({"assistant_id": "steps", "multitask_strategy": "sometimes"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // enqueue (the default) runs after the first.
    let (s, second) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &a.access,
            json!({"assistant_id": "steps", "input": {"target": 6}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    app.wait_run(
        &a.access,
        &thread,
        first["run_id"].as_str().unwrap(),
        "success",
    )
    .await;
    app.wait_run(
        &a.access,
        &thread,
        second["run_id"].as_str().unwrap(),
        "success",
    )
    .await;
    let (_, st) = app
        .lg(
            reqwest::Method::GET,
            &format!("/threads/{thread}/state"),
            &a.access,
            None,
        )
        .await;
    assert_eq!(
        st["values"]["log"],
        json!([1, 2, 3, 4, 5, 6]),
        "the second run continued the thread"
    );
    let (s, b) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &a.access,
            json!({"assistant_id": "no-such-graph"}),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
}

async fn threads_and_runs_are_tenant_isolated(app: TestApp) {
    let a = app.signup("lg-a").await;
    let b = app.signup("lg-b").await;
    let thread = app.new_thread(&a.access).await;
    let (_, run) = app.post(&format!("/threads/{thread}/runs"), &a.access, json!({"assistant_id": "echo", "input": {"messages": [{"role": "user", "content": "secret"}]}})).await;
    let rid = run["run_id"].as_str().unwrap();
    app.wait_run(&a.access, &thread, rid, "success").await;
    for (method, path, body) in [
        (reqwest::Method::GET, format!("/threads/{thread}"), None),
        (
            reqwest::Method::GET,
            format!("/threads/{thread}/state"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/threads/{thread}/history"),
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            format!("/threads/{thread}/state"),
            Some(json!({"values": {"messages": "x"}})),
        ),
        (reqwest::Method::DELETE, format!("/threads/{thread}"), None),
        (
            reqwest::Method::POST,
            format!("/threads/{thread}/runs"),
            Some(json!({"assistant_id": "echo", "input": {}})),
        ),
        (
            reqwest::Method::GET,
            format!("/threads/{thread}/runs"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/threads/{thread}/runs/{rid}"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/threads/{thread}/runs/{rid}/cancel"),
            None,
        ),
    ] {
        let (s, resp) = app.lg(method.clone(), &path, &b.access, body).await;
        assert_problem(s, &resp, StatusCode::NOT_FOUND, "not_found");
        assert!(
            !resp.to_string().contains("secret"),
            "{method} {path}: {resp}"
        );
    }
    let (_, found) = app
        .lg(
            reqwest::Method::POST,
            "/threads/search",
            &b.access,
            Some(json!({})),
        )
        .await;
    assert_eq!(found, json!([]));
    let (_, st) = app
        .lg(
            reqwest::Method::GET,
            &format!("/threads/{thread}/state"),
            &a.access,
            None,
        )
        .await;
    assert_eq!(
        st["values"]["messages"][1]["content"], "secret",
        "A's thread is intact"
    );
    let (s, b2) = app
        .call(reqwest::Method::POST, "/threads", None, Some(json!({})))
        .await;
    assert_problem(s, &b2, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn state_update_and_time_travel_through_the_api(app: TestApp) {
    let a = app.signup("tt").await;
    let thread = app.new_thread(&a.access).await;
    let (s, out) = app
        .post(
            &format!("/threads/{thread}/runs/wait"),
            &a.access,
            json!({"assistant_id": "steps", "input": {"target": 3}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["log"], json!([1, 2, 3]));
    let (_, hist) = app
        .lg(
            reqwest::Method::POST,
            &format!("/threads/{thread}/history"),
            &a.access,
            Some(json!({"limit": 10})),
        )
        .await;
    let hist = hist.as_array().unwrap().clone();
    assert_eq!(hist.len(), 4);
    let after_first = hist[2]["checkpoint"]["checkpoint_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(hist[2]["values"]["log"], json!([1]));
    // Fork from after the first step with a raised target: the run continues from there.
    let (s, upd) = app
        .post(
            &format!("/threads/{thread}/state"),
            &a.access,
            json!({"values": {"target": 5}, "checkpoint_id": after_first, "as_node": "step"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{upd}");
    let fork = upd["checkpoint"]["checkpoint_id"].as_str().unwrap();
    let (s, out) = app
        .post(
            &format!("/threads/{thread}/runs/wait"),
            &a.access,
            json!({"assistant_id": "steps", "checkpoint_id": fork, "input": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let (_, st) = app
        .lg(
            reqwest::Method::GET,
            &format!("/threads/{thread}/state"),
            &a.access,
            None,
        )
        .await;
    assert_eq!(st["values"]["log"], json!([1, 2, 3, 4, 5]), "{st}");
    let (_, old) = app
        .lg(
            reqwest::Method::GET,
            &format!(
                "/threads/{thread}/state/{}",
                hist[0]["checkpoint"]["checkpoint_id"].as_str().unwrap()
            ),
            &a.access,
            None,
        )
        .await;
    assert_eq!(
        old["values"]["log"],
        json!([1, 2, 3]),
        "the original branch is kept"
    );
    let (s, b) = app
        .post(
            &format!("/threads/{thread}/state"),
            &a.access,
            json!({"values": {"nope": 1}}),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

/// Writes a draft, asks a person (an `ask` node: an interrupt), then publishes or discards.
fn review_flow() -> Value {
    json!({
        "channels": {"topic": {}, "draft": {}, "decision": {}, "log": {"reducer": "append"}},
        "nodes": {
            "write": {"type": "template", "config": {"channel": "draft", "template": "About {topic}"}},
            "review": {"type": "ask", "config": {"channel": "decision", "prompt": "Publish?"}},
            "publish": {"type": "set", "config": {"channel": "log", "value": "published"}},
            "discard": {"type": "set", "config": {"channel": "log", "value": "discarded"}}
        },
        "edges": [{"from": "__start__", "to": "write"}, {"from": "write", "to": "review"}],
        "conditional_edges": [{"from": "review", "channel": "decision.approved", "routes": {"true": "publish"}, "default": "discard"}]
    })
}

async fn uploaded_definitions_are_validated_and_run(app: TestApp) {
    let owner = app.signup("defs").await;
    let member = app.member(&owner, "defs-member", "member").await;
    let definition = review_flow();
    // Invalid definitions: every problem, each with its path.
    let mut bad = definition.clone();
    bad["nodes"]["write"]["type"] = json!("teleport");
    bad["edges"][1]["to"] = json!("nowhere");
    let (s, b) = app
        .post(
            "/api/v1/graphs",
            &owner.access,
            json!({"name": "broken", "definition": bad}),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"definition.nodes.write.type")
            && fields.contains(&"definition.edges[1].to"),
        "{b}"
    );
    let (s, b) = app
        .post(
            "/api/v1/graphs",
            &owner.access,
            json!({"name": "y", "definition_yaml": "channels: ["}),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (s, b) = app
        .post(
            "/api/v1/graphs",
            &member.access,
            json!({"name": "m", "definition": definition}),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    // A valid one, whose approvals expire after a second (then it takes the default branch).
    let (s, g) = app
        .post("/api/v1/graphs", &owner.access, json!({"name": "review-flow", "definition": definition, "approvals": {"min_role": "member", "allow_self": true, "expires_after_secs": 1}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["graph_id"], "custom:review-flow");
    let (s, b) = app
        .post(
            "/api/v1/graphs",
            &owner.access,
            json!({"name": "review-flow", "definition": definition}),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "graph_exists");
    let (_, assistants) = app
        .lg(
            reqwest::Method::POST,
            "/assistants/search",
            &member.access,
            Some(json!({})),
        )
        .await;
    assert!(
        assistants
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["graph_id"] == "custom:review-flow")
    );
    // Run it; the member approves their own run (allowed by this graph's policy).
    let thread = app.new_thread(&member.access).await;
    app.run_until(
        &member.access,
        &thread,
        json!({"assistant_id": g["assistant_id"], "input": {"topic": "Rust"}}),
        "interrupted",
    )
    .await;
    let a = app.pending_approval(&member.access, &thread).await;
    let (s, d) = app
        .post(
            &format!("/api/v1/approvals/{}/approve", a["id"].as_str().unwrap()),
            &member.access,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    app.wait_run(
        &member.access,
        &thread,
        d["run"]["run_id"].as_str().unwrap(),
        "success",
    )
    .await;
    let (_, st) = app
        .lg(
            reqwest::Method::GET,
            &format!("/threads/{thread}/state"),
            &member.access,
            None,
        )
        .await;
    assert_eq!(
        (st["values"]["draft"].clone(), st["values"]["log"].clone()),
        (json!("About Rust"), json!(["published"])),
        "{st}"
    );
    // Nobody answers: the approval expires and the run resumes down the default branch.
    let t2 = app.new_thread(&member.access).await;
    app.run_until(
        &member.access,
        &t2,
        json!({"assistant_id": "custom:review-flow", "input": {"topic": "Go"}}),
        "interrupted",
    )
    .await;
    let start = Instant::now();
    loop {
        let (_, st) = app
            .lg(
                reqwest::Method::GET,
                &format!("/threads/{t2}/state"),
                &member.access,
                None,
            )
            .await;
        if st["values"]["log"] == json!(["discarded"]) {
            assert_eq!(st["values"]["decision"]["expired"], true);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the approval never expired: {st}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, expired) = app
        .get("/api/v1/approvals?status=expired", &member.access)
        .await;
    assert_eq!(expired.as_array().unwrap().len(), 1);
    // Per-tenant retention setting.
    let (s, t) = app
        .patch(
            "/api/v1/tenant",
            &owner.access,
            json!({"checkpoint_ttl_days": 7}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, b) = app
        .patch(
            "/api/v1/tenant",
            &owner.access,
            json!({"checkpoint_ttl_days": -1}),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (_, list) = app.get("/api/v1/graphs", &owner.access).await;
    let gid = list[0]["assistant_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/api/v1/graphs/{gid}"), &owner.access)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

async fn every_path_past_an_interrupt_takes_the_approval_policy(app: TestApp) {
    let owner = app.signup("gate-owner").await;
    let member = app.member(&owner, "gate-member", "member").await;
    let admin = app.member(&owner, "gate-admin", "admin").await;
    // A member's run of the built-in approval graph (policy: admin+, no self-approval).
    let thread = app.new_thread(&member.access).await;
    app.run_until(
        &member.access,
        &thread,
        json!({"assistant_id": "approval", "input": {"topic": "Rust"}}),
        "interrupted",
    )
    .await;
    let approval = app.pending_approval(&admin.access, &thread).await;
    let (_, hist) = app
        .post(
            &format!("/threads/{thread}/history"),
            &member.access,
            json!({"limit": 10}),
        )
        .await;
    let interrupted = hist[0]["checkpoint"]["checkpoint_id"].clone();
    let earlier = hist[1]["checkpoint"]["checkpoint_id"].clone();
    let runs = format!("/threads/{thread}/runs");
    let state = format!("/threads/{thread}/state");
    // Every way a member could move the run past the interrupt without a decision.
    for (who, path, body, status, code) in [
        (
            &member,
            &runs,
            json!({"assistant_id": "approval", "command": {"resume": {"approved": true}}}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &member,
            &runs,
            json!({"assistant_id": "approval", "command": {"resume": "yes"}}),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &member,
            &runs,
            json!({"assistant_id": "approval", "input": {"topic": "again"}}),
            StatusCode::CONFLICT,
            "approval_pending",
        ),
        (
            &member,
            &runs,
            json!({"assistant_id": "approval", "checkpoint_id": earlier}),
            StatusCode::CONFLICT,
            "approval_pending",
        ),
        (
            &admin,
            &runs,
            json!({"assistant_id": "approval", "checkpoint_id": interrupted, "command": {"resume": "yes"}}),
            StatusCode::CONFLICT,
            "approval_pending",
        ),
        (
            &member,
            &state,
            json!({"values": {"decision": {"approved": true}}, "as_node": "review"}),
            StatusCode::CONFLICT,
            "approval_pending",
        ),
        (
            &admin,
            &state,
            json!({"values": {"decision": {"approved": true}}, "as_node": "review"}),
            StatusCode::CONFLICT,
            "approval_pending",
        ),
    ] {
        let (s, b) = app.post(path, &who.access, body.clone()).await;
        assert_problem(s, &b, status, code);
    }
    let still = app.pending_approval(&admin.access, &thread).await;
    assert_eq!(still["id"], approval["id"], "the approval is still pending");
    // An admin's LangGraph resume is a decision: applied, recorded and audited like one.
    let (s, run) = app
        .post(
            &runs,
            &admin.access,
            json!({"assistant_id": "approval", "command": {"resume": {"approved": true, "comment": "via the SDK"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    app.wait_run(
        &admin.access,
        &thread,
        run["run_id"].as_str().unwrap(),
        "success",
    )
    .await;
    let (_, st) = app.get(&state, &admin.access).await;
    assert_eq!(st["values"]["status"], "published", "{st}");
    let (_, approved) = app
        .get("/api/v1/approvals?status=approved", &admin.access)
        .await;
    let decided = approved
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == approval["id"])
        .unwrap_or_else(|| panic!("not approved: {approved}"));
    assert_eq!(decided["decided_by"], admin.user_id.as_str());
    assert_eq!(decided["comment"], "via the SDK");
    let log = app
        .store
        .audit_log(
            morningai_core::TenantCtx::new(owner.tenant_id.parse().unwrap()),
            100,
            None,
        )
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "approval.approve" && e.details["via"] == "langgraph"),
        "{log:?}"
    );
    // A decision is final: no second answer, not from a fork of the interrupted checkpoint.
    for (who, body) in [
        (
            &admin,
            json!({"assistant_id": "approval", "command": {"resume": {"approved": false}}}),
        ),
        (
            &member,
            json!({"assistant_id": "approval", "checkpoint_id": interrupted, "command": {"resume": "yes"}}),
        ),
    ] {
        let (s, b) = app.post(&runs, &who.access, body).await;
        assert_problem(s, &b, StatusCode::CONFLICT, "nothing_to_resume");
    }
    // Rewriting the state takes the approver's role; the requester may not.
    let (s, b) = app
        .post(&state, &member.access, json!({"values": {"topic": "Go"}}))
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .post(&state, &admin.access, json!({"values": {"topic": "Go"}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // The same for a graph the tenant uploaded: members decide, but not their own runs.
    let (s, g) = app
        .post(
            "/api/v1/graphs",
            &owner.access,
            json!({"name": "gate", "definition": review_flow(), "approvals": {"min_role": "member", "allow_self": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let other = app.member(&owner, "gate-other", "member").await;
    let t2 = app.new_thread(&member.access).await;
    app.run_until(
        &member.access,
        &t2,
        json!({"assistant_id": "custom:gate", "input": {"topic": "Go"}}),
        "interrupted",
    )
    .await;
    let a2 = app.pending_approval(&other.access, &t2).await;
    let resume = json!({"assistant_id": "custom:gate", "command": {"resume": {a2["interrupt_id"].as_str().unwrap(): {"approved": true}}}});
    let (s, b) = app
        .post(
            &format!("/threads/{t2}/runs"),
            &member.access,
            resume.clone(),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, run) = app
        .post(&format!("/threads/{t2}/runs"), &other.access, resume)
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    app.wait_run(
        &other.access,
        &t2,
        run["run_id"].as_str().unwrap(),
        "success",
    )
    .await;
    let (_, st) = app
        .get(&format!("/threads/{t2}/state"), &other.access)
        .await;
    assert_eq!(st["values"]["log"], json!(["published"]), "{st}");
}

/// Counts the stream events a run's task wrote.
async fn events_of(app: &TestApp, tenant: &str, run: &Value) -> usize {
    let task: morningai_core::TaskId = run["task_id"].as_str().unwrap().parse().unwrap();
    app.store
        .task_events(
            morningai_core::TenantCtx::new(tenant.parse().unwrap()),
            Some(task),
            0,
            100_000,
        )
        .await
        .unwrap()
        .len()
}

async fn runaway_runs_stop_at_the_server_ceilings(app: TestApp) {
    let owner = app.signup("runaway").await;
    // A graph that never reaches END: `spin` appends `chunk` to the log and goes round again.
    let spin = |chunk: &str| {
        json!({
            "channels": {"log": {"reducer": "append"}},
            "nodes": {"spin": {"type": "set", "config": {"channel": "log", "value": chunk}}},
            "edges": [{"from": "__start__", "to": "spin"}, {"from": "spin", "to": "spin"}]
        })
    };
    for (name, chunk) in [
        ("fat", "x".repeat(16_000)),
        ("wordy", "x".repeat(500)),
        ("chatty", "x".to_owned()),
    ] {
        let (s, g) = app
            .post(
                "/api/v1/graphs",
                &owner.access,
                json!({"name": name, "definition": spin(&chunk)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
    }
    let thread = app.new_thread(&owner.access).await;
    // A recursion limit over the ceiling is refused, naming the field and the ceiling.
    let (s, b) = app
        .post(
            &format!("/threads/{thread}/runs"),
            &owner.access,
            json!({"assistant_id": "custom:chatty", "input": {}, "config": {"recursion_limit": 1_000_000}}),
        )
        .await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(b["errors"][0]["field"], "config.recursion_limit", "{b}");
    assert!(
        b["errors"][0]["message"].as_str().unwrap().contains("300"),
        "{b}"
    );
    // Each ceiling stops a run that asks for as many steps as it may.
    for (graph, want) in [
        ("custom:fat", "over this run's limit of 65536 bytes"),
        ("custom:wordy", "run_max_event_bytes"),
        ("custom:chatty", "sent 400 stream events"),
    ] {
        let t = app.new_thread(&owner.access).await;
        let run = app
            .run_until(
                &owner.access,
                &t,
                json!({"assistant_id": graph, "input": {}, "config": {"recursion_limit": 300}}),
                "error",
            )
            .await;
        let error = run["error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "{graph}: {run}");
        let events = events_of(&app, &owner.tenant_id, &run).await;
        assert!(events <= 400 + 4, "{graph}: {events} events written");
    }
    // The wall clock: a slow run is stopped at run_max_secs.
    let t = app.new_thread(&owner.access).await;
    let run = app
        .run_until(
            &owner.access,
            &t,
            json!({"assistant_id": "steps", "input": {"target": 200, "sleep_ms": 100}, "config": {"recursion_limit": 300}}),
            "error",
        )
        .await;
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .contains("run_max_secs"),
        "{run}"
    );
    // Cancelled: nothing more is written once the cancel has been answered.
    let t = app.new_thread(&owner.access).await;
    let (s, run) = app
        .post(
            &format!("/threads/{t}/runs"),
            &owner.access,
            json!({"assistant_id": "steps", "input": {"target": 200, "sleep_ms": 20}, "config": {"recursion_limit": 300}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    let run_id = run["run_id"].as_str().unwrap();
    let start = Instant::now();
    while events_of(&app, &owner.tenant_id, &run).await < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, b) = app
        .post(
            &format!("/threads/{t}/runs/{run_id}/cancel"),
            &owner.access,
            json!({}),
        )
        .await;
    assert!(s.is_success(), "{b}");
    // The worker notices within its cancel poll; after that the count stays put.
    let mut last = events_of(&app, &owner.tenant_id, &run).await;
    let mut stable_since = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(2) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "events kept coming after cancel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = events_of(&app, &owner.tenant_id, &run).await;
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
    }
    let (_, st) = app.get(&format!("/threads/{t}/state"), &owner.access).await;
    let steps = st["values"]["log"].as_array().map_or(0, Vec::len);
    assert!(steps < 200, "the cancelled run went on to {steps} steps");
    // What all those runs stored counts against the tenant's quota: over it, new runs wait.
    let cx = morningai_core::TenantCtx::new(owner.tenant_id.parse().unwrap());
    morningai_app::graphs::set_storage_quota(&*app.store, cx, 10_000)
        .await
        .unwrap();
    let t = app.new_thread(&owner.access).await;
    let (s, b) = app
        .post(
            &format!("/threads/{t}/runs"),
            &owner.access,
            json!({"assistant_id": "steps", "input": {"target": 1}}),
        )
        .await;
    assert_problem(
        s,
        &b,
        StatusCode::TOO_MANY_REQUESTS,
        "storage_quota_exceeded",
    );
    assert!(
        b["detail"].as_str().unwrap().contains("quota is 10000"),
        "{b}"
    );
    morningai_app::graphs::set_storage_quota(&*app.store, cx, 0)
        .await
        .unwrap();
    app.run_until(
        &owner.access,
        &t,
        json!({"assistant_id": "steps", "input": {"target": 1}}),
        "success",
    )
    .await;
}
