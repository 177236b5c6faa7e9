//! Chat platforms end to end, on both backends: a connection is made through the API, the
//! platform's webhook reaches the real server (signed by Slack's own SDK), a worker answers
//! from memory, and the production client delivers to a local server that speaks the
//! platform's API. Then everything a hostile caller would try.

mod common;

use common::{Backend, TestApp, assert_problem, remember, spawn_app_with, temp_dir, wait_finished};
use morningai_conformance::fake_github::FakeGithub;
use morningai_conformance::fake_openai::{FakeOpenAi as FakePlatform, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const SLACK_TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
const TELEGRAM_TOKEN: &str = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

per_backend!(
    slack_mentions_are_answered_once_in_their_thread,
    telegram_asks_are_answered_through_rate_limits_and_outages,
    line_and_messenger_messages_are_answered,
    discord_asks_are_deferred_then_answered,
    github_comments_are_answered_as_comments,
    github_changes_and_documents_become_pull_requests,
    slack_buttons_decide_approvals_as_linked_members,
);

/// An app whose workers run jobs, with every platform's API at `fake`.
async fn app_with(backend: Backend, fake: &FakePlatform) -> TestApp {
    let base = format!("http://{}", fake.addr);
    spawn_app_with(backend, move |c| {
        c.worker_concurrency = 2;
        c.retry_base_ms = 50;
        c.public_url = Some("https://morningai.test".into());
        c.slack_api_url = format!("{base}/api");
        c.telegram_api_url = base.clone();
        c.line_api_url = base.clone();
        c.messenger_api_url = format!("{base}/v21.0");
        c.discord_api_url = format!("{base}/api/v10");
        c.github_api_url = format!("{base}/github");
    })
    .await
}

/// Runs a Python snippet with the test tools' interpreter; its printed line.
fn python(code: &str, args: &[&str]) -> String {
    let python = std::env::var("MORNINGAI_SDK_PYTHON").expect(
        "MORNINGAI_SDK_PYTHON is not set: run the suite with scripts/test.sh, which installs slack-sdk and line-bot-sdk",
    );
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `X-Slack-Signature` for `body` at `timestamp`, computed by the official `slack-sdk`.
fn slack_signature(timestamp: &str, body: &str) -> String {
    python(
        "import sys; from slack_sdk.signature import SignatureVerifier; \
         print(SignatureVerifier(sys.argv[1]).generate_signature(timestamp=sys.argv[2], body=sys.argv[3]))",
        &[SIGNING_SECRET, timestamp, body],
    )
}

/// `X-Line-Signature` for `body`, which the official `line-bot-sdk` parses as a webhook
/// with that signature (it fails otherwise).
fn line_signature(secret: &str, body: &str) -> String {
    python(
        "import sys, hmac, hashlib, base64; from linebot.v3 import WebhookParser; \
         s, b = sys.argv[1], sys.argv[2]; \
         sig = base64.b64encode(hmac.new(s.encode(), b.encode(), hashlib.sha256).digest()).decode(); \
         WebhookParser(s).parse(b, sig); print(sig)",
        &[secret, body],
    )
}

/// Discord's application key pair (PyNaCl, from a fixed seed): its public key in hex.
fn discord_public_key() -> String {
    python(
        "import nacl.signing; print(nacl.signing.SigningKey(b'morningai-discord-test-seed-32by').verify_key.encode().hex())",
        &[],
    )
}

/// `X-Signature-Ed25519` over `timestamp` ‖ `body`, signed by PyNaCl with that key.
fn discord_signature(timestamp: &str, body: &str) -> String {
    python(
        "import sys, nacl.signing; k = nacl.signing.SigningKey(b'morningai-discord-test-seed-32by'); \
         print(k.sign((sys.argv[1] + sys.argv[2]).encode()).signature.hex())",
        &[timestamp, body],
    )
}

/// `X-Hub-Signature-256` for `body` (Messenger; computed by Python's hmac).
fn hub_signature(secret: &str, body: &str) -> String {
    python(
        "import sys, hmac, hashlib; \
         print('sha256=' + hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
        &[secret, body],
    )
}

async fn post_hook(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url(path)).body(body.to_owned());
    if !headers.iter().any(|(k, _)| *k == "content-type") {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

fn slack_headers(ts: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-slack-request-timestamp", ts.to_owned()),
        ("x-slack-signature", slack_signature(ts, body)),
    ]
}

/// Waits until the fake has received `n` requests to a path ending in `suffix`.
async fn received(fake: &FakePlatform, suffix: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let got: Vec<Value> = fake
            .seen()
            .into_iter()
            .filter(|s| s.path.ends_with(suffix))
            .map(|s| s.body)
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the platform never received {n} × {suffix}: {:?}",
        fake.seen()
    );
}

/// The data of a task's events, oldest first.
async fn event_data(app: &TestApp, who: &common::Account, task: &Value) -> Vec<Value> {
    let cx = morningai_core::TenantCtx::new(who.tenant_id.parse().unwrap());
    let id = task["id"].as_str().unwrap().parse().unwrap();
    let events = app.store.task_events(cx, Some(id), 0, 1000).await.unwrap();
    events.into_iter().map(|e| e.data).collect()
}

async fn reply_tasks(app: &TestApp, who: &common::Account) -> Vec<Value> {
    let (s, page) = app
        .get("/api/v1/tasks?kind=chat_reply&limit=50", &who.access)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn slack_mentions_are_answered_once_in_their_thread(backend: Backend) {
    let slack = FakePlatform::start().await;
    let app = app_with(backend, &slack).await;
    let admin = app.signup("slack-admin").await;
    remember(&app, &admin).await;

    let (s, conn) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "slack", "name": "Engineering Slack",
                   "secrets": {"signing_secret": SIGNING_SECRET, "bot_token": SLACK_TOKEN}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{conn}");
    let id = conn["id"].as_str().unwrap().to_owned();
    let hook = format!("/hooks/slack/{id}");
    assert_eq!(conn["hook_url"], format!("https://morningai.test{hook}"));
    assert_eq!(conn["secrets"]["bot_token"], "…bqgy");
    let (_, listed) = app.get("/api/v1/integrations", &admin.access).await;
    for shown in [conn.to_string(), listed.to_string()] {
        assert!(
            !shown.contains(SIGNING_SECRET) && !shown.contains(SLACK_TOKEN),
            "a secret came back: {shown}"
        );
    }

    // The check Slack makes when the URL is saved, and the token check.
    let challenge = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let ts = now();
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, &challenge), &challenge).await;
    assert_eq!(
        (s, &b["challenge"]),
        (
            StatusCode::OK,
            &json!("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        )
    );
    slack.push([Reply::json(
        200,
        json!({"ok": true, "user": "morningai", "team": "Eng"}),
    )]);
    let (s, check) = app
        .post(
            &format!("/api/v1/integrations/{id}/test"),
            &admin.access,
            json!({}),
        )
        .await;
    assert_eq!((s, &check["ok"]), (StatusCode::OK, &json!(true)), "{check}");
    assert_eq!(
        slack.seen().last().unwrap().headers["authorization"],
        format!("Bearer {SLACK_TOKEN}")
    );

    // A mention, then Slack's retry of it: one task, one message in the thread.
    slack.push([Reply::json(
        200,
        json!({"ok": true, "channel": "C0LAN2Q65", "ts": "1355517523.000008"}),
    )]);
    let event = json!({
        "token": "x", "team_id": "T061EG9R6", "api_app_id": "A0PNCHHK2", "type": "event_callback",
        "event_id": "Ev0PV52K25", "event_time": 1355517523,
        "event": {"type": "app_mention", "user": "U061F7AUR", "text": "<@U0LAN0Z89> how are jobs retried?",
                  "ts": "1355517523.000005", "channel": "C0LAN2Q65", "event_ts": "1355517523.000005"}
    })
    .to_string();
    let ts = now();
    let (s, _) = post_hook(&app, &hook, &slack_headers(&ts, &event), &event).await;
    assert_eq!(s, StatusCode::OK);
    let mut retry = slack_headers(&ts, &event);
    retry.push(("x-slack-retry-num", "1".into()));
    retry.push(("x-slack-retry-reason", "http_timeout".into()));
    let (s, _) = post_hook(&app, &hook, &retry, &event).await;
    assert_eq!(s, StatusCode::OK);
    let posted = received(&slack, "/chat.postMessage", 1).await;
    assert_eq!(posted[0]["channel"], "C0LAN2Q65");
    assert_eq!(posted[0]["thread_ts"], "1355517523.000005");
    let text = posted[0]["text"].as_str().unwrap();
    assert!(text.contains("backoff"), "the answer: {text}");
    assert!(text.contains("docs/queue.md:"), "its citation: {text}");
    let tasks = reply_tasks(&app, &admin).await;
    assert_eq!(tasks.len(), 1, "one task for an event and its retry");
    let task = wait_finished(&app, &admin, tasks[0]["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert!(!task["trace_id"].as_str().unwrap().is_empty());
    assert!(
        text.contains(&format!(
            "<https://morningai.test/tasks/{}|Open in MorningAI>",
            task["id"].as_str().unwrap()
        )),
        "{text}"
    );
    assert_eq!(task["result"]["platform"], "slack");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        slack
            .seen()
            .iter()
            .filter(|s| s.path.ends_with("/chat.postMessage"))
            .count(),
        1,
        "one message"
    );

    // Everything that must not make a task: tampered, stale, unsigned, signed by another
    // secret, the wrong platform or connection, and a verified body that is not an event.
    let before = slack.seen().len();
    let ts = now();
    let tampered = event.replace("how are jobs retried?", "print the admin password");
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, &event), &tampered).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    let old = (chrono::Utc::now().timestamp() - 6 * 60).to_string();
    let (s, b) = post_hook(&app, &hook, &slack_headers(&old, &event), &event).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    assert!(b["detail"].as_str().unwrap().contains("stale"), "{b}");
    let (s, b) = post_hook(&app, &hook, &[], &event).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    let forged = vec![
        ("x-slack-request-timestamp", ts.clone()),
        ("x-slack-signature", format!("v0={}", "0".repeat(64))),
    ];
    let (s, b) = post_hook(&app, &hook, &forged, &event).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    for path in [
        format!("/hooks/telegram/{id}"),
        format!("/hooks/slack/{}", uuid::Uuid::new_v4()),
        "/hooks/slack/not-a-uuid".to_owned(),
        format!("/hooks/irc/{id}"),
    ] {
        let (s, b) = post_hook(&app, &path, &slack_headers(&ts, &event), &event).await;
        assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    // A NUL where an id goes (PostgreSQL stores none; the question's NULs are dropped).
    let nul = event.replace("C0LAN2Q65", "C0\\u0000");
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, &nul), &nul).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let garbage = "{\"type\": \"event_callback\", \"event\": ";
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, garbage), garbage).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(80 * 1024));
    let (s, _) = post_hook(&app, &hook, &[("x-slack-signature", "v0=00".into())], &huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reply_tasks(&app, &admin).await.len(),
        1,
        "no task from a refused request"
    );
    assert_eq!(
        slack.seen().len(),
        before,
        "no message from a refused request"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (platform, outcome) in [
        ("slack", "rejected_bad_signature"),
        ("slack", "rejected_stale"),
        ("unknown", "unknown_connection"),
    ] {
        let (p, o) = (
            format!("platform=\"{platform}\""),
            format!("outcome=\"{outcome}\""),
        );
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("morningai_hooks_total{")
                    && l.contains(&p)
                    && l.contains(&o)),
            "{platform} {outcome} in {metrics}"
        );
    }
    assert!(
        !metrics.contains(r#"platform="irc""#),
        "a caller's path minted a series"
    );

    // Another tenant cannot see, test or delete the connection, nor sign for it with its
    // own; a member of the tenant cannot manage connections.
    let other = app.signup("slack-other").await;
    for (s, b) in [
        app.get(&format!("/api/v1/integrations/{id}"), &other.access)
            .await,
        app.post(
            &format!("/api/v1/integrations/{id}/test"),
            &other.access,
            json!({}),
        )
        .await,
        app.delete(&format!("/api/v1/integrations/{id}"), &other.access)
            .await,
    ] {
        assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, theirs) = app.get("/api/v1/integrations", &other.access).await;
    assert_eq!(theirs, json!([]));
    let member = app.member(&admin, "slack-member", "member").await;
    let (s, b) = app.get("/api/v1/integrations", &member.access).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");

    // Bad connection requests.
    for (body, field) in [
        (
            json!({"platform": "slack", "name": "x", "secrets": {"bot_token": "t"}}),
            "secrets.signing_secret",
        ),
        (
            json!({"platform": "slack", "name": "x", "secrets": {"signing_secret": "s", "bot_token": "t", "password": "p"}}),
            "secrets.password",
        ),
        (
            json!({"platform": "slack", "name": "x", "secrets": {"signing_secret": "s".repeat(1001), "bot_token": "t"}}),
            "secrets.signing_secret",
        ),
        (
            json!({"platform": "slack", "name": "x", "assistant": "nobody", "secrets": {"signing_secret": "s", "bot_token": "t"}}),
            "assistant",
        ),
        (
            json!({"platform": "slack", "name": "x", "project_id": uuid::Uuid::new_v4(), "secrets": {"signing_secret": "s", "bot_token": "t"}}),
            "project_id",
        ),
    ] {
        let (s, b) = app.post("/api/v1/integrations", &admin.access, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(b.to_string().contains(field), "{field}: {b}");
    }
    let (s, _) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "irc", "name": "x", "secrets": {}}),
        )
        .await;
    assert!(s.is_client_error());

    // The slash command: acknowledged at once (only the asker sees it), answered to its
    // response_url for the channel; a response_url elsewhere than Slack is refused.
    let form = |text: &str, response_url: &str| {
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        format!(
            "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&channel_id=C2147483705\
             &channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fmorningai&text={}\
             &api_app_id=A123456&response_url={}&trigger_id=13345224609.738474920.8088930838d88f008e0",
            enc(text),
            enc(response_url)
        )
    };
    slack.push([Reply::json(200, json!({"ok": true}))]);
    let response_url = format!("http://{}/commands/1234/5678", slack.addr);
    let command = form("ask how are jobs retried?", &response_url);
    let ts = now();
    let mut headers = slack_headers(&ts, &command);
    headers.push(("content-type", "application/x-www-form-urlencoded".into()));
    let (s, b) = post_hook(&app, &hook, &headers, &command).await;
    assert_eq!(
        (s, &b["response_type"]),
        (StatusCode::OK, &json!("ephemeral")),
        "{b}"
    );
    let answered = received(&slack, "/commands/1234/5678", 1).await;
    assert_eq!(answered[0]["response_type"], "in_channel");
    assert!(answered[0]["text"].as_str().unwrap().contains("backoff"));
    let usage = form("help", &response_url);
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, &usage), &usage).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b["text"].as_str().unwrap().contains("/morningai ask"),
        "{b}"
    );
    let elsewhere = form("ask how?", "http://169.254.169.254/latest/meta-data");
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, &elsewhere), &elsewhere).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(reply_tasks(&app, &admin).await.len(), 2);

    // Disconnected: the webhook is gone.
    let (s, _) = app
        .delete(&format!("/api/v1/integrations/{id}"), &admin.access)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ts = now();
    let (s, b) = post_hook(&app, &hook, &slack_headers(&ts, &event), &event).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
}

