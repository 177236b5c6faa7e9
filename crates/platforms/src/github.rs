//! GitHub: an App's (or a repository's) webhook, `X-Hub-Signature-256` under the webhook
//! secret. In an issue or pull-request comment, `/morningai ask …` is a question, answered
//! as a comment; `/morningai codegen …` asks for a change, proposed as a pull request.
//! [`Repo`] holds the REST calls a pull request takes (Git Data API: one tree, one commit,
//! a branch, the pull request), each retry-safe: a branch or pull request that a previous
//! attempt made is taken over, not duplicated.

use crate::{Attempt, Client, DeliveryFailed, Question, Rejection};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

/// The REST API (`https://api.github.com`).
pub const API: &str = "https://api.github.com";
/// The longest comment body.
pub const MAX_COMMENT: usize = 65_536;
/// What every comment MorningAI posts opens with (hidden when rendered): a comment holding
/// it is never a command. With a person's token our comments are that person's, and an
/// answer that reads like a command must not ask itself again.
pub const MARKER: &str = "<!-- morningai -->";
/// The trailer of every commit MorningAI makes: only a branch whose tip carries it is
/// moved (a person's commits on it are never overwritten).
pub const TRAILER: &str = "Proposed-by: MorningAI";
const ASK: &str = "/morningai ask";
const CODEGEN: &str = "/morningai codegen";

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
    /// `/morningai codegen …`: a change to propose. `reply_to` also holds the commenter's
    /// `association` with the repository (`OWNER`, `MEMBER`, `COLLABORATOR`, `NONE`…).
    Codegen(Question),
    Ignored,
}

/// The text after `command` on the comment's first line, when the comment opens with it.
fn command<'a>(text: &'a str, command: &str) -> Option<&'a str> {
    let rest = text.trim_start().strip_prefix(command)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    // The command's line only: what follows is the comment's own text.
    Some(rest.lines().next().unwrap_or("").trim()).filter(|q| !q.is_empty())
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
    if text.contains(MARKER) {
        return Ok(Event::Ignored);
    }
    let (asked, codegen) = (command(text, ASK), command(text, CODEGEN));
    let Some(question) = asked.or(codegen) else {
        return Ok(Event::Ignored);
    };
    let repo = v
        .pointer("/repository/full_name")
        .and_then(Value::as_str)
        .ok_or("an issue_comment without its repository")?;
    let number = v
        .pointer("/issue/number")
        .and_then(Value::as_u64)
        .ok_or("an issue_comment without its issue number")?;
    let id = delivery.ok_or("a delivery without X-GitHub-Delivery")?;
    let mut reply_to = json!({"repo": repo, "issue": number});
    let q = |reply_to| Question {
        event_id: id.to_owned(),
        text: question.to_owned(),
        reply_to,
    };
    if asked.is_some() {
        return Ok(Event::Question(q(reply_to)));
    }
    reply_to["association"] = v
        .pointer("/comment/author_association")
        .and_then(Value::as_str)
        .unwrap_or("NONE")
        .into();
    Ok(Event::Codegen(q(reply_to)))
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

