//! Slack: the Events API's request signing (v0), the events MorningAI answers (a mention
//! in a channel, a direct message, the slash command), `chat.postMessage`, and approval
//! requests as messages whose Approve and Reject buttons come back as interactions.

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use serde_json::{Value, json};

/// The Slack Web API (`https://slack.com/api`).
pub const API: &str = "https://slack.com/api";
/// How far a request's timestamp may be from now, either way.
pub const WINDOW_SECS: i64 = 5 * 60;
/// The `action_id`s of an approval message's buttons.
pub const APPROVE: &str = "morningai_approve";
pub const REJECT: &str = "morningai_reject";
/// A section block's longest text.
const MAX_SECTION: usize = 3_000;

/// Checks `X-Slack-Signature` (`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` under the
/// app's signing secret) and that `X-Slack-Request-Timestamp` is within five minutes of
/// `now` (Unix seconds).
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(Rejection::Missing);
    };
    let expected = format!(
        "v0={}",
        crate::to_hex(&crate::hmac_sha256(
            signing_secret.as_bytes(),
            &[b"v0:", ts.as_bytes(), b":", body],
        ))
    );
    // The signature first, so a forged request learns nothing from the clock.
    if !crate::same(expected.as_bytes(), sig.as_bytes()) {
        return Err(Rejection::BadSignature);
    }
    match ts.parse::<i64>() {
        Ok(t) if now.abs_diff(t) <= WINDOW_SECS as u64 => Ok(()),
        _ => Err(Rejection::Stale),
    }
}

/// A verified Events API request, as far as MorningAI is concerned.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The endpoint check Slack makes when the URL is saved: echo the challenge.
    UrlVerification { challenge: String },
    /// A mention of the app, or a direct message to it: answer in its thread.
    Question(Question),
    /// `/morningai ask …`: acknowledge within 3 s (only the asker sees it), answer
    /// through the command's `response_url`.
    Command(Question),
    /// `/morningai` with something else than `ask …`: how to use it.
    Usage,
    /// A click on an approval message's Approve or Reject button.
    Decision(Decision),
    /// `/morningai link <code>`: the Slack user claims the MorningAI account that made the
    /// code (approvals they click are then decided as that account).
    Link { code: String, user: String },
    /// Anything else (edits, bots' own messages, other event types): acknowledged, unused.
    Ignored,
}

/// Who clicked which button of which approval's message.
#[derive(Debug, PartialEq)]
pub struct Decision {
    /// The approval's id (the button's value).
    pub approval: String,
    pub approve: bool,
    /// The Slack user who clicked.
    pub user: String,
    /// Where the message is updated (Slack's, valid for 30 minutes).
    pub response_url: String,
}

/// Parses a verified request body (JSON from the Events API, a form from a slash
/// command or an interaction); Err names what is malformed.
pub fn parse(body: &[u8]) -> Result<Event, String> {
    if !body.trim_ascii_start().starts_with(b"{") {
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        return match form.get("payload") {
            Some(payload) => interaction(payload),
            None => command(&form),
        };
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    match v.get("type").and_then(Value::as_str) {
        Some("url_verification") => Ok(Event::UrlVerification {
            challenge: field(&v, "challenge").ok_or("url_verification without a challenge")?,
        }),
        Some("event_callback") => {
            let event_id = field(&v, "event_id").ok_or("event_callback without an event_id")?;
            let e = v.get("event").ok_or("event_callback without an event")?;
            let kind = e.get("type").and_then(Value::as_str);
            let direct = kind == Some("message")
                && e.get("channel_type").and_then(Value::as_str) == Some("im");
            // Bots' messages (ours included) and edits or deletions carry one of these.
            let automatic = e.get("bot_id").is_some() || e.get("subtype").is_some();
            if !(kind == Some("app_mention") || direct) || automatic {
                return Ok(Event::Ignored);
            }
            let (Some(channel), Some(ts)) = (field(e, "channel"), field(e, "ts")) else {
                return Err("the event has no channel or ts".into());
            };
            let text = without_mentions(&field(e, "text").unwrap_or_default());
            if text.is_empty() {
                return Ok(Event::Ignored);
            }
            let thread_ts = field(e, "thread_ts").unwrap_or(ts);
            Ok(Event::Question(Question {
                event_id,
                text,
                reply_to: json!({"channel": channel, "thread_ts": thread_ts}),
            }))
        }
        _ => Ok(Event::Ignored),
    }
}

/// An interaction's `payload`: a `block_actions` click on an approval button is a
/// decision; any other interaction is acknowledged and unused.
fn interaction(payload: &str) -> Result<Event, String> {
    let v: Value =
        serde_json::from_str(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    if v.get("type").and_then(Value::as_str) != Some("block_actions") {
        return Ok(Event::Ignored);
    }
    let action = v
        .pointer("/actions/0")
        .ok_or("block_actions without an action")?;
    let approve = match action.get("action_id").and_then(Value::as_str) {
        Some(APPROVE) => true,
        Some(REJECT) => false,
        _ => return Ok(Event::Ignored),
    };
    let text = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("block_actions without {p}"))
    };
    Ok(Event::Decision(Decision {
        approval: action
            .get("value")
            .and_then(Value::as_str)
            .ok_or("an approval button without its value")?
            .to_owned(),
        approve,
        user: text("/user/id")?,
        response_url: text("/response_url")?,
    }))
}

