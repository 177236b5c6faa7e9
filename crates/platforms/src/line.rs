//! LINE Messaging API: `X-Line-Signature` (base64 HMAC-SHA256 of the body under the
//! channel secret), text messages as questions, and the answer by reply token while it is
//! valid (one minute), by push message after that.

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use serde_json::{Value, json};

/// The Messaging API (`https://api.line.me`).
pub const API: &str = "https://api.line.me";
/// The longest text message.
pub const MAX_MESSAGE: usize = 5_000;
/// Message objects one reply or push may carry.
const MAX_MESSAGES: usize = 5;
/// How long a reply token is used after its event (LINE honours it for one minute).
pub const REPLY_WINDOW_MS: i64 = 50_000;

/// Checks `X-Line-Signature` against the body.
pub fn verify(channel_secret: &str, signature: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(crate::hmac_sha256(channel_secret.as_bytes(), &[body]));
    crate::check_signature(&expected, signature)
}

/// The questions in a verified webhook body: its text messages (in a group or room, only
/// those starting with `/ask`). LINE's "Verify" button sends no events.
pub fn parse(body: &[u8]) -> Result<Vec<Question>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .ok_or("a webhook without events")?;
    let mut out = Vec::new();
    for e in events {
        if e.get("type").and_then(Value::as_str) != Some("message")
            || e.pointer("/message/type").and_then(Value::as_str) != Some("text")
        {
            continue;
        }
        let text = e
            .pointer("/message/text")
            .and_then(Value::as_str)
            .unwrap_or("");
        let source = e.get("source").ok_or("an event without a source")?;
        let direct = source.get("type").and_then(Value::as_str) == Some("user");
        let question = match text.trim().strip_prefix("/ask") {
            Some(rest) => rest.trim(),
            None if direct => text.trim(),
            None => continue,
        };
        if question.is_empty() {
            continue;
        }
        let to = ["groupId", "roomId", "userId"]
            .iter()
            .find_map(|k| source.get(*k).and_then(Value::as_str))
            .ok_or("an event without a source id")?;
        let id = e
            .get("webhookEventId")
            .and_then(Value::as_str)
            .ok_or("an event without a webhookEventId")?;
        out.push(Question {
            event_id: id.to_owned(),
            text: question.to_owned(),
            reply_to: json!({
                "reply_token": e.get("replyToken"),
                "to": to,
                "timestamp": e.get("timestamp"),
            }),
        });
    }
    Ok(out)
}

/// Replies while the event's reply token is fresh (`now_ms`), else pushes; a reply
/// token LINE no longer takes falls back to a push.
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    now_ms: i64,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Vec<Value>, DeliveryFailed> {
    let mut parts = crate::split(text, MAX_MESSAGE);
    parts.truncate(MAX_MESSAGES);
    let messages: Vec<Value> = parts
        .iter()
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    let fresh = reply_to
        .get("timestamp")
        .and_then(Value::as_i64)
        .is_some_and(|t| now_ms.saturating_sub(t) < REPLY_WINDOW_MS);
    if let (true, Some(token)) = (fresh, reply_to.get("reply_token").and_then(Value::as_str)) {
        let body = json!({"replyToken": token, "messages": messages});
        match c
            .outbound
            .post(
                &format!("{}/v2/bot/message/reply", c.api),
                Some(c.token),
                &body,
                on_attempt,
            )
            .await
        {
            Err(e) if e.message.contains("Invalid reply token") => {}
            done => return done.map(|v| vec![v]),
        }
    }
    let body = json!({"to": reply_to.get("to"), "messages": messages});
    c.outbound
        .post(
            &format!("{}/v2/bot/message/push", c.api),
            Some(c.token),
            &body,
            on_attempt,
        )
        .await
        .map(|v| vec![v])
}

/// The bot's profile: whether the channel access token works.
pub async fn check(c: &Client<'_>) -> Result<Value, DeliveryFailed> {
    c.outbound
        .get_once(&format!("{}/v2/bot/info", c.api), Some(c.token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_questions() {
        use base64::Engine;
        let body = br#"{"destination":"U1","events":[]}"#;
        let sig = base64::engine::general_purpose::STANDARD
            .encode(crate::hmac_sha256(b"secret", &[body]));
        assert_eq!(verify("secret", Some(&sig), body), Ok(()));
        assert_eq!(
            verify("other", Some(&sig), body),
            Err(Rejection::BadSignature)
        );
        assert_eq!(verify("secret", None, body), Err(Rejection::Missing));
        assert!(parse(body).unwrap().is_empty());
        let event = |source: Value, text: &str| {
            json!({"events": [{"type": "message", "webhookEventId": "01H", "replyToken": "rt", "timestamp": 5,
                "source": source, "message": {"type": "text", "id": "1", "text": text}}]})
            .to_string()
        };
        let q = parse(event(json!({"type": "user", "userId": "U9"}), "how?").as_bytes()).unwrap();
        assert_eq!(q[0].text, "how?");
        assert_eq!(
            q[0].reply_to,
            json!({"reply_token": "rt", "to": "U9", "timestamp": 5})
        );
        let group = json!({"type": "group", "groupId": "G1", "userId": "U9"});
        assert!(
            parse(event(group.clone(), "chatter").as_bytes())
                .unwrap()
                .is_empty()
        );
        let q = parse(event(group, "/ask why?").as_bytes()).unwrap();
        assert_eq!(
            (q[0].text.as_str(), &q[0].reply_to["to"]),
            ("why?", &json!("G1"))
        );
    }
}
