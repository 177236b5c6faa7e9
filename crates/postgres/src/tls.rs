//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert`, on rustls.
//!
//! tokio-postgres understands `sslmode=disable|prefer|require` and does not verify anything
//! itself; the certificate policy is the connector's. [`connect_config`] takes a
//! `DATABASE_URL` (URL or `key=value` form), removes the two parameters it owns, and returns
//! the remaining configuration with a rustls connector that does what libpq does:
//!
//! | `sslmode`          | encrypted                 | certificate checked                 |
//! |--------------------|---------------------------|-------------------------------------|
//! | `disable`          | no                        | —                                   |
//! | `prefer` (default) | if the server offers it   | no                                  |
//! | `require`          | yes                       | chain, only when `sslrootcert` set  |
//! | `verify-ca`        | yes                       | chain                               |
//! | `verify-full`      | yes                       | chain and host name                 |
//!
//! Trusted roots: the PEM file named by `sslrootcert`, or (no `sslrootcert`, or
//! `sslrootcert=system`) the Mozilla roots compiled into the binary — libpq would read
//! `~/.postgresql/root.crt` instead, which a container rarely has.

use morningai_core::{Error, Result};
use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values (tokio-postgres parses only the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` (plain text first) is deliberately not offered.
            other => {
                return Err(Error::invalid(
                    "DATABASE_URL",
                    format!(
                        "sslmode={other:?} is not one of disable, prefer, require, verify-ca, \
                         verify-full"
                    ),
                ));
            }
        })
    }

    fn wire(self) -> WireMode {
        match self {
            Self::Disable => WireMode::Disable,
            Self::Prefer => WireMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => WireMode::Require,
        }
    }
}

/// What a `DATABASE_URL` asks of the connection's security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file, or `None` for the compiled-in Mozilla roots.
    pub root_cert: Option<String>,
    /// Every host is this machine (a unix socket, `localhost`, a loopback address).
    pub loopback: bool,
}

/// Parses `url` into tokio-postgres's configuration and the connector its `sslmode` asks for.
pub fn connect_config(
    url: &str,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect, TlsSettings)> {
    let (rest, settings) = split_tls_params(url)?;
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
        Error::invalid(
            "DATABASE_URL",
            format!("not a PostgreSQL connection string: {e}"),
        )
    })?;
    let settings = TlsSettings {
        loopback: config.get_hosts().iter().all(is_loopback),
        ..settings
    };
    config.ssl_mode(settings.mode.wire());
    let connector = MakeRustlsConnect::new(client_config(&settings)?);
    Ok((config, connector, settings))
}

fn is_loopback(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Unix(_) => true,
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// Removes `sslmode` and `sslrootcert` from `url` (both forms) and returns what they said.
fn split_tls_params(url: &str) -> Result<(String, TlsSettings)> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: String| -> Result<bool> {
        match key {
            "sslmode" => mode = Some(SslMode::parse(&value)?),
            "sslrootcert" => root_cert = Some(value),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(Error::invalid(
                    "DATABASE_URL",
                    format!("{key} (client certificates) is not supported"),
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
                    if !take(key, value)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        // key=value form; values with spaces or quotes are not ours to rewrite, so the
        // parameters we own must be written plainly (`sslrootcert=/etc/db/ca.pem`).
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            let (key, value) = token.split_once('=').unwrap_or((token, ""));
            if !take(key, value.to_owned())? {
                kept.push(token);
            }
        }
        kept.join(" ")
    };
    let root_cert = root_cert.filter(|path| path != "system");
    Ok((
        rest,
        TlsSettings {
            mode: mode.unwrap_or(SslMode::Prefer),
            root_cert,
            loopback: false,
        },
    ))
}

fn client_config(settings: &TlsSettings) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal("rustls protocol versions", e))?;
    let verify_chain = match settings.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => settings.root_cert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    let algorithms = provider.signature_verification_algorithms;
    let chain = if verify_chain {
        Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(settings.root_cert.as_deref())?),
                provider,
            )
            .build()
            .map_err(|e| Error::internal("build the PostgreSQL certificate verifier", e))?,
        )
    } else {
        None
    };
    let verifier: Arc<dyn ServerCertVerifier> = match chain {
        Some(chain) if settings.mode == SslMode::VerifyFull => chain,
        chain => Arc::new(Relaxed { chain, algorithms }),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn roots(root_cert: Option<&str>) -> Result<RootCertStore> {
    let Some(path) = root_cert else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::invalid("DATABASE_URL", format!("sslrootcert {path}: {e}"))
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        store
            .add(cert.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e))?;
    }
    if store.is_empty() {
        return Err(unreadable(&"no certificate in the file"));
    }
    Ok(store)
}

/// `verify-ca` (`chain`: the chain must lead to a trusted root, the name is not compared),
/// or `prefer` / `require` without a root (`chain: None`: libpq's "encrypted, not
/// verified"). Either way the handshake's signatures are verified, so the peer holds the
/// key of the certificate it sent.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // webpki checks the name last, so this error means the chain itself was good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_sslmode_and_sslrootcert_in_both_forms() {
        let (rest, s) = split_tls_params(
            "postgres://u:p@db.example.com:5432/app?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db.example.com:5432/app?application_name=x"
        );
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca.pem"));

        let (rest, s) = split_tls_params("host=db user=app sslmode=require dbname=x").unwrap();
        assert_eq!(rest, "host=db user=app dbname=x");
        assert_eq!((s.mode, s.root_cert), (SslMode::Require, None));
        let (_, _, s) = connect_config("host=/run/postgresql,127.0.0.1 user=app").unwrap();
        assert!(s.loopback);
        let (_, _, s) = connect_config("postgres://app@db.internal/app").unwrap();
        assert!(!s.loopback);

        let (rest, s) = split_tls_params("postgres://db/app?sslrootcert=system").unwrap();
        assert_eq!(rest, "postgres://db/app");
        assert_eq!((s.mode, s.root_cert), (SslMode::Prefer, None));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for url in [
            "postgres://db/app?sslmode=allow",
            "postgres://db/app?sslmode=VERIFY-FULL",
            "postgres://db/app?sslcert=/c.pem&sslkey=/k.pem",
            "host=db sslmode=nope",
        ] {
            let err = connect_config(url).err().expect(url);
            assert!(err.to_string().contains("DATABASE_URL"), "{url}: {err}");
        }
        let err =
            connect_config("postgres://db/app?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .err()
                .unwrap();
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
    }
}
