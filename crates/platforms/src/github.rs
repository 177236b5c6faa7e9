//! GitHub: an App's (or a repository's) webhook, `X-Hub-Signature-256` under the webhook
//! secret; `/morningai ask …` in an issue or pull-request comment is a question, answered
//! as a comment through the REST API.

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use serde_json::{Value, json};

/// The REST API (`https://api.github.com`).
pub const API: &str = "https://api.github.com";
/// The longest comment body.
pub const MAX_COMMENT: usize = 65_536;
const COMMAND: &str = "/morningai ask";

/// Checks `X-Hub-Signature-256` (the same scheme as Messenger's).
pub fn verify(secret: &str, signature: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
    crate::messenger::verify(secret, signature, body)
}

/// A verified delivery, by its `X-GitHub-Event`.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Sent when the webhook is created: acknowledged.
    Ping,
    Question(Question),
    Ignored,
}

/// `delivery` is `X-GitHub-Delivery`: a redelivery keeps it, so it is the event id.
pub fn parse(event: Option<&str>, delivery: Option<&str>, body: &[u8]) -> Result<Event, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match event {
        Some("ping") => return Ok(Event::Ping),
        Some("issue_comment") => {}
        _ => return Ok(Event::Ignored),
    }
    if v.get("action").and_then(Value::as_str) != Some("created")
        || v.pointer("/comment/user/type").and_then(Value::as_str) == Some("Bot")
        || v.pointer("/comment/performed_via_github_app")
            .is_some_and(|a| !a.is_null())
    {
        return Ok(Event::Ignored);
    }
    let text = v
        .pointer("/comment/body")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(rest) = text.trim_start().strip_prefix(COMMAND) else {
        return Ok(Event::Ignored);
    };
    // The command's line only: what follows is the comment's own text.
    let question = rest.lines().next().unwrap_or("").trim();
    if question.is_empty() || !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return Ok(Event::Ignored);
    }
    let repo = v
        .pointer("/repository/full_name")
        .and_then(Value::as_str)
        .ok_or("an issue_comment without its repository")?;
    let number = v
        .pointer("/issue/number")
        .and_then(Value::as_u64)
        .ok_or("an issue_comment without its issue number")?;
    let id = delivery.ok_or("a delivery without X-GitHub-Delivery")?;
    Ok(Event::Question(Question {
        event_id: id.to_owned(),
        text: question.to_owned(),
        reply_to: json!({"repo": repo, "issue": number}),
    }))
}

/// An answer as a comment: the answer's markdown, its sources, the link to the task.
pub fn format(answer: &str, sources: &[String], link: Option<&str>) -> String {
    let mut out = answer.trim().to_owned();
    if !sources.is_empty() {
        out.push_str("\n\n**Sources**\n");
        for s in sources {
            out.push_str(&format!("\n- `{}`", s.replace('`', "'")));
        }
    }
    if let Some(url) = link {
        out.push_str(&format!("\n\n[Open in MorningAI]({url})"));
    }
    out
}

/// Comments on the issue or pull request in `reply_to` (`{repo, issue}`).
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Vec<Value>, DeliveryFailed> {
    let repo = reply_to
        .get("repo")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let issue = reply_to
        .get("issue")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    // Owner and name are `[A-Za-z0-9._-]`: nothing to escape in the path.
    if !repo
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    {
        return Err(DeliveryFailed {
            attempts: 0,
            message: format!("{repo:?} is not a repository's full name"),
        });
    }
    let url = format!("{}/repos/{repo}/issues/{issue}/comments", c.api);
    let mut sent = Vec::new();
    for part in crate::split(text, MAX_COMMENT) {
        sent.push(
            c.outbound
                .post(&url, Some(c.token), &json!({"body": part}), on_attempt)
                .await?,
        );
    }
    Ok(sent)
}

/// `GET /rate_limit`: whether the token works (any token may read it).
pub async fn check(c: &Client<'_>) -> Result<Value, DeliveryFailed> {
    c.outbound
        .get_once(&format!("{}/rate_limit", c.api), Some(c.token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_in_comments_are_questions() {
        let body = |text: &str, user_type: &str| {
            json!({"action": "created", "issue": {"number": 7}, "repository": {"full_name": "acme/app"},
                   "comment": {"body": text, "user": {"login": "ada", "type": user_type}}})
            .to_string()
        };
        let q = parse(
            Some("issue_comment"),
            Some("d-1"),
            body("/morningai ask how are jobs retried?\nthanks", "User").as_bytes(),
        )
        .unwrap();
        assert_eq!(
            q,
            Event::Question(Question {
                event_id: "d-1".into(),
                text: "how are jobs retried?".into(),
                reply_to: json!({"repo": "acme/app", "issue": 7}),
            })
        );
        for (event, text, kind) in [
            ("issue_comment", "/morningai ask x", "Bot"),
            ("issue_comment", "plain comment", "User"),
            ("issue_comment", "/morningai asking", "User"),
            ("push", "/morningai ask x", "User"),
        ] {
            assert_eq!(
                parse(Some(event), Some("d"), body(text, kind).as_bytes()).unwrap(),
                Event::Ignored,
                "{event} {text} {kind}"
            );
        }
        assert_eq!(parse(Some("ping"), Some("d"), b"{}").unwrap(), Event::Ping);
        assert!(
            format("a", &["src/x.rs:1-2".into()], Some("https://m/t/1"))
                .contains("- `src/x.rs:1-2`")
        );
    }
}
