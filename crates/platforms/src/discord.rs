//! Discord: the interactions endpoint (Ed25519 over timestamp ‖ body under the
//! application's public key), PING → PONG, the `/ask` slash command answered with a
//! deferred response, then the original response edited with the answer (follow-ups for
//! what does not fit in 2,000 characters).

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use serde_json::{Value, json};

/// The HTTP API (`https://discord.com/api/v10`).
pub const API: &str = "https://discord.com/api/v10";
/// The longest message content.
pub const MAX_MESSAGE: usize = 2_000;
/// How far the signed timestamp may be from now (Unix seconds), either way.
pub const WINDOW_SECS: i64 = 5 * 60;

/// Checks `X-Signature-Ed25519` (hex) over `X-Signature-Timestamp` ‖ body with the
/// application's public key (hex), and that the timestamp is recent.
pub fn verify(
    public_key_hex: &str,
    signature_hex: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    let (Some(sig), Some(ts)) = (signature_hex, timestamp) else {
        return Err(Rejection::Missing);
    };
    let (Some(key), Some(sig)) = (from_hex(public_key_hex), from_hex(sig)) else {
        return Err(Rejection::BadSignature);
    };
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&message, &sig)
        .map_err(|_| Rejection::BadSignature)?;
    match ts.parse::<i64>() {
        Ok(t) if now.abs_diff(t) <= WINDOW_SECS as u64 => Ok(()),
        _ => Err(Rejection::Stale),
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `s` is an Ed25519 public key in hex (what the Developer Portal shows).
pub fn is_public_key(s: &str) -> bool {
    from_hex(s).is_some_and(|k| k.len() == 32)
}

/// A verified interaction.
#[derive(Debug, PartialEq)]
pub enum Interaction {
    /// Discord's endpoint check: answer `{"type": 1}`.
    Ping,
    /// `/ask question:…`: answer `{"type": 5}` (deferred), then edit the original.
    Question(Question),
    /// Any other command or component: acknowledged with a short note.
    Other,
}

pub fn parse(body: &[u8]) -> Result<Interaction, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match v.get("type").and_then(Value::as_u64) {
        Some(1) => Ok(Interaction::Ping),
        Some(2) if v.pointer("/data/name").and_then(Value::as_str) == Some("ask") => {
            let question = v
                .pointer("/data/options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|o| o.get("name").and_then(Value::as_str) == Some("question"))
                .and_then(|o| o.get("value"))
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("");
            if question.is_empty() {
                return Ok(Interaction::Other);
            }
            let field = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or(format!("an interaction without {k}"))
            };
            Ok(Interaction::Question(Question {
                event_id: field("id")?,
                text: question.to_owned(),
                reply_to: json!({"application_id": field("application_id")?, "token": field("token")?}),
            }))
        }
        Some(_) => Ok(Interaction::Other),
        None => Err("an interaction without a type".into()),
    }
}

/// Escapes Discord's markdown characters in plain text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\*_~`|>#-[]()".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Edits the deferred response into the answer; what does not fit follows as
/// follow-up messages.
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Vec<Value>, DeliveryFailed> {
    let s = |k: &str| reply_to.get(k).and_then(Value::as_str).unwrap_or_default();
    let hook = format!("{}/webhooks/{}/{}", c.api, s("application_id"), s("token"));
    let mut sent = Vec::new();
    for (i, part) in crate::split(text, MAX_MESSAGE).into_iter().enumerate() {
        let body = json!({"content": part, "allowed_mentions": {"parse": []}});
        sent.push(if i == 0 {
            c.outbound
                .patch(&format!("{hook}/messages/@original"), &body, on_attempt)
                .await?
        } else {
            c.outbound.post(&hook, None, &body, on_attempt).await?
        });
    }
    Ok(sent)
}

/// The bot's user: whether the bot token works.
pub async fn check(c: &Client<'_>) -> Result<Value, DeliveryFailed> {
    c.outbound
        .get_once_with(&format!("{}/users/@me", c.api), &format!("Bot {}", c.token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactions_are_verified_and_parsed() {
        use ring::signature::KeyPair;
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let public = crate::to_hex(pair.public_key().as_ref());
        assert!(is_public_key(&public) && !is_public_key("abcd"));
        let body = br#"{"type":1}"#;
        let now = 1_700_000_000;
        let ts = now.to_string();
        let sig = crate::to_hex(pair.sign(&[ts.as_bytes(), body].concat()).as_ref());
        assert_eq!(verify(&public, Some(&sig), Some(&ts), body, now), Ok(()));
        assert_eq!(
            verify(&public, Some(&sig), Some(&ts), br#"{"type":2}"#, now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&public, Some(&sig), Some(&ts), body, now + WINDOW_SECS + 1),
            Err(Rejection::Stale)
        );
        assert_eq!(
            verify(&public, Some("zz"), Some(&ts), body, now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&public, None, Some(&ts), body, now),
            Err(Rejection::Missing)
        );
        assert_eq!(parse(body).unwrap(), Interaction::Ping);
        let ask = json!({"type": 2, "id": "1", "application_id": "A", "token": "T",
            "data": {"name": "ask", "options": [{"name": "question", "type": 3, "value": " why? "}]}});
        let Interaction::Question(q) = parse(ask.to_string().as_bytes()).unwrap() else {
            panic!("not a question")
        };
        assert_eq!(
            (q.text.as_str(), &q.reply_to),
            ("why?", &json!({"application_id": "A", "token": "T"}))
        );
        assert_eq!(escape("a*b_c"), "a\\*b\\_c");
    }
}
