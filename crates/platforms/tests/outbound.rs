//! The outbound retry policy against a local server that answers as a platform would.

use morningai_conformance::fake_openai::{FakeOpenAi as FakePlatform, Reply};
use morningai_platforms::{Attempt, Outbound};
use serde_json::json;
use std::time::{Duration, Instant};

fn quick() -> Outbound {
    Outbound::default().with_backoff(Duration::from_millis(50))
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_message_goes_once() {
    let fake = FakePlatform::start().await;
    fake.push([
        Reply::Raw {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: json!({"ok": false, "error": "ratelimited"}).to_string(),
        },
        Reply::json(200, json!({"ok": true, "ts": "2.0"})),
    ]);
    let mut attempts: Vec<Attempt> = Vec::new();
    let started = Instant::now();
    let answer = quick()
        .post(
            &format!("http://{}/api/chat.postMessage", fake.addr),
            Some("xoxb-token"),
            &json!({"channel": "C1", "text": "hi"}),
            &mut |a| attempts.push(a.clone()),
        )
        .await
        .unwrap();
    assert_eq!(answer["ts"], "2.0");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, Some(429));
    assert_eq!(attempts[1].outcome, "delivered");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "one retry, nothing more");
    assert_eq!(seen[1].headers["authorization"], "Bearer xoxb-token");
    assert_eq!(seen[1].body["text"], "hi");
}

#[tokio::test]
async fn telegram_waits_come_in_the_body_and_long_waits_fail_at_once() {
    let fake = FakePlatform::start().await;
    fake.push([
        Reply::json(
            429,
            json!({"ok": false, "error_code": 429, "parameters": {"retry_after": 1}}),
        ),
        Reply::json(200, json!({"ok": true, "result": {"message_id": 9}})),
        Reply::json(
            429,
            json!({"ok": false, "error_code": 429, "parameters": {"retry_after": 3600}}),
        ),
    ]);
    let url = format!("http://{}/botT/sendMessage", fake.addr);
    let out = quick();
    let ok = out.post(&url, None, &json!({}), &mut |_| {}).await.unwrap();
    assert_eq!(ok["result"]["message_id"], 9);
    let err = out
        .post(&url, None, &json!({}), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 1);
    assert!(err.message.contains("3600"), "{}", err.message);
}

#[tokio::test]
async fn a_platform_down_gets_bounded_retries_then_a_failure() {
    let fake = FakePlatform::start().await;
    fake.push((0..4).map(|_| Reply::json(503, json!({"ok": false}))));
    let mut attempts = Vec::new();
    let err = quick()
        .post(
            &format!("http://{}/api/chat.postMessage", fake.addr),
            None,
            &json!({}),
            &mut |a| attempts.push(a.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 4);
    assert_eq!(fake.seen().len(), 4);
    assert!(attempts.last().unwrap().outcome.ends_with("giving up"));
    // A refusal (not a rate limit, not the platform's fault) is not retried.
    fake.push([Reply::json(
        200,
        json!({"ok": false, "error": "channel_not_found"}),
    )]);
    let err = quick()
        .post(
            &format!("http://{}/api/chat.postMessage", fake.addr),
            None,
            &json!({}),
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.attempts, err.message.as_str()),
        (1, "200: channel_not_found")
    );
    // Unreachable: nothing listens there.
    let err = quick()
        .post("http://127.0.0.1:9/x", None, &json!({}), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.attempts, 4);
}
