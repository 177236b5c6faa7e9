//! Facebook Messenger: the subscription handshake (`hub.challenge` for the verify token),
//! `X-Hub-Signature-256` (`sha256=` + hex HMAC-SHA256 of the body under the app secret),
//! text messages as questions, and the Send API.

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use serde_json::{Value, json};

/// The Graph API (`https://graph.facebook.com/v21.0`).
pub const API: &str = "https://graph.facebook.com/v21.0";
/// The longest text message.
pub const MAX_MESSAGE: usize = 2_000;

/// The handshake: the challenge to echo when `mode` is `subscribe` and the token matches.
pub fn handshake<'a>(
    verify_token: &str,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
) -> Result<&'a str, Rejection> {
    match (mode, token, challenge) {
        (Some("subscribe"), Some(t), Some(c))
            if crate::same(t.as_bytes(), verify_token.as_bytes()) =>
        {
            Ok(c)
        }
        (Some(_), Some(_), Some(_)) => Err(Rejection::BadSignature),
        _ => Err(Rejection::Missing),
    }
}

/// Checks `X-Hub-Signature-256` against the body.
pub fn verify(app_secret: &str, signature: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
    let expected = format!(
        "sha256={}",
        crate::to_hex(&crate::hmac_sha256(app_secret.as_bytes(), &[body]))
    );
    crate::check_signature(&expected, signature)
}

/// The text messages people sent the page (echoes of the page's own messages skipped).
pub fn parse(body: &[u8]) -> Result<Vec<Question>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let entries = v
        .get("entry")
        .and_then(Value::as_array)
        .ok_or("a webhook without entries")?;
    let mut out = Vec::new();
    for m in entries
        .iter()
        .filter_map(|e| e.get("messaging").and_then(Value::as_array))
        .flatten()
    {
        let Some(msg) = m.get("message") else {
            continue;
        };
        if msg.get("is_echo").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let text = msg.get("text").and_then(Value::as_str).unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let mid = msg
            .get("mid")
            .and_then(Value::as_str)
            .ok_or("a message without a mid")?;
        let sender = m
            .pointer("/sender/id")
            .and_then(Value::as_str)
            .ok_or("a message without a sender")?;
        out.push(Question {
            event_id: mid.to_owned(),
            text: text.to_owned(),
            reply_to: json!({"recipient": sender}),
        });
    }
    Ok(out)
}

/// Sends `text` to the person, in as many messages as it takes.
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Vec<Value>, DeliveryFailed> {
    let mut sent = Vec::new();
    for part in crate::split(text, MAX_MESSAGE) {
        let body = json!({
            "recipient": {"id": reply_to.get("recipient")},
            "messaging_type": "RESPONSE",
            "message": {"text": part},
        });
        sent.push(
            c.outbound
                .post(
                    &format!("{}/me/messages", c.api),
                    Some(c.token),
                    &body,
                    on_attempt,
                )
                .await?,
        );
    }
    Ok(sent)
}

/// The page: whether the page access token works.
pub async fn check(c: &Client<'_>) -> Result<Value, DeliveryFailed> {
    c.outbound
        .get_once(&format!("{}/me", c.api), Some(c.token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_signatures_and_questions() {
        assert_eq!(
            handshake("vt", Some("subscribe"), Some("vt"), Some("123")),
            Ok("123")
        );
        assert_eq!(
            handshake("vt", Some("subscribe"), Some("no"), Some("123")),
            Err(Rejection::BadSignature)
        );
        assert_eq!(handshake("vt", None, None, None), Err(Rejection::Missing));
        let body = json!({"object": "page", "entry": [{"id": "P", "time": 1, "messaging": [
            {"sender": {"id": "PSID1"}, "recipient": {"id": "P"}, "timestamp": 1, "message": {"mid": "m_1", "text": "how?"}},
            {"sender": {"id": "P"}, "recipient": {"id": "PSID1"}, "timestamp": 2, "message": {"mid": "m_2", "text": "an answer", "is_echo": true}},
        ]}]})
        .to_string();
        let sig = format!(
            "sha256={}",
            crate::to_hex(&crate::hmac_sha256(b"appsecret", &[body.as_bytes()]))
        );
        assert_eq!(verify("appsecret", Some(&sig), body.as_bytes()), Ok(()));
        assert_eq!(
            verify("appsecret", Some("sha256=00"), body.as_bytes()),
            Err(Rejection::BadSignature)
        );
        let q = parse(body.as_bytes()).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            (q[0].event_id.as_str(), &q[0].reply_to),
            ("m_1", &json!({"recipient": "PSID1"}))
        );
    }
}
