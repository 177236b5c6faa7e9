//! Telegram: the webhook's secret-token header, the `/ask` command, and the Bot API calls
//! (`setWebhook`, `getMe`, `sendMessage` in MarkdownV2, split at the 4,096-character limit).

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use serde_json::{Value, json};

/// The Bot API (`https://api.telegram.org`).
pub const API: &str = "https://api.telegram.org";
/// The longest message text.
pub const MAX_MESSAGE: usize = 4_096;

/// Checks `X-Telegram-Bot-Api-Secret-Token` against the secret given to `setWebhook`.
pub fn verify(secret_token: &str, header: Option<&str>) -> Result<(), Rejection> {
    crate::check_signature(secret_token, header)
}

/// A verified update: `Some` for `/ask …` (or `/ask@bot …`) in a message.
pub fn parse(body: &[u8]) -> Result<Option<Question>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let update_id = v
        .get("update_id")
        .and_then(Value::as_i64)
        .ok_or("an update without an update_id")?;
    let Some(m) = v.get("message") else {
        return Ok(None);
    };
    let text = m.get("text").and_then(Value::as_str).unwrap_or("");
    let Some(rest) = text.strip_prefix("/ask") else {
        return Ok(None);
    };
    // `/ask@SomeBot question` in groups; `/asking` is another command.
    let rest = match rest.strip_prefix('@') {
        Some(r) => r.split_once(char::is_whitespace).map_or("", |(_, q)| q),
        None if rest.is_empty() || rest.starts_with(char::is_whitespace) => rest,
        None => return Ok(None),
    };
    let question = rest.trim();
    if question.is_empty() {
        return Ok(None);
    }
    let chat = m
        .pointer("/chat/id")
        .and_then(Value::as_i64)
        .ok_or("a message without a chat id")?;
    let message_id = m
        .get("message_id")
        .and_then(Value::as_i64)
        .ok_or("a message without a message_id")?;
    Ok(Some(Question {
        event_id: update_id.to_string(),
        text: question.to_owned(),
        reply_to: json!({"chat_id": chat, "message_id": message_id}),
    }))
}

/// Escapes every character MarkdownV2 reserves.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An answer as MarkdownV2: the text, then its sources and the link to the task.
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
        // Inside a link's URL only `)` and `\` are escaped.
        let url = url.replace('\\', "\\\\").replace(')', "\\)");
        out.push_str(&format!("\n[Open in MorningAI]({url})"));
    }
    out
}

/// Splits formatted text into messages Telegram takes (see [`crate::split`]).
pub fn split(text: &str) -> Vec<String> {
    crate::split(text, MAX_MESSAGE)
}

fn method_url(c: &Client<'_>, method: &str) -> String {
    format!("{}/bot{}/{method}", c.api, c.token)
}

/// Sends `text` (MarkdownV2) as one or more messages, the first replying to the
/// question's message.
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Vec<Value>, DeliveryFailed> {
    let mut sent = Vec::new();
    for (i, part) in split(text).into_iter().enumerate() {
        let mut body = json!({
            "chat_id": reply_to.get("chat_id").cloned().unwrap_or(Value::Null),
            "text": part,
            "parse_mode": "MarkdownV2",
            "link_preview_options": {"is_disabled": true},
        });
        if i == 0
            && let Some(id) = reply_to.get("message_id")
        {
            body["reply_parameters"] =
                json!({"message_id": id, "allow_sending_without_reply": true});
        }
        sent.push(
            c.outbound
                .post(&method_url(c, "sendMessage"), None, &body, on_attempt)
                .await?,
        );
    }
    Ok(sent)
}

/// `setWebhook`: Telegram posts the bot's updates to `url` with `secret_token`.
pub async fn set_webhook(
    c: &Client<'_>,
    url: &str,
    secret_token: &str,
) -> Result<Value, DeliveryFailed> {
    let body = json!({"url": url, "secret_token": secret_token, "allowed_updates": ["message"]});
    c.outbound
        .post(&method_url(c, "setWebhook"), None, &body, &mut |_| {})
        .await
}

/// `getMe`: whether the token is valid, and the bot's name.
pub async fn check(c: &Client<'_>) -> Result<Value, DeliveryFailed> {
    c.outbound.get_once(&method_url(c, "getMe"), None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ask_commands_are_questions() {
        let update = |text: &str| {
            json!({"update_id": 7, "message": {"message_id": 3, "chat": {"id": -42}, "text": text}})
                .to_string()
        };
        let q = parse(update("/ask how do I index?").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(q.text, "how do I index?");
        assert_eq!(q.event_id, "7");
        assert_eq!(q.reply_to, json!({"chat_id": -42, "message_id": 3}));
        assert_eq!(
            parse(update("/ask@MorningBot  why?").as_bytes())
                .unwrap()
                .unwrap()
                .text,
            "why?"
        );
        for other in ["/asking x", "/ask", "hello", "/start"] {
            assert_eq!(parse(update(other).as_bytes()).unwrap(), None, "{other}");
        }
        assert!(parse(b"[]").is_err());
        assert_eq!(verify("tok", Some("tok")), Ok(()));
        assert_eq!(verify("tok", Some("tok2")), Err(Rejection::BadSignature));
        assert_eq!(verify("tok", None), Err(Rejection::Missing));
    }

    #[test]
    fn markdown_v2_is_escaped_and_split_within_the_limit() {
        assert_eq!(escape("a.b (c) 1-2!"), "a\\.b \\(c\\) 1\\-2\\!");
        // Escapes everywhere, one word longer than a message, lines of every length.
        let answer = format!(
            "{}\n{}\n{}",
            "x.".repeat(3_000),
            "word ".repeat(900),
            "y".repeat(5_000)
        );
        let text = format(
            &answer,
            &["src/lib.rs".into()],
            Some("https://m.example/t/1"),
        );
        let parts = split(&text);
        assert!(parts.len() >= 4, "{}", parts.len());
        for p in &parts {
            assert!(p.chars().count() <= MAX_MESSAGE);
            let run = p.chars().rev().take_while(|&c| c == '\\').count();
            assert_eq!(run % 2, 0, "a part ends inside an escape");
        }
        let joined: String = parts.concat();
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(
            joined
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
            squeezed,
            "nothing lost but the whitespace at the cuts"
        );
        assert_eq!(split("short"), vec!["short".to_owned()]);
        // A part that would open on an escaped line break, and a line continuation whose
        // break is the window's last: each part advances, nothing is lost.
        for text in [
            format!("\\\n{}", "a ".repeat(3_000)),
            format!("{}cmd \\\n{}", "b".repeat(4_000), "c ".repeat(2_000)),
        ] {
            let parts = crate::split(&text, 2_000);
            assert!(
                parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().count() <= 2_000)
            );
            let kept: String = parts
                .concat()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let all: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(kept, all);
        }
    }
}