/// A slash command's form: `command`, `text`, `response_url`, `trigger_id`, ….
fn command(form: &std::collections::HashMap<String, String>) -> Result<Event, String> {
    let field = |k: &str| {
        form.get(k)
            .cloned()
            .ok_or(format!("a slash command without {k}"))
    };
    field("command")?;
    let text = field("text").unwrap_or_default();
    if let Some(code) = text.trim().strip_prefix("link")
        && code.starts_with(char::is_whitespace)
        && !code.trim().is_empty()
    {
        return Ok(Event::Link {
            code: code.trim().to_owned(),
            user: field("user_id")?,
        });
    }
    let question = match text.trim().strip_prefix("ask") {
        Some(q) if q.starts_with(char::is_whitespace) && !q.trim().is_empty() => q.trim(),
        _ => return Ok(Event::Usage),
    };
    Ok(Event::Command(Question {
        // One invocation, one trigger id (Slack does not retry slash commands).
        event_id: field("trigger_id")?,
        text: question.to_owned(),
        reply_to: json!({"response_url": field("response_url")?}),
    }))
}

/// The text without `<@U123>` mentions (the app's own name in front of the question).
fn without_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("<@") {
        out.push_str(&rest[..i]);
        match rest[i..].find('>') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes the three characters Slack's mrkdwn reserves.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An answer as a Slack message: the text, then its sources and the link to the task.
pub fn format(answer: &str, sources: &[String], link: Option<&str>) -> String {
    let mut out = escape(answer.trim());
    if !sources.is_empty() {
        out.push_str("\n\n*Sources*");
        for s in sources {
            out.push_str("\n• ");
            out.push_str(&escape(s));
        }
    }
    if let Some(url) = link {
        out.push_str(&format!("\n<{}|Open in MorningAI>", escape(url)));
    }
    out
}

/// `chat.postMessage` into `reply_to` (`{channel, thread_ts}`), or a slash command's
/// answer to its `response_url`, visible to the channel.
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Value, DeliveryFailed> {
    if let Some(url) = reply_to.get("response_url").and_then(Value::as_str) {
        let body = json!({"response_type": "in_channel", "text": text});
        return c.outbound.post(url, None, &body, on_attempt).await;
    }
    let mut body = json!({"text": text, "unfurl_links": false});
    for k in ["channel", "thread_ts"] {
        if let Some(v) = reply_to.get(k) {
            body[k] = v.clone();
        }
    }
    c.outbound
        .post(
            &format!("{}/chat.postMessage", c.api),
            Some(c.token),
            &body,
            on_attempt,
        )
        .await
}

/// An approval request as a message: what is asked, its details, Approve and Reject
/// buttons carrying the approval's id, the link to it.
pub fn approval_message(title: &str, details: &str, approval: &str, link: Option<&str>) -> Value {
    let mut text = format!("*Approval requested:* {}", escape(title));
    if !details.trim().is_empty() {
        text.push('\n');
        text.push_str(&escape(details.trim()));
    }
    if text.chars().count() > MAX_SECTION {
        text = text.chars().take(MAX_SECTION - 1).collect::<String>() + "…";
    }
    let button = |action: &str, label: &str, style: &str| {
        json!({"type": "button", "action_id": action, "style": style, "value": approval,
               "text": {"type": "plain_text", "text": label}})
    };
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}),
        json!({"type": "actions", "block_id": "morningai_approval", "elements": [
            button(APPROVE, "Approve", "primary"), button(REJECT, "Reject", "danger")]}),
    ];
    if let Some(url) = link {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("<{}|Open in MorningAI>", escape(url))}]}));
    }
    json!({"text": format!("Approval requested: {title}"), "blocks": blocks})
}

