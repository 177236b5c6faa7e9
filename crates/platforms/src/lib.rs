//! Chat-platform adapters. Inbound: each platform's signature check (failing closed, in
//! constant time) and the parsing of the events MorningAI answers. Outbound: the clients
//! of the platforms' APIs, through [`Outbound`], which applies the rate-limit rules every
//! platform shares (429 with a wait to honour, bounded retries, then a recorded failure).
//! Base URLs are configurable, so tests point the production clients at local fakes.

pub mod discord;
pub mod github;
pub mod line;
pub mod messenger;
pub mod slack;
pub mod telegram;
pub mod webhooks;

use serde_json::Value;
use std::time::Duration;

/// Why an inbound request was refused before anything in it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A signature or secret header is absent.
    Missing,
    /// The signature does not match the body.
    BadSignature,
    /// The signed timestamp is outside the platform's window (a replay).
    Stale,
}

impl Rejection {
    /// The metric label and the error's words.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale",
        }
    }
}

/// HMAC-SHA256 of `parts`, in order, under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `given` against the signature the body should carry (`expected`), in constant time.
pub(crate) fn check_signature(expected: &str, given: Option<&str>) -> Result<(), Rejection> {
    match given {
        None => Err(Rejection::Missing),
        Some(g) if same(expected.as_bytes(), g.as_bytes()) => Ok(()),
        Some(_) => Err(Rejection::BadSignature),
    }
}

/// A bot's credential at a platform's API: what every platform's `reply` and `check` take.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    pub outbound: &'a Outbound,
    /// The API's base URL (configurable: a proxy or a test double).
    pub api: &'a str,
    pub token: &'a str,
}

/// Equality that takes the same time wherever the inputs differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits text into messages of at most `max` characters: at a line break when one is in
/// reach, else at a space, else anywhere — never between a backslash and the character
/// it escapes (Telegram's MarkdownV2).
pub fn split(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    while chars.len() - start > max {
        let window = &chars[start..start + max];
        let at = |c: char| window.iter().rposition(|&x| x == c).filter(|&i| i > 0);
        let mut cut = at('\n').or_else(|| at(' ')).unwrap_or(max);
        // An odd run of backslashes before the cut ends in an escape that the cut would
        // separate from its character: cut before the backslash, or, when it opens the
        // part, after the character it escapes (a part is never empty).
        let run = window[..cut]
            .iter()
            .rev()
            .take_while(|&&c| c == '\\')
            .count();
        if run % 2 == 1 {
            cut = if cut > 1 { cut - 1 } else { 2 };
        }
        parts.push(chars[start..start + cut].iter().collect::<String>());
        start += cut;
        while start < chars.len() && matches!(chars[start], '\n' | ' ') {
            start += 1;
        }
    }
    if start < chars.len() {
        parts.push(chars[start..].iter().collect());
    }
    parts
}

/// An answer as plain text (platforms without markup): the text, its sources, the link.
pub fn plain(answer: &str, sources: &[String], link: Option<&str>) -> String {
    let mut out = answer.trim().to_owned();
    if !sources.is_empty() {
        out.push_str("\n\nSources:");
        for s in sources {
            out.push_str("\n- ");
            out.push_str(s);
        }
    }
    if let Some(url) = link {
        out.push_str(&format!("\nOpen in MorningAI: {url}"));
    }
    out
}

/// A question someone put to MorningAI on a platform, and where the answer goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    /// The platform's id of the event: its retries carry the same one.
    pub event_id: String,
    pub text: String,
    /// Where to answer, in the platform's terms (a Slack channel and thread, a Telegram
    /// chat and message).
    pub reply_to: Value,
}

/// One attempt at a delivery, as reported to the caller (it goes into the task's events).
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub number: u32,
    /// The HTTP status, or None when the platform could not be reached.
    pub status: Option<u16>,
    /// What happened: "delivered", "rate limited: waiting 2 s", "503: retrying in 1 s"…
    pub outcome: String,
}

/// A delivery that did not go through after the allowed attempts, or that the platform
/// refused outright.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryFailed {
    pub attempts: u32,
    /// The platform's last HTTP status, when it answered (404: no such file, 422: exists).
    pub status: Option<u16>,
    /// The platform limited the rate: asked for a longer wait than a delivery may hold a
    /// worker, or still limited at the last attempt. Worth trying again later.
    pub rate_limited: bool,
    pub message: String,
}

impl DeliveryFailed {
    /// A request refused before it was sent.
    pub fn refused(message: String) -> Self {
        Self {
            attempts: 0,
            status: None,
            rate_limited: false,
            message,
        }
    }
}

impl std::fmt::Display for DeliveryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (after {} attempts)", self.message, self.attempts)
    }
}

/// The shared HTTP client and retry policy of every outbound call.
#[derive(Clone)]
pub struct Outbound {
    http: reqwest::Client,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// First wait after a failure without a platform-given wait (doubles per attempt).
    pub backoff: Duration,
    /// The longest wait a platform may ask for; a longer one fails the delivery at once
    /// (its wait is in the failure) instead of holding a worker.
    pub max_wait: Duration,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                // GitHub refuses requests without one.
                .user_agent("morningai")
                .build()
                .expect("an HTTP client with rustls"),
            max_attempts: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl Outbound {
    /// The same client with another first wait (tests shorten it).
    pub fn with_backoff(self, backoff: Duration) -> Self {
        Self { backoff, ..self }
    }

    /// POSTs `body` as JSON to `url` until the platform takes it, honouring its waits:
    /// 429 with `Retry-After` (or Telegram's `parameters.retry_after`), 5xx and unreachable
    /// with backoff, at most `max_attempts` times. Other 4xx, and a 200 whose body says
    /// `"ok": false` (Slack, Telegram), fail at once. Each attempt is reported to
    /// `on_attempt`. Returns the platform's answer.
    pub async fn post(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &Value,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        self.call(
            reqwest::Method::POST,
            url,
            auth.as_deref(),
            Some(body),
            on_attempt,
        )
        .await
    }

    /// PATCH (Discord's edit of a response), under the same rules.
    pub async fn patch(
        &self,
        url: &str,
        body: &Value,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        self.call(reqwest::Method::PATCH, url, None, Some(body), on_attempt)
            .await
    }

    /// Any method under the same rules, with a bearer token (GitHub's REST API).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: &str,
        body: Option<&Value>,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        let auth = format!("Bearer {bearer}");
        self.call(method, url, Some(&auth), body, on_attempt).await
    }