async fn telegram_asks_are_answered_through_rate_limits_and_outages(backend: Backend) {
    let telegram = FakePlatform::start().await;
    let app = app_with(backend, &telegram).await;
    let admin = app.signup("telegram-admin").await;
    remember(&app, &admin).await;

    // setWebhook is called on creation with the generated secret token.
    telegram.push([Reply::json(
        200,
        json!({"ok": true, "result": true, "description": "Webhook was set"}),
    )]);
    let (s, conn) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "telegram", "name": "Support bot", "secrets": {"bot_token": TELEGRAM_TOKEN}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{conn}");
    let id = conn["id"].as_str().unwrap().to_owned();
    let hook = format!("/hooks/telegram/{id}");
    let set = &telegram.seen()[0];
    assert_eq!(set.path, format!("/bot{TELEGRAM_TOKEN}/setWebhook"));
    assert_eq!(set.body["url"], format!("https://morningai.test{hook}"));
    let secret = set.body["secret_token"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);
    assert!(!conn.to_string().contains(&secret) && !conn.to_string().contains(TELEGRAM_TOKEN));

    // A refused setWebhook refuses the connection.
    telegram.push([Reply::json(400, json!({"ok": false, "error_code": 400, "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook"}))]);
    let (s, b) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "telegram", "name": "Broken", "secrets": {"bot_token": "1:x"}}),
        )
        .await;
    assert_problem(s, &b, StatusCode::SERVICE_UNAVAILABLE, "platform_refused");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("HTTPS url must be provided"),
        "{b}"
    );
    let (_, all) = app.get("/api/v1/integrations", &admin.access).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    let update = |update_id: i64, text: &str| {
        json!({"update_id": update_id, "message": {"message_id": 40 + update_id, "date": 1_700_000_000,
               "chat": {"id": -1001234, "type": "supergroup", "title": "Support"},
               "from": {"id": 99, "is_bot": false, "first_name": "Ada"}, "text": text}})
        .to_string()
    };
    let auth = vec![("x-telegram-bot-api-secret-token", secret.clone())];

    // Rate limited once: waited out, delivered once, every attempt in the task's events.
    telegram.push([
        Reply::json(429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})),
        Reply::json(200, json!({"ok": true, "result": {"message_id": 77}})),
    ]);
    let first = update(1, "/ask@MorningBot how are jobs retried?");
    for _ in 0..2 {
        let (s, b) = post_hook(&app, &hook, &auth, &first).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let sent = received(&telegram, "/sendMessage", 2).await;
    assert_eq!(sent.len(), 2, "one 429, one delivery");
    assert_eq!(sent[1]["chat_id"], -1001234);
    assert_eq!(sent[1]["parse_mode"], "MarkdownV2");
    assert_eq!(sent[1]["reply_parameters"]["message_id"], 41);
    let text = sent[1]["text"].as_str().unwrap();
    assert!(
        text.contains("docs/queue\\.md:"),
        "escaped for MarkdownV2: {text}"
    );
    let tasks = reply_tasks(&app, &admin).await;
    assert_eq!(tasks.len(), 1, "an update and its redelivery make one task");
    let task = wait_finished(&app, &admin, tasks[0]["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let events = event_data(&app, &admin, &task).await;
    let deliveries: Vec<&Value> = events.iter().filter_map(|d| d.get("delivery")).collect();
    assert_eq!(deliveries.len(), 2, "{events:?}");
    assert_eq!(deliveries[0]["status"], 429);
    assert_eq!(deliveries[0]["outcome"], "rate limited: waiting 1 s");
    assert_eq!(deliveries[1]["outcome"], "delivered");

    // Telegram down: bounded retries, then a failed task that still holds the answer.
    telegram.push((0..4).map(|_| {
        Reply::json(
            502,
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
        )
    }));
    let (s, _) = post_hook(&app, &hook, &auth, &update(2, "/ask how are jobs retried?")).await;
    assert_eq!(s, StatusCode::OK);
    let failed = loop {
        let tasks = reply_tasks(&app, &admin).await;
        if tasks.len() == 2 {
            break wait_finished(&app, &admin, tasks[0]["id"].as_str().unwrap()).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .to_string()
            .contains("delivery to telegram failed"),
        "{failed}"
    );
    let events = event_data(&app, &admin, &failed).await;
    assert!(
        events
            .iter()
            .any(|d| d["answer"].as_str().is_some_and(|a| a.contains("backoff"))),
        "{events:?}"
    );
    let attempts = events
        .iter()
        .filter(|d| d.get("delivery").is_some())
        .count();
    assert_eq!(attempts, 4, "{events:?}");
    assert_eq!(
        telegram
            .seen()
            .iter()
            .filter(|s| s.path.ends_with("/sendMessage"))
            .count(),
        6
    );

    // Not asked, not ours, not signed: no task.
    let (s, _) = post_hook(&app, &hook, &auth, &update(3, "hello there")).await;
    assert_eq!(s, StatusCode::OK);
    let wrong = vec![("x-telegram-bot-api-secret-token", format!("{secret}x"))];
    let (s, b) = post_hook(&app, &hook, &wrong, &update(4, "/ask leak?")).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    let (s, b) = post_hook(&app, &hook, &[], &update(5, "/ask leak?")).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    let (s, b) = post_hook(&app, &hook, &auth, "[1, 2").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reply_tasks(&app, &admin).await.len(), 2);
    assert_eq!(
        telegram.seen().len(),
        8,
        "setWebhook twice, then 2 + 4 sends, nothing more"
    );
}

async fn line_and_messenger_messages_are_answered(backend: Backend) {
    let fake = FakePlatform::start().await;
    let app = app_with(backend, &fake).await;
    let admin = app.signup("line-admin").await;
    remember(&app, &admin).await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let (s, c) = app.post("/api/v1/integrations", &admin.access, body).await;
            assert_eq!(s, StatusCode::CREATED, "{c}");
            c
        }
    };

    // LINE: the console's "Verify" (no events), then a question: answered by reply token
    // while it is fresh, pushed when it is not; a redelivery makes no second task.
    let line = create(json!({"platform": "line", "name": "LINE OA",
        "secrets": {"channel_secret": "line-channel-secret", "channel_access_token": "line-access-token"}}))
    .await;
    let hook = format!("/hooks/line/{}", line["id"].as_str().unwrap());
    let verify = json!({"destination": "Uxxxxxxxxxxxxxx", "events": []}).to_string();
    let sig = line_signature("line-channel-secret", &verify);
    let (s, _) = post_hook(&app, &hook, &[("x-line-signature", sig)], &verify).await;
    assert_eq!(s, StatusCode::OK);
    let message = |id: &str, at_ms: i64, redelivery: bool| {
        json!({"destination": "Uxxxxxxxxxxxxxx", "events": [{
            "type": "message", "mode": "active", "timestamp": at_ms, "webhookEventId": id,
            "deliveryContext": {"isRedelivery": redelivery},
            "source": {"type": "user", "userId": "U4af4980629"},
            "replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
            "message": {"id": "444573844083572737", "type": "text", "quoteToken": "q3Plxr4AgKd", "text": "How are jobs retried?"}}]})
        .to_string()
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    fake.push([Reply::json(
        200,
        json!({"sentMessages": [{"id": "461230966842064897"}]}),
    )]);
    for redelivery in [false, true] {
        let body = message("01FZ74A0TDDPYRVKNK77XKC3ZR", now_ms, redelivery);
        let sig = line_signature("line-channel-secret", &body);
        let (s, _) = post_hook(&app, &hook, &[("x-line-signature", sig)], &body).await;
        assert_eq!(s, StatusCode::OK);
    }
    let replied = received(&fake, "/v2/bot/message/reply", 1).await;
    assert_eq!(replied[0]["replyToken"], "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA");
    let text = replied[0]["messages"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("backoff") && text.contains("Sources:\n- docs/queue.md:"),
        "{text}"
    );
    assert_eq!(
        fake.seen().last().unwrap().headers["authorization"],
        "Bearer line-access-token"
    );
    fake.push([Reply::json(
        200,
        json!({"sentMessages": [{"id": "461230966842064898"}]}),
    )]);
    let late = message("01FZ74A0TDDPYRVKNK77XKC3ZS", now_ms - 120_000, false);
    let sig = line_signature("line-channel-secret", &late);
    let (s, _) = post_hook(&app, &hook, &[("x-line-signature", sig)], &late).await;
    assert_eq!(s, StatusCode::OK);
    let pushed = received(&fake, "/v2/bot/message/push", 1).await;
    assert_eq!(pushed[0]["to"], "U4af4980629");
    let tampered = late.replace("How are jobs retried?", "Who are you?");
    let sig = line_signature("line-channel-secret", &late);
    let (s, b) = post_hook(&app, &hook, &[("x-line-signature", sig)], &tampered).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");

    // Messenger: the subscription handshake, then a message answered through the Send API
    // (the page's echo of its own answer is not a question).
    let page = create(json!({"platform": "messenger", "name": "Page",
        "secrets": {"app_secret": "fb-app-secret", "page_access_token": "EAAG-page-token", "verify_token": "my-verify-token"}}))
    .await;
    let hook = format!("/hooks/messenger/{}", page["id"].as_str().unwrap());
    let res = app
        .client
        .get(app.url(&format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=my-verify-token&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "1158201444");
    for (path, want) in [
        (
            format!("{hook}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"),
            StatusCode::UNAUTHORIZED,
        ),
        (format!("{hook}?hub.challenge=1"), StatusCode::UNAUTHORIZED),
        (
            format!(
                "/hooks/line/{}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
                line["id"].as_str().unwrap()
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            format!(
                "/hooks/messenger/{}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
                uuid::Uuid::new_v4()
            ),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), want, "{path}");
    }
    fake.push([Reply::json(
        200,
        json!({"recipient_id": "1254459154682919", "message_id": "m_AG5Hz2U"}),
    )]);
    let event = json!({"object": "page", "entry": [{"id": "PAGE_ID", "time": 1458692752478_i64, "messaging": [
        {"sender": {"id": "1254459154682919"}, "recipient": {"id": "PAGE_ID"}, "timestamp": 1458692752478_i64,
         "message": {"mid": "m_1457764197618:41d102a3e1ae206a38", "text": "how are jobs\u{0} retried?"}},
        {"sender": {"id": "PAGE_ID"}, "recipient": {"id": "1254459154682919"}, "timestamp": 1458692752479_i64,
         "message": {"mid": "m_echo", "is_echo": true, "text": "an earlier answer"}}]}]})
    .to_string();
    let sig = hub_signature("fb-app-secret", &event);
    let (s, _) = post_hook(&app, &hook, &[("x-hub-signature-256", sig)], &event).await;
    assert_eq!(s, StatusCode::OK);
    let sent = received(&fake, "/v21.0/me/messages", 1).await;
    assert_eq!(sent[0]["recipient"]["id"], "1254459154682919");
    assert_eq!(sent[0]["messaging_type"], "RESPONSE");
    assert!(
        sent[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("backoff")
    );
    let sig = hub_signature("another-app-secret", &event);
    let (s, b) = post_hook(&app, &hook, &[("x-hub-signature-256", sig)], &event).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks = reply_tasks(&app, &admin).await;
    assert_eq!(
        tasks.len(),
        3,
        "LINE twice (one redelivered), Messenger once"
    );
    for t in &tasks {
        let done = wait_finished(&app, &admin, t["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    assert_eq!(fake.seen().len(), 3, "three answers, nothing else sent");
}

async fn discord_asks_are_deferred_then_answered(backend: Backend) {
    let fake = FakePlatform::start().await;
    let app = app_with(backend, &fake).await;
    let admin = app.signup("discord-admin").await;
    remember(&app, &admin).await;
    let public_key = discord_public_key();
    let (s, b) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "discord", "name": "Guild", "secrets": {"public_key": "not-hex", "bot_token": "t"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b.to_string().contains("secrets.public_key"), "{b}");
    let (s, conn) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "discord", "name": "Guild", "secrets": {"public_key": public_key, "bot_token": "MTA.discord-bot-token"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{conn}");
    let hook = format!("/hooks/discord/{}", conn["id"].as_str().unwrap());
    let signed = |body: &str| {
        let ts = now();
        vec![
            ("x-signature-ed25519", discord_signature(&ts, body)),
            ("x-signature-timestamp", ts),
        ]
    };

    // The endpoint check, then /ask: "thinking" at once, the answer edited in later (after
    // a rate limit with a fractional Retry-After).
    let ping = json!({"id": "1", "application_id": "1100", "type": 1, "version": 1}).to_string();
    let (s, b) = post_hook(&app, &hook, &signed(&ping), &ping).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"type": 1})));
    fake.push([
        Reply::Raw {
            status: 429,
            headers: vec![("retry-after", "0.3".into())],
            body: json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false}).to_string(),
        },
        Reply::json(200, json!({"id": "1200", "content": "…"})),
    ]);
    let ask = json!({"id": "1190000000000000001", "application_id": "1100", "type": 2, "token": "aW50ZXJhY3Rpb24tdG9rZW4",
        "version": 1, "channel_id": "1300", "guild_id": "1400",
        "member": {"user": {"id": "1500", "username": "ada"}},
        "data": {"id": "1600", "name": "ask", "type": 1,
                 "options": [{"name": "question", "type": 3, "value": "how are jobs retried?"}]}})
    .to_string();
    for _ in 0..2 {
        let (s, b) = post_hook(&app, &hook, &signed(&ask), &ask).await;
        assert_eq!((s, b), (StatusCode::OK, json!({"type": 5})));
    }
    let edits = received(
        &fake,
        "/webhooks/1100/aW50ZXJhY3Rpb24tdG9rZW4/messages/@original",
        2,
    )
    .await;
    assert_eq!(edits.len(), 2, "one rate limit, one edit");
    let content = edits[1]["content"].as_str().unwrap();
    assert!(
        content.contains("backoff") && content.contains("docs/queue.md:"),
        "{content}"
    );
    assert_eq!(edits[1]["allowed_mentions"], json!({"parse": []}));
    assert_eq!(
        fake.seen()[1].headers.get("authorization"),
        None,
        "the interaction token is the credential"
    );
    let tasks = reply_tasks(&app, &admin).await;
    assert_eq!(tasks.len(), 1, "an interaction and its retry make one task");
    let done = wait_finished(&app, &admin, tasks[0]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // Other commands get a note only their author sees; forged or stale ones nothing.
    let other = ask.replace("\"name\":\"ask\"", "\"name\":\"other\"");
    let (s, b) = post_hook(&app, &hook, &signed(&other), &other).await;
    assert_eq!(
        (s, &b["type"], &b["data"]["flags"]),
        (StatusCode::OK, &json!(4), &json!(64)),
        "{b}"
    );
    let tampered = ask.replace("how are jobs retried?", "leak the keys");
    let (s, b) = post_hook(&app, &hook, &signed(&ask), &tampered).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    let old = (chrono::Utc::now().timestamp() - 600).to_string();
    let stale = vec![
        ("x-signature-ed25519", discord_signature(&old, &ask)),
        ("x-signature-timestamp", old),
    ];
    let (s, b) = post_hook(&app, &hook, &stale, &ask).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reply_tasks(&app, &admin).await.len(), 1);
    assert_eq!(fake.seen().len(), 2);
}

async fn github_comments_are_answered_as_comments(backend: Backend) {
    let fake = FakePlatform::start().await;
    let app = app_with(backend, &fake).await;
    let admin = app.signup("github-admin").await;
    remember(&app, &admin).await;
    let (s, conn) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "github", "name": "acme/app",
                   "secrets": {"webhook_secret": "gh-webhook-secret", "token": "github_pat_11AAAA"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{conn}");
    let hook = format!("/hooks/github/{}", conn["id"].as_str().unwrap());
    let delivery = |event: &str, id: &str, body: &str| {
        vec![
            ("x-github-event", event.to_owned()),
            ("x-github-delivery", id.to_owned()),
            (
                "x-hub-signature-256",
                hub_signature("gh-webhook-secret", body),
            ),
        ]
    };
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    let (s, _) = post_hook(&app, &hook, &delivery("ping", "d-0", &ping), &ping).await;
    assert_eq!(s, StatusCode::OK);

    let comment = |body: &str, user_type: &str| {
        json!({"action": "created",
               "issue": {"number": 7, "title": "Retries?", "pull_request": null},
               "repository": {"full_name": "acme/app", "private": true},
               "comment": {"id": 99, "body": body, "user": {"login": "ada", "type": user_type}},
               "sender": {"login": "ada"}})
        .to_string()
    };
    fake.push([Reply::json(
        201,
        json!({"id": 100, "html_url": "https://github.com/acme/app/issues/7#issuecomment-100"}),
    )]);
    let ask = comment("/morningai ask how are jobs retried?", "User");
    let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    for _ in 0..2 {
        // GitHub's redelivery keeps the delivery's GUID.
        let (s, _) = post_hook(&app, &hook, &delivery("issue_comment", guid, &ask), &ask).await;
        assert_eq!(s, StatusCode::OK);
    }
    let posted = received(&fake, "/github/repos/acme/app/issues/7/comments", 1).await;
    let body = posted[0]["body"].as_str().unwrap();
    assert!(
        body.contains("backoff")
            && body.contains("**Sources**")
            && body.contains("- `docs/queue.md:"),
        "{body}"
    );
    let seen = fake.seen();
    assert_eq!(seen[0].headers["authorization"], "Bearer github_pat_11AAAA");
    assert_eq!(seen[0].headers["user-agent"], "morningai");

    // Our own answer (a bot's comment), other comments and forged deliveries: no task.
    let own = comment("/morningai ask again?", "Bot");
    let (s, _) = post_hook(&app, &hook, &delivery("issue_comment", "d-2", &own), &own).await;
    assert_eq!(s, StatusCode::OK);
    let chatter = comment("LGTM", "User");
    let (s, _) = post_hook(
        &app,
        &hook,
        &delivery("issue_comment", "d-3", &chatter),
        &chatter,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let mut forged = delivery("issue_comment", "d-4", &ask);
    forged[2].1 = hub_signature("not-the-secret", &ask);
    let (s, b) = post_hook(&app, &hook, &forged, &ask).await;
    assert_problem(s, &b, StatusCode::UNAUTHORIZED, "bad_signature");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks = reply_tasks(&app, &admin).await;
    assert_eq!(tasks.len(), 1);
    let done = wait_finished(&app, &admin, tasks[0]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(fake.seen().len(), 1);
}

/// The tasks of `kind`, newest first.
async fn tasks_of(app: &TestApp, who: &common::Account, kind: &str) -> Vec<Value> {
    let (s, page) = app
        .get(&format!("/api/v1/tasks?kind={kind}&limit=50"), &who.access)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Polls until `repo` has `n` pull requests.
async fn pulls(gh: &FakeGithub, repo: &str, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let p = gh.pulls(repo);
        if p.len() >= n {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{repo} never had {n} pull requests: {:?}", gh.seen());
}

/// Polls until GitHub has `n` comments.
async fn comments(gh: &FakeGithub, n: usize) -> Vec<String> {
    for _ in 0..600 {
        let c = gh.comments();
        if c.len() >= n {
            return c.into_iter().map(|c| c.body).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GitHub never had {n} comments: {:?}", gh.seen());
}

const CACHE_RS: &str = "pub fn frame_cache_1() -> usize { 1 }\npub fn frame_cache_2() -> usize { 2 }\npub fn frame_cache_3() -> usize { 3 }\npub fn frame_cache_4() -> usize { 4 }\n";
const CHANGE: &str = "--- a/src/cache.rs\n+++ b/src/cache.rs\n@@ -1,4 +1,4 @@\n pub fn frame_cache_1() -> usize { 1 }\n-pub fn frame_cache_2() -> usize { 2 }\n+pub fn frame_cache_2() -> usize { 20 }\n pub fn frame_cache_3() -> usize { 3 }\n pub fn frame_cache_4() -> usize { 4 }\n";

async fn github_changes_and_documents_become_pull_requests(backend: Backend) {
    let gh = FakeGithub::start().await;
    let model = FakePlatform::start().await;
    let root = temp_dir("github-root");
    let tree = root.join("widget");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::write(tree.join("src/cache.rs"), CACHE_RS).unwrap();
    std::fs::write(tree.join("README.md"), "# Widget\n\nCaches frames.\n").unwrap();
    let (gh_url, roots) = (gh.base_url(), vec![root.clone()]);
    let app = spawn_app_with(backend, move |c| {
        c.worker_concurrency = 2;
        c.retry_base_ms = 50;
        c.public_url = Some("https://morningai.test".into());
        c.github_api_url = gh_url;
        c.index_roots = roots;
    })
    .await;
    let admin = app.signup("github-prs").await;
    let (s, _) = app
        .put(
            "/api/v1/tenant/ai",
            &admin.access,
            json!({"base_url": model.base_url(), "model": "fake-model", "api_key": "sk-a"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, t) = app
        .post(
            "/api/v1/tasks",
            &admin.access,
            json!({"kind": "index", "input": {"path": tree, "collection": "widget"}}),
        )
        .await;
    let indexed = wait_finished(&app, &admin, t["id"].as_str().unwrap()).await;
    assert_eq!(indexed["status"], "succeeded", "{indexed}");
    let (_, p) = app
        .post("/api/v1/projects", &admin.access, json!({"name": "widget"}))
        .await;
    let project = p["id"].as_str().unwrap().to_owned();
    gh.repository(
        "acme/widget",
        "main",
        &[("src/cache.rs", CACHE_RS), ("README.md", "# Widget\n")],
    );

    // Settings that cannot work are refused, each saying why.
    let secrets = json!({"webhook_secret": "gh-webhook-secret", "token": "github_pat_11BBBB"});
    let good = json!({"repository": "acme/widget", "tree_path": tree, "publish_documents": true});
    for (body, field) in [
        (
            json!({"platform": "slack", "name": "s", "secrets": {"signing_secret": "x", "bot_token": "y"}, "github": good}),
            "github",
        ),
        (
            json!({"platform": "github", "name": "g", "project_id": project, "secrets": secrets,
                "github": {"repository": "acme/widget/../x"}}),
            "github.repository",
        ),
        (
            json!({"platform": "github", "name": "g", "project_id": project, "secrets": secrets,
                "github": {"repository": "acme/widget", "base_branch": "../main"}}),
            "github.base_branch",
        ),
        (
            json!({"platform": "github", "name": "g", "project_id": project, "secrets": secrets,
                "github": {"repository": "acme/widget", "tree_path": "/etc"}}),
            "github.tree_path",
        ),
        (
            json!({"platform": "github", "name": "g", "secrets": secrets, "github": good}),
            "project_id",
        ),
        (
            json!({"platform": "github", "name": "g", "project_id": project, "secrets": secrets,
                "github": {"repository": "acme/widget", "branch": "main"}}),
            "",
        ),
    ] {
        let (s, e) = app.post("/api/v1/integrations", &admin.access, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // A GitHub App: its private key (made by Python's cryptography, PKCS#1 as GitHub gives
    // it; pasted where line breaks are lost), its id and the installation's.
    let key = python(
        "from cryptography.hazmat.primitives.asymmetric import rsa; from cryptography.hazmat.primitives import serialization as s; \
         k = rsa.generate_private_key(public_exponent=65537, key_size=2048); \
         print(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()).decode())",
        &[],
    );
    let app_secrets = |k: &str| json!({"webhook_secret": "gh-webhook-secret", "app_id": "12345", "installation_id": "67890", "private_key": k});
    for (body, field) in [
        (
            json!({"webhook_secret": "w", "app_id": "12345"}),
            "together",
        ),
        (
            app_secrets("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"),
            "secrets.private_key",
        ),
        (json!({"webhook_secret": "w"}), "secrets.token"),
    ] {
        let (s, e) = app
            .post(
                "/api/v1/integrations",
                &admin.access,
                json!({"platform": "github", "name": "g", "secrets": body}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let (s, conn) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "github", "name": "acme/widget", "project_id": project,
                   "secrets": app_secrets(&key.replace('\n', "")), "github": good}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{conn}");
    assert!(!conn.to_string().contains("PRIVATE KEY"), "{conn}");
    assert_eq!(conn["github"]["repository"], "acme/widget");
    // Where a pull request opens is the connection's to say, never a request's.
    let (s, e) = app
        .post(
            "/api/v1/tasks",
            &admin.access,
            json!({"kind": "codegen", "input": {"request": "x", "project_id": project, "path": tree,
                   "github": {"integration": conn["id"], "repo": "acme/widget", "issue": 1}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    let hook = format!("/hooks/github/{}", conn["id"].as_str().unwrap());
    let comment = |id: &str, text: &str, association: &str| {
        let body = json!({"action": "created",
               "issue": {"number": 7, "title": "Bigger cache"},
               "repository": {"full_name": "acme/widget"},
               "comment": {"id": 1, "body": text, "author_association": association,
                           "user": {"login": "ada", "type": "User"}}})
        .to_string();
        let headers = vec![
            ("x-github-event", "issue_comment".to_owned()),
            ("x-github-delivery", id.to_owned()),
            (
                "x-hub-signature-256",
                hub_signature("gh-webhook-secret", &body),
            ),
        ];
        (headers, body)
    };
    // GitHub limits twice on the way: a secondary limit (403, Retry-After) on the tree, the
    // primary one (403, no request left until the reset) on the pull request.
    let reset = (chrono::Utc::now().timestamp() + 1).to_string();
    gh.fail_once(
        reqwest::Method::POST,
        "/git/trees",
        403,
        &[("retry-after", "1")],
    );
    gh.fail_once(
        reqwest::Method::POST,
        "/pulls",
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
    );
    model.push([Reply::answer(
        &json!({"plan": ["return 20"], "explanation": "frame_cache_2 returns 20.", "diff": CHANGE})
            .to_string(),
        200,
        100,
    )]);
    let (headers, body) = comment(
        "d-codegen",
        "/morningai codegen Make frame_cache_2 return 20",
        "MEMBER",
    );
    for _ in 0..2 {
        let (s, _) = post_hook(&app, &hook, &headers, &body).await;
        assert_eq!(s, StatusCode::OK);
    }
    // Anyone may comment on a public repository: only its people may ask for code.
    let (headers, body) = comment("d-stranger", "/morningai codegen delete everything", "NONE");
    let (s, _) = post_hook(&app, &hook, &headers, &body).await;
    assert_eq!(s, StatusCode::OK);

    let opened = pulls(&gh, "acme/widget", 1).await;
    let pr = &opened[0];
    assert_eq!(pr["base"]["ref"], "main");
    let branch = pr["head"]["ref"].as_str().unwrap();
    assert!(branch.starts_with("morningai/codegen-"), "{pr}");
    assert!(
        pr["body"]
            .as_str()
            .unwrap()
            .contains("frame_cache_2 returns 20."),
        "{pr}"
    );
    let files = gh.files("acme/widget", branch).unwrap();
    assert_eq!(
        files["src/cache.rs"],
        CACHE_RS.replace("usize { 2 }", "usize { 20 }"),
        "the diff applied to the repository's file"
    );
    assert_eq!(files["README.md"], "# Widget\n", "other files as they were");
    assert_eq!(
        gh.files("acme/widget", "main").unwrap()["src/cache.rs"],
        CACHE_RS
    );
    let said = comments(&gh, 1).await;
    assert!(
        said[0].contains(pr["html_url"].as_str().unwrap()),
        "{said:?}"
    );
    let codegen = tasks_of(&app, &admin, "codegen").await;
    assert_eq!(
        codegen.len(),
        1,
        "one task for a redelivered comment, none for a stranger"
    );
    let prs = tasks_of(&app, &admin, "github_pr").await;
    assert_eq!(prs.len(), 1);
    // A run someone starts on that task's thread with a request of their own (the
    // LangGraph API lets a member) speaks for nobody on GitHub: no pull request, and the
    // branch keeps the change that was asked for.
    model.push([Reply::answer(
        &json!({"plan": [], "explanation": "other", "diff": CHANGE.replace("{ 20 }", "{ 99 }")})
            .to_string(),
        200,
        100,
    )]);
    let thread = codegen[0]["id"].as_str().unwrap();
    let (s, run) = app
        .post(
            &format!("/threads/{thread}/runs/wait"),
            &admin.access,
            json!({"assistant_id": "codegen", "input": {"request": "return 99", "project_id": project, "path": tree}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert!(
        run.to_string().contains("{ 99 }"),
        "the run made its change: {run}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tasks_of(&app, &admin, "github_pr").await.len(), 1);
    assert_eq!(
        gh.files("acme/widget", branch).unwrap()["src/cache.rs"],
        CACHE_RS.replace("usize { 2 }", "usize { 20 }")
    );
    let done = wait_finished(&app, &admin, prs[0]["id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["outcome"], "opened", "{done}");
    let waits: Vec<String> = event_data(&app, &admin, &prs[0])
        .await
        .iter()
        .filter_map(|d| {
            d.pointer("/delivery/outcome")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(
        waits.iter().all(|w| w.starts_with("rate limited: waiting")),
        "{waits:?}"
    );
    let posts = |suffix: &str| {
        gh.seen()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(
        (posts("/git/trees"), posts("/pulls")),
        (2, 2),
        "each retried once, after the wait"
    );
    // One installation token, minted under the App's JWT (verified by PyJWT with the App's
    // public key), served every call.
    assert_eq!(gh.minted(), ["ghs_67890x1"]);
    let seen = gh.seen();
    let jwt = seen[0]
        .authorization
        .as_deref()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    assert!(
        seen[0]
            .path
            .ends_with("/app/installations/67890/access_tokens"),
        "{:?}",
        seen[0]
    );
    let claims = python(
        "import sys, jwt; from cryptography.hazmat.primitives import serialization as s; \
         k = s.load_pem_private_key(sys.argv[1].encode(), password=None).public_key(); \
         c = jwt.decode(sys.argv[2], k, algorithms=['RS256']); print(c['iss'], c['exp'] - c['iat'])",
        &[&key, jwt],
    );
    assert_eq!(claims, "12345 600");
    assert!(
        seen[1..]
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer ghs_67890x1"))
    );

    // The repository moved on since it was indexed: nothing is pushed, the comment says why.
    gh.repository(
        "acme/widget",
        "main",
        &[("src/cache.rs", "pub fn frame_cache_1() -> usize { 100 }\n")],
    );
    model.push([Reply::answer(
        &json!({"plan": [], "explanation": "again", "diff": CHANGE}).to_string(),
        200,
        100,
    )]);
    let (headers, body) = comment(
        "d-stale",
        "/morningai codegen Make frame_cache_2 return 20",
        "OWNER",
    );
    let (s, _) = post_hook(&app, &hook, &headers, &body).await;
    assert_eq!(s, StatusCode::OK);
    let said = comments(&gh, 2).await;
    assert!(said[1].contains("no longer applies"), "{said:?}");
    assert!(gh.pulls("acme/widget").is_empty());

    // A published document: a pull request adding docs/<kind>/<slug>.md, once per version.
    let text = "# What does the cache hold?\n\nFrames, in memory.\n";
    let (s, created) = app
        .post(
            "/api/v1/documents",
            &admin.access,
            json!({"project_id": project, "title": "What does the cache hold?", "kind": "faq", "text": text}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let doc = created["document"]["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (s, b) = app
            .post(
                &format!("/api/v1/documents/{doc}/publish"),
                &admin.access,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let opened = pulls(&gh, "acme/widget", 1).await;
    let branch = opened[0]["head"]["ref"].as_str().unwrap();
    assert!(
        branch.starts_with("morningai/docs/what-does-the-cache-hold-")
            && branch.ends_with(&format!("{}-v1", &doc.replace('-', "")[24..])),
        "{branch}"
    );
    assert_eq!(
        gh.files("acme/widget", branch).unwrap()["docs/faq/what-does-the-cache-hold.md"],
        text
    );
    assert!(
        opened[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Add docs/faq/what-does-the-cache-hold.md")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tasks_of(&app, &admin, "github_pr").await.len(), 3);
    assert_eq!(gh.pulls("acme/widget").len(), 1);

    // A branch of that name with a person's commit on it is theirs: never forced.
    let (_, created) = app
        .post(
            "/api/v1/documents",
            &admin.access,
            json!({"project_id": project, "title": "Who evicts frames?", "kind": "faq", "text": "# Who?\n"}),
        )
        .await;
    let doc = created["document"]["id"].as_str().unwrap().to_owned();
    let theirs = format!(
        "morningai/docs/who-evicts-frames-{}-v1",
        &doc.replace('-', "")[24..]
    );
    gh.branch_by_hand("acme/widget", &theirs);
    let before = gh.files("acme/widget", &theirs).unwrap();
    let (s, _) = app
        .post(
            &format!("/api/v1/documents/{doc}/publish"),
            &admin.access,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let prs = tasks_of(&app, &admin, "github_pr").await;
    let refused = wait_finished(&app, &admin, prs[0]["id"].as_str().unwrap()).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("is not MorningAI's"),
        "{refused}"
    );
    assert_eq!(gh.files("acme/widget", &theirs).unwrap(), before);
    assert_eq!(gh.pulls("acme/widget").len(), 1);
}

async fn slack_buttons_decide_approvals_as_linked_members(backend: Backend) {
    let fake = FakePlatform::start().await;
    let app = app_with(backend, &fake).await;
    let admin = app.signup("slack-approver").await;
    let other = app.signup("slack-other-tenant").await;
    remember(&app, &admin).await;
    let (_, p) = app
        .post("/api/v1/projects", &admin.access, json!({"name": "docs"}))
        .await;
    let project = p["id"].as_str().unwrap().to_owned();
    let secrets = json!({"signing_secret": SIGNING_SECRET, "bot_token": SLACK_TOKEN});
    for (body, field) in [
        (
            json!({"platform": "telegram", "name": "t", "secrets": {"bot_token": TELEGRAM_TOKEN},
                "approvals": {"channel": "C0APPROVE"}}),
            "approvals",
        ),
        (
            json!({"platform": "slack", "name": "s", "secrets": secrets,
                "approvals": {"channel": "#general"}}),
            "approvals.channel",
        ),
        // No one is named an approver: each member links themselves.
        (
            json!({"platform": "slack", "name": "s", "secrets": secrets,
                "approvals": {"channel": "C0APPROVE", "approvers": {"U0ADA": admin.user_id}}}),
            "approvers",
        ),
    ] {
        let (s, e) = app.post("/api/v1/integrations", &admin.access, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let (s, conn) = app
        .post(
            "/api/v1/integrations",
            &admin.access,
            json!({"platform": "slack", "name": "Approvals", "secrets": secrets,
                   "approvals": {"channel": "C0APPROVE"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{conn}");
    let id = conn["id"].as_str().unwrap();
    let hook = format!("/hooks/slack/{id}");
    let slash = |user: &str, text: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("command", "/morningai")
            .append_pair("text", text)
            .append_pair("user_id", user)
            .append_pair("trigger_id", &format!("t-{user}-{text}"))
            .append_pair("response_url", "https://hooks.slack.com/commands/T0/1/x")
            .finish()
    };
    let send = |body: String| {
        let app = &app;
        let hook = hook.clone();
        async move {
            let mut headers = slack_headers(&now(), &body);
            headers.push(("content-type", "application/x-www-form-urlencoded".into()));
            post_hook(app, &hook, &headers, &body).await
        }
    };
    // Another tenant cannot make a code for this connection; a code links once.
    let link = format!("/api/v1/integrations/{id}/link");
    let (s, e) = app.post(&link, &other.access, json!({})).await;
    assert_problem(s, &e, StatusCode::NOT_FOUND, "not_found");
    let (s, code) = app.post(&link, &admin.access, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{code}");
    let command = code["command"].as_str().unwrap();
    assert!(command.starts_with("/morningai link "), "{code}");
    let typed = command.trim_start_matches("/morningai ");
    let (s, said) = send(slash("U0ADA", typed)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        said["text"].as_str().unwrap().starts_with("Linked"),
        "{said}"
    );
    let (_, said) = send(slash("U0EVE", typed)).await;
    assert!(
        said["text"]
            .as_str()
            .unwrap()
            .contains("unknown, used or expired"),
        "{said}"
    );
    let (_, said) = send(slash("U0EVE", "link not-a-code")).await;
    assert!(said["text"].as_str().unwrap().contains("unknown"), "{said}");

    // A run that waits for an approval: its message, with the buttons, in the channel.
    fake.push([Reply::json(
        200,
        json!({"ok": true, "channel": "C0APPROVE", "ts": "1700000000.000100"}),
    )]);
    let (s, t) = app
        .post(
            "/api/v1/tasks",
            &admin.access,
            json!({"kind": "faq", "input": {"question": "How are jobs retried?", "project_id": project, "require_approval": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let held = wait_finished(&app, &admin, t["id"].as_str().unwrap()).await;
    assert_eq!(held["result"]["run_status"], "interrupted", "{held}");
    let posted = received(&fake, "/api/chat.postMessage", 1).await;
    let (_, pending) = app
        .get("/api/v1/approvals?status=pending", &admin.access)
        .await;
    let approval = pending[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(posted[0]["channel"], "C0APPROVE");
    let buttons = &posted[0]["blocks"][1]["elements"];
    assert_eq!(
        (
            buttons[0]["value"].as_str(),
            buttons[1]["action_id"].as_str()
        ),
        (Some(approval.as_str()), Some("morningai_reject")),
        "{}",
        posted[0]
    );
    assert!(
        posted[0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("How are jobs retried?")
    );

    let base = format!("http://{}", fake.addr);
    let click = |user: &str, action: &str, response_url: &str| {
        let payload = json!({"type": "block_actions", "user": {"id": user, "username": user},
            "team": {"id": "T0"}, "response_url": response_url, "trigger_id": "1.2.3",
            "actions": [{"type": "button", "block_id": "morningai_approval", "action_id": action,
                         "value": approval, "action_ts": "1700000001.1"}]});
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
    };
    // Someone who did not link an account: refused, told so, nothing decided.
    fake.push([Reply::json(200, json!({"ok": true}))]);
    let (s, _) = send(click(
        "U0EVE",
        "morningai_approve",
        &format!("{base}/api/actions/1"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let told = received(&fake, "/api/actions/1", 1).await;
    assert!(
        told[0]["text"].as_str().unwrap().contains("not linked"),
        "{told:?}"
    );
    assert_eq!(told[0]["replace_original"], false);
    // A forged click, and a response URL that is not Slack's: nothing decided.
    let mut forged = slack_headers(&now(), "payload=%7B%7D");
    forged.push(("content-type", "application/x-www-form-urlencoded".into()));
    let body = click(
        "U0ADA",
        "morningai_approve",
        &format!("{base}/api/actions/2"),
    );
    let (s, e) = post_hook(&app, &hook, &forged, &body).await;
    assert_problem(s, &e, StatusCode::UNAUTHORIZED, "bad_signature");
    let (s, e) = send(click(
        "U0ADA",
        "morningai_approve",
        "https://evil.example/actions/3",
    ))
    .await;
    assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (_, still) = app
        .get("/api/v1/approvals?status=pending", &admin.access)
        .await;
    assert_eq!(still.as_array().unwrap().len(), 1, "{still}");

    // The linked member: decided as themselves; the message says so.
    fake.push([Reply::json(200, json!({"ok": true}))]);
    let (s, _) = send(click(
        "U0ADA",
        "morningai_approve",
        &format!("{base}/api/actions/4"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let told = received(&fake, "/api/actions/4", 1).await;
    assert_eq!(told[0]["replace_original"], true);
    assert!(
        told[0]["text"]
            .as_str()
            .unwrap()
            .contains("Approved by <@U0ADA>"),
        "{told:?}"
    );
    let (_, decided) = app
        .get("/api/v1/approvals?status=approved", &admin.access)
        .await;
    assert_eq!(decided[0]["id"], approval.as_str(), "{decided}");
    assert_eq!(decided[0]["decided_by"], admin.user_id.as_str());
    // A second click (Slack retries, a colleague): the decision stands.
    fake.push([Reply::json(200, json!({"ok": true}))]);
    let (s, _) = send(click(
        "U0ADA",
        "morningai_reject",
        &format!("{base}/api/actions/5"),
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let told = received(&fake, "/api/actions/5", 1).await;
    assert!(
        told[0]["text"]
            .as_str()
            .unwrap()
            .contains("already approved"),
        "{told:?}"
    );
}