/// Whether `name` is a repository's full name, `owner/name` of `[A-Za-z0-9._-]`.
pub fn is_repository(name: &str) -> bool {
    let mut parts = name.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.len() <= 100
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// Whether `name` is a branch name we write into URLs and refs: git's rules, narrowed to
/// `[A-Za-z0-9._/-]` without empty, dotted or `.lock` components.
pub fn is_branch(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        && name
            .split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
        && !name.contains("..")
}

/// Comments on the issue or pull request in `reply_to` (`{repo, issue}`).
pub async fn reply(
    c: &Client<'_>,
    reply_to: &Value,
    text: &str,
    on_attempt: &mut (dyn FnMut(&Attempt) + Send),
) -> Result<Vec<Value>, DeliveryFailed> {
    let repo = Repo::new(
        *c,
        reply_to
            .get("repo")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )?;
    let issue = reply_to
        .get("issue")
        .and_then(Value::as_u64)
        .unwrap_or_default()
        .to_string();
    let mut sent = Vec::new();
    for part in crate::split(text, MAX_COMMENT - MARKER.len() - 1) {
        sent.push(
            repo.call(
                Method::POST,
                &["issues", &issue, "comments"],
                Some(&json!({"body": format!("{MARKER}\n{part}")})),
                on_attempt,
            )
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

/// A GitHub App acting as one of its installations: its id, the installation's id and the
/// App's private key (PEM, PKCS#1 as GitHub gives it, or PKCS#8).
pub struct App<'a> {
    pub id: &'a str,
    pub installation: &'a str,
    pub private_key: &'a str,
}

/// The RSA key in `pem`, or why it is not one.
pub fn rsa_key(pem: &str) -> Result<ring::signature::RsaKeyPair, String> {
    // Between the armour lines, whatever the line breaks (a pasted key may have lost them).
    let inner = match pem.find("-----BEGIN") {
        Some(i) => pem[i + 10..]
            .split_once("-----")
            .map_or("", |(_, rest)| rest),
        None => pem,
    };
    let body: String = inner
        .split("-----END")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "not a PEM private key")?;
    let pkcs8 = pem.contains("BEGIN PRIVATE KEY");
    let key = if pkcs8 {
        ring::signature::RsaKeyPair::from_pkcs8(&der)
    } else {
        ring::signature::RsaKeyPair::from_der(&der)
    };
    key.map_err(|e| format!("not an RSA private key ({e})"))
}

/// The App's JSON Web Token: RS256, issued by the App id, dated 60 s back (clock drift)
/// and valid for 9 minutes (GitHub takes at most 10).
pub fn app_jwt(
    app_id: &str,
    key: &ring::signature::RsaKeyPair,
    now: i64,
) -> Result<String, String> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64(json!({"iat": now - 60, "exp": now + 540, "iss": app_id})
        .to_string()
        .as_bytes());
    let signed = format!("{header}.{claims}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "the key cannot sign")?;
    Ok(format!("{signed}.{}", b64(&signature)))
}

/// An installation access token (`POST /app/installations/{id}/access_tokens` under the
/// App's JWT): the token and when it expires (RFC 3339, an hour on).
pub async fn installation_token(
    c: &Client<'_>,
    app: &App<'_>,
    now: i64,
) -> Result<(String, String), DeliveryFailed> {
    if app.installation.is_empty() || !app.installation.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DeliveryFailed::refused(
            "the installation id is not a number".into(),
        ));
    }
    let jwt = rsa_key(app.private_key)
        .and_then(|key| app_jwt(app.id, &key, now))
        .map_err(DeliveryFailed::refused)?;
    let url = format!(
        "{}/app/installations/{}/access_tokens",
        c.api, app.installation
    );
    let v = c
        .outbound
        .send(Method::POST, &url, &jwt, None, &mut |_| {})
        .await?;
    match (v["token"].as_str(), v["expires_at"].as_str()) {
        (Some(t), Some(at)) => Ok((t.to_owned(), at.to_owned())),
        _ => Err(DeliveryFailed::refused(
            "GitHub's answer has no token and expires_at".into(),
        )),
    }
}

/// A change offered as a pull request: `files` (path, whole new text) committed on
/// `branch` over `head_sha`, the tip of `base` the files were read at.
pub struct Proposal<'a> {
    pub base: &'a str,
    pub head_sha: &'a str,
    pub branch: &'a str,
    pub message: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub files: &'a [(String, String)],
}

/// One repository at the REST API.
pub struct Repo<'a> {
    c: Client<'a>,
    name: &'a str,
}

