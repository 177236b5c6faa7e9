//! Standard Webhooks (<https://www.standardwebhooks.com>): the signature of an outbound
//! delivery and its sending. The secret is `whsec_` + base64 of its bytes; a delivery
//! carries `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256
//! of "{id}.{timestamp}.{body}">`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::time::Duration;

/// A new signing secret (shown once to the subscriber).
pub fn new_secret(random: [u8; 24]) -> String {
    format!("whsec_{}", STANDARD.encode(random))
}

/// The `webhook-signature` header value; None when the secret is not `whsec_` + base64.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mac = crate::hmac_sha256(
        &key,
        &[
            msg_id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    Some(format!("v1,{}", STANDARD.encode(mac)))
}

/// Sends deliveries: no redirects (a subscriber's URL cannot bounce a delivery to an
/// internal address), 10 s per attempt.
pub struct Sender(reqwest::Client);

impl Default for Sender {
    fn default() -> Self {
        Self(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client with rustls"),
        )
    }
}

impl Sender {
    /// One delivery attempt: Ok(status) for a 2xx, Err((status, what happened)) otherwise.
    pub async fn send(
        &self,
        url: &str,
        secret: &str,
        msg_id: &str,
        timestamp: i64,
        body: Vec<u8>,
    ) -> Result<u16, (Option<u16>, String)> {
        let signature = sign(secret, msg_id, timestamp, &body)
            .ok_or((None, "the webhook's secret is malformed".to_owned()))?;
        let res = self
            .0
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| (None, e.without_url().to_string()))?;
        let status = res.status().as_u16();
        if res.status().is_success() {
            Ok(status)
        } else {
            Err((Some(status), format!("the endpoint answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("not-a-secret", "m", 1, b""), None);
        assert!(new_secret([7; 24]).starts_with("whsec_"));
    }
}