    /// One GET under the same rules, attempted once (the connection checks).
    pub async fn get_once(&self, url: &str, bearer: Option<&str>) -> Result<Value, DeliveryFailed> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        self.get_once_auth(url, auth.as_deref()).await
    }

    /// As [`Self::get_once`] with a whole `Authorization` value (Discord's `Bot …`).
    pub async fn get_once_with(
        &self,
        url: &str,
        authorization: &str,
    ) -> Result<Value, DeliveryFailed> {
        self.get_once_auth(url, Some(authorization)).await
    }

    async fn get_once_auth(
        &self,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Value, DeliveryFailed> {
        let once = Self {
            max_attempts: 1,
            ..self.clone()
        };
        once.call(reqwest::Method::GET, url, authorization, None, &mut |_| {})
            .await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        authorization: Option<&str>,
        body: Option<&Value>,
        on_attempt: &mut (dyn FnMut(&Attempt) + Send),
    ) -> Result<Value, DeliveryFailed> {
        let mut wait = self.backoff;
        for number in 1..=self.max_attempts {
            let mut req = self.http.request(method.clone(), url);
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(auth) = authorization {
                req = req.header(reqwest::header::AUTHORIZATION, auth);
            }
            let last = number == self.max_attempts;
            let fail = |status: Option<u16>, rate_limited: bool, message: String| DeliveryFailed {
                attempts: number,
                status,
                rate_limited,
                message,
            };
            let (status, pause, outcome) = match req.send().await {
                Err(e) => {
                    let why = if e.is_timeout() {
                        "timed out"
                    } else {
                        "unreachable"
                    };
                    (None, wait, format!("{why}: {}", e.without_url()))
                }
                Ok(res) => {
                    let status = res.status().as_u16();
                    let header = |name: &str| {
                        res.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<f64>().ok())
                    };
                    // `Retry-After`, else GitHub's primary limit: no request left until
                    // `x-ratelimit-reset` (epoch seconds).
                    let exhausted = header("x-ratelimit-remaining") == Some(0.0);
                    let header_wait = header("retry-after").or_else(|| {
                        let reset = header("x-ratelimit-reset").filter(|_| exhausted)?;
                        Some(reset - std::time::UNIX_EPOCH.elapsed().ok()?.as_secs_f64())
                    });
                    // GitHub answers its rate limits (primary and secondary) with 403 and
                    // one of those headers; a 403 without is a refusal.
                    let rate_limited = status == 429 || (status == 403 && header_wait.is_some());
                    let answer: Value = res.json().await.unwrap_or(Value::Null);
                    // Telegram's `parameters.retry_after`, Discord's `retry_after`.
                    let body_wait = ["/parameters/retry_after", "/retry_after"]
                        .iter()
                        .find_map(|p| answer.pointer(p).and_then(Value::as_f64));
                    match status {
                        200..=299 if answer.get("ok") != Some(&Value::Bool(false)) => {
                            on_attempt(&Attempt {
                                number,
                                status: Some(status),
                                outcome: "delivered".into(),
                            });
                            return Ok(answer);
                        }
                        _ if rate_limited => {
                            let secs = header_wait.or(body_wait).unwrap_or(1.0).max(0.0);
                            let asked = Duration::from_secs_f64(secs.min(1e9));
                            if asked > self.max_wait {
                                let message = format!(
                                    "rate limited for {secs} s, longer than the {} s a delivery may wait",
                                    self.max_wait.as_secs()
                                );
                                on_attempt(&Attempt {
                                    number,
                                    status: Some(status),
                                    outcome: message.clone(),
                                });
                                return Err(fail(Some(status), true, message));
                            }
                            (
                                Some(status),
                                asked,
                                format!("rate limited: waiting {secs} s"),
                            )
                        }
                        500..=599 => (Some(status), wait, format!("{status} from the platform")),
                        _ => {
                            // Slack's `error`, Telegram's `description`, LINE's `message`,
                            // the Graph API's `error.message`.
                            let why = ["/error", "/description", "/message", "/error/message"]
                                .iter()
                                .find_map(|p| answer.pointer(p).and_then(Value::as_str))
                                .unwrap_or("refused");
                            let message = format!("{status}: {why}");
                            on_attempt(&Attempt {
                                number,
                                status: Some(status),
                                outcome: message.clone(),
                            });
                            return Err(fail(Some(status), false, message));
                        }
                    }
                }
            };
            on_attempt(&Attempt {
                number,
                status,
                outcome: if last {
                    format!("{outcome}; giving up")
                } else {
                    outcome.clone()
                },
            });
            if last {
                // Only a rate limit (429, or a 403 carrying a wait) comes here with 4xx.
                return Err(fail(status, matches!(status, Some(429 | 403)), outcome));
            }
            tokio::time::sleep(pause).await;
            if !matches!(status, Some(429 | 403)) {
                wait *= 2;
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}