impl<'a> Repo<'a> {
    pub fn new(c: Client<'a>, name: &'a str) -> Result<Self, DeliveryFailed> {
        if !is_repository(name) {
            return Err(DeliveryFailed::refused(format!(
                "{name:?} is not a repository's full name (owner/name)"
            )));
        }
        Ok(Self { c, name })
    }

    /// `{api}/repos/{owner}/{name}/{segments…}`, each segment escaped.
    fn url(&self, segments: &[&str]) -> Result<url::Url, DeliveryFailed> {
        let bad = || DeliveryFailed::refused(format!("{:?} is not a base URL", self.c.api));
        let mut u = url::Url::parse(self.c.api).map_err(|_| bad())?;
        u.path_segments_mut()
            .map_err(|_| bad())?
            .pop_if_empty()
            .push("repos")
            .extend(self.name.split('/'))
            .extend(segments);
        Ok(u)
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        let url = self.url(segments)?;
        self.c
            .outbound
            .send(method, url.as_str(), self.c.token, body, on_attempt)
            .await
    }

    async fn get(
        &self,
        url: url::Url,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        self.c
            .outbound
            .send(Method::GET, url.as_str(), self.c.token, None, on_attempt)
            .await
    }

    /// The branch pull requests go to when none is configured.
    pub async fn default_branch(
        &self,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<String, DeliveryFailed> {
        let v = self.call(Method::GET, &[], None, on_attempt).await?;
        v.get("default_branch")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DeliveryFailed::refused("the repository has no default branch".into()))
    }

    /// The commit `branch` points at.
    pub async fn head(
        &self,
        branch: &str,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<String, DeliveryFailed> {
        let mut segments = vec!["git", "ref", "heads"];
        segments.extend(branch.split('/'));
        let v = self.call(Method::GET, &segments, None, on_attempt).await?;
        sha(&v, "/object/sha")
    }

    /// The text of `path` at commit `at`; None when there is no such file.
    pub async fn file(
        &self,
        path: &str,
        at: &str,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Option<String>, DeliveryFailed> {
        let mut segments = vec!["contents"];
        segments.extend(path.split('/'));
        let mut url = self.url(&segments)?;
        url.query_pairs_mut().append_pair("ref", at);
        let v = match self.get(url, on_attempt).await {
            Err(e) if e.status == Some(404) => return Ok(None),
            other => other?,
        };
        let unreadable = |why: &str| DeliveryFailed::refused(format!("{path}: {why}"));
        if v.get("type").and_then(Value::as_str) != Some("file")
            || v.get("encoding").and_then(Value::as_str) != Some("base64")
        {
            return Err(unreadable(
                "not a file the contents API returns whole (at most 1 MB)",
            ));
        }
        let packed: String = v
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|_| unreadable("its content is not base64"))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| unreadable("not UTF-8 text"))
    }

