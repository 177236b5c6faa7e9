//! Secrets the platform keeps for tenants (provider API keys, chat-platform tokens and
//! signing secrets), sealed at rest, and the guard that keeps tenant-supplied URLs off
//! internal addresses.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use morningai_core::{Error, Result, TenantCtx};
use sha2::{Digest, Sha256};

/// Seals one purpose's secrets with a key derived from the deployment's signing key and
/// that purpose (rotating the signing key makes them unreadable: tenants set them again).
/// Each sealed value is bound to its tenant: another tenant's row cannot open it.
pub struct SecretBox {
    aead: XChaCha20Poly1305,
    /// The error code and the words for "what could not be read".
    code: &'static str,
    what: &'static str,
}

impl SecretBox {
    pub fn new(secret: &[u8], purpose: &str, code: &'static str, what: &'static str) -> Self {
        let mut h = Sha256::new();
        h.update(format!("morningai/{purpose}/v1\0").as_bytes());
        h.update(secret);
        let key: [u8; 32] = h.finalize().into();
        Self {
            aead: XChaCha20Poly1305::new(&key.into()),
            code,
            what,
        }
    }

    /// base64(nonce ‖ ciphertext), XChaCha20-Poly1305 with the tenant id as associated data.
    pub fn seal(&self, cx: TenantCtx, plain: &str) -> Result<String> {
        use base64::Engine;
        use rand::RngCore;
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = cx.tenant_id.0.as_bytes();
        let sealed = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| Error::Internal(format!("encrypt {}", self.what)))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, cx: TenantCtx, sealed: &str) -> Result<String> {
        use base64::Engine;
        let unreadable = || {
            Error::unavailable(
                self.code,
                format!(
                    "{} cannot be decrypted (was the signing key rotated?); set it again",
                    self.what
                ),
            )
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| unreadable())?;
        if bytes.len() < 24 {
            return Err(unreadable());
        }
        let (nonce, body) = bytes.split_at(24);
        let nonce = XNonce::try_from(nonce).map_err(|_| unreadable())?;
        let aad = cx.tenant_id.0.as_bytes();
        let plain = self
            .aead
            .decrypt(&nonce, Payload { msg: body, aad })
            .map_err(|_| unreadable())?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }
}

/// The last four characters of a secret, to tell secrets apart without showing them.
pub fn hint(secret: &str) -> String {
    let tail: Vec<char> = secret.chars().rev().take(4).collect();
    format!("…{}", tail.into_iter().rev().collect::<String>())
}

/// Whether a URL's host is loopback, private, link-local or otherwise internal (literal
/// addresses and `localhost`-like names; names resolving to such addresses are not caught).
pub fn private_host(url: &str) -> bool {
    use std::net::IpAddr;
    let Ok(u) = url::Url::parse(url) else {
        return true;
    };
    let v4_internal = |v4: std::net::Ipv4Addr| {
        v4.is_loopback()
            || v4.is_private()
            || v4.is_link_local()
            || v4.is_unspecified()
            || v4.is_broadcast()
            || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
    };
    let internal = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(v4_internal)
        }
    };
    match u.host() {
        None => true,
        Some(url::Host::Ipv4(ip)) => internal(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => internal(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let host = name.to_ascii_lowercase();
            // A name without a dot is resolved through search domains: a cluster's
            // service (`redis`, `metadata`), never a public host.
            !host.trim_end_matches('.').contains('.')
                || host == "localhost"
                || host.ends_with(".localhost")
                || host.ends_with(".internal")
                || host.ends_with(".local")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use morningai_core::TenantId;

    fn boxed(secret: &[u8]) -> SecretBox {
        SecretBox::new(
            secret,
            "provider-api-keys",
            "provider_key_unreadable",
            "the key",
        )
    }

    #[test]
    fn keys_are_sealed_per_tenant_and_per_secret() {
        let (a, b) = (
            TenantCtx::new(TenantId::new()),
            TenantCtx::new(TenantId::new()),
        );
        let c = boxed(b"signing-key-one-0123456789abcdef0123");
        let sealed = c.seal(a, "sk-live-secret").unwrap();
        assert!(!sealed.contains("sk-live"));
        assert_eq!(c.open(a, &sealed).unwrap(), "sk-live-secret");
        assert_ne!(
            c.seal(a, "sk-live-secret").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        // Another tenant's row, or another deployment's secret, cannot open it.
        assert!(matches!(
            c.open(b, &sealed),
            Err(Error::Unavailable {
                code: "provider_key_unreadable",
                ..
            })
        ));
        let other = boxed(b"signing-key-two-0123456789abcdef0123");
        assert!(other.open(a, &sealed).is_err());
        assert!(c.open(a, "bm90IGEga2V5").is_err());
    }

    #[test]
    fn internal_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://localhost/v1",
            "http://169.254.169.254/latest",
            "http://10.1.2.3/v1",
            "http://[::1]/v1",
            "http://[fd00::1]/v1",
            "http://metadata.google.internal/v1",
            "http://[::ffff:0.0.0.0]:8080/",
            "http://redis:6379/",
            "http://metadata/computeMetadata",
        ] {
            assert!(private_host(url), "{url}");
        }
        for url in ["https://api.openai.com/v1", "http://8.8.8.8/v1"] {
            assert!(!private_host(url), "{url}");
        }
    }
}