/// `chat.postMessage` of a whole message (`text`, `blocks`) into `channel`.
pub async fn post(
    c: &Client<'_>,
    channel: &str,
    message: &Value,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Value, DeliveryFailed> {
    let mut body = message.clone();
    body["channel"] = json!(channel);
    body["unfurl_links"] = json!(false);
    c.outbound
        .post(
            &format!("{}/chat.postMessage", c.api),
            Some(c.token),
            &body,
            on_attempt,
        )
        .await
}

/// `auth.test`: whether the token is valid, and the bot's name.
pub async fn check(c: &Client<'_>) -> Result<Value, DeliveryFailed> {
    c.outbound
        .get_once(&format!("{}/auth.test", c.api), Some(c.token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
        format!(
            "v0={}",
            crate::to_hex(&crate::hmac_sha256(
                secret.as_bytes(),
                &[b"v0:", ts.as_bytes(), b":", body]
            ))
        )
    }

    #[test]
    fn signatures_fail_closed() {
        let body = br#"{"type":"event_callback"}"#;
        let now = 1_700_000_000;
        let ts = now.to_string();
        let good = sign("s3cret", &ts, body);
        assert_eq!(verify("s3cret", Some(&ts), Some(&good), body, now), Ok(()));
        assert_eq!(
            verify("s3cret", Some(&ts), Some(&good), b"{}", now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify("other", Some(&ts), Some(&good), body, now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify("s3cret", None, Some(&good), body, now),
            Err(Rejection::Missing)
        );
        let old = (now - WINDOW_SECS - 1).to_string();
        let signed_old = sign("s3cret", &old, body);
        assert_eq!(
            verify("s3cret", Some(&old), Some(&signed_old), body, now),
            Err(Rejection::Stale)
        );
    }

    #[test]
    fn mentions_and_direct_messages_are_questions() {
        let mention = json!({"type": "event_callback", "event_id": "Ev1", "event": {
            "type": "app_mention", "user": "U1", "text": "<@U0BOT> how do I  connect?",
            "ts": "1.5", "channel": "C1"}});
        assert_eq!(
            parse(mention.to_string().as_bytes()).unwrap(),
            Event::Question(Question {
                event_id: "Ev1".into(),
                text: "how do I connect?".into(),
                reply_to: json!({"channel": "C1", "thread_ts": "1.5"}),
            })
        );
        let own = json!({"type": "event_callback", "event_id": "Ev2", "event": {
            "type": "message", "channel_type": "im", "bot_id": "B1", "text": "answer", "ts": "2", "channel": "D1"}});
        assert_eq!(parse(own.to_string().as_bytes()).unwrap(), Event::Ignored);
        assert!(parse(b"not json").is_err());
        let click = |action: &str| {
            let payload = json!({"type": "block_actions", "user": {"id": "U7"},
                "response_url": "https://hooks.slack.com/actions/T1/1/x",
                "actions": [{"action_id": action, "value": "a-1", "type": "button"}]});
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &payload.to_string())
                .finish()
        };
        assert_eq!(
            parse(click(REJECT).as_bytes()).unwrap(),
            Event::Decision(Decision {
                approval: "a-1".into(),
                approve: false,
                user: "U7".into(),
                response_url: "https://hooks.slack.com/actions/T1/1/x".into(),
            })
        );
        assert_eq!(parse(click("other").as_bytes()).unwrap(), Event::Ignored);
        assert_eq!(
            parse(b"command=%2Fmorningai&text=link+abc123&user_id=U7&trigger_id=t&response_url=r")
                .unwrap(),
            Event::Link {
                code: "abc123".into(),
                user: "U7".into()
            }
        );
        assert!(parse(b"payload=%7Bnot").is_err());
        let m = approval_message("Publish <this>?", "draft", "a-1", Some("https://m/a"));
        assert_eq!(m["blocks"][1]["elements"][0]["value"], "a-1");
        assert!(
            m["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("&lt;this&gt;")
        );
        assert_eq!(escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