    /// Commits the proposal's files on its branch (made, or moved when a previous attempt
    /// made it) and opens the pull request (or finds the one already open from that
    /// branch). Returns the pull request (`number`, `html_url`).
    pub async fn propose(
        &self,
        p: &Proposal<'_>,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        let base_commit = self
            .call(
                Method::GET,
                &["git", "commits", p.head_sha],
                None,
                on_attempt,
            )
            .await?;
        let entries: Vec<Value> = p
            .files
            .iter()
            .map(|(path, text)| json!({"path": path, "mode": "100644", "type": "blob", "content": text}))
            .collect();
        let tree = self
            .call(
                Method::POST,
                &["git", "trees"],
                Some(&json!({"base_tree": sha(&base_commit, "/tree/sha")?, "tree": entries})),
                on_attempt,
            )
            .await?;
        let commit = self
            .call(
                Method::POST,
                &["git", "commits"],
                Some(&json!({"message": format!("{}\n\n{TRAILER}", p.message), "tree": sha(&tree, "/sha")?, "parents": [p.head_sha]})),
                on_attempt,
            )
            .await?;
        let commit = sha(&commit, "/sha")?;
        let made = self
            .call(
                Method::POST,
                &["git", "refs"],
                Some(&json!({"ref": format!("refs/heads/{}", p.branch), "sha": commit})),
                on_attempt,
            )
            .await;
        if let Err(e) = made {
            if e.status != Some(422) || !e.message.contains("already exists") {
                return Err(e);
            }
            // "Reference already exists": an earlier attempt's (the name is the task's or the
            // document version's), which takes this commit — unless someone committed on it.
            let tip = self.head(p.branch, on_attempt).await?;
            let last = self
                .call(Method::GET, &["git", "commits", &tip], None, on_attempt)
                .await?;
            if !last["message"]
                .as_str()
                .is_some_and(|m| m.contains(TRAILER))
            {
                return Err(DeliveryFailed::refused(format!(
                    "the branch {} exists and its last commit is not MorningAI's: it is left as it is",
                    p.branch
                )));
            }
            let mut segments = vec!["git", "refs", "heads"];
            segments.extend(p.branch.split('/'));
            self.call(
                Method::PATCH,
                &segments,
                Some(&json!({"sha": commit, "force": true})),
                on_attempt,
            )
            .await?;
        }
        let opened = self
            .call(
                Method::POST,
                &["pulls"],
                Some(&json!({"title": p.title, "head": p.branch, "base": p.base, "body": p.body})),
                on_attempt,
            )
            .await;
        match opened {
            Err(e) if e.status == Some(422) => {
                // "A pull request already exists": the one from this branch.
                let owner = self.name.split('/').next().unwrap_or_default();
                let mut url = self.url(&["pulls"])?;
                url.query_pairs_mut()
                    .append_pair("head", &format!("{owner}:{}", p.branch))
                    .append_pair("state", "open");
                let open = self.get(url, on_attempt).await?;
                open.as_array().and_then(|a| a.first()).cloned().ok_or(e)
            }
            other => other,
        }
    }
}

/// The object id at `pointer` in a GitHub answer.
fn sha(v: &Value, pointer: &str) -> Result<String, DeliveryFailed> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| DeliveryFailed::refused(format!("GitHub's answer has no {pointer}")))
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
            (
                "issue_comment",
                "<!-- morningai -->\n/morningai codegen x",
                "User",
            ),
            ("push", "/morningai ask x", "User"),
        ] {
            assert_eq!(
                parse(Some(event), Some("d"), body(text, kind).as_bytes()).unwrap(),
                Event::Ignored,
                "{event} {text} {kind}"
            );
        }
        assert_eq!(parse(Some("ping"), Some("d"), b"{}").unwrap(), Event::Ping);
        let mut change: Value =
            serde_json::from_str(&body("/morningai codegen retry twice\nplease", "User")).unwrap();
        change["comment"]["author_association"] = json!("MEMBER");
        assert_eq!(
            parse(
                Some("issue_comment"),
                Some("d-5"),
                change.to_string().as_bytes()
            )
            .unwrap(),
            Event::Codegen(Question {
                event_id: "d-5".into(),
                text: "retry twice".into(),
                reply_to: json!({"repo": "acme/app", "issue": 7, "association": "MEMBER"}),
            })
        );
        for name in ["acme/app", "a-b/c.d_e"] {
            assert!(is_repository(name), "{name}");
        }
        for name in [
            "acme",
            "acme/app/x",
            "../app",
            "acme/..",
            "ac me/app",
            "/app",
        ] {
            assert!(!is_repository(name), "{name}");
        }
        assert!(is_branch("main") && is_branch("release/1.2"));
        for name in [
            "", "a..b", "a//b", ".hidden", "x.lock", "a b", "a/", "refs?",
        ] {
            assert!(!is_branch(name), "{name}");
        }
        assert!(
            format("a", &["src/x.rs:1-2".into()], Some("https://m/t/1"))
                .contains("- `src/x.rs:1-2`")
        );
    }
}
