//! TLS to a real PostgreSQL server with a certificate for `localhost` only, signed by a
//! throwaway CA (`MORNINGAI_TEST_PG_TLS_URL` and `MORNINGAI_TEST_PG_CA`, provisioned by
//! `scripts/test-services.sh` from Debian's PostgreSQL: the suite's pgvector server is built
//! without TLS). Each `sslmode` is checked against what the server itself reports in
//! `pg_stat_ssl`, and each refusal by its reason.

use morningai_postgres::{PgStore, SslMode, connect_config, inspect};

struct Server {
    port: String,
    ca: String,
}

fn server() -> Server {
    let url = std::env::var("MORNINGAI_TEST_PG_TLS_URL")
        .expect("MORNINGAI_TEST_PG_TLS_URL is not set: run the suite with scripts/test.sh");
    let ca = std::env::var("MORNINGAI_TEST_PG_CA")
        .expect("MORNINGAI_TEST_PG_CA is not set: run the suite with scripts/test.sh");
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("a port in MORNINGAI_TEST_PG_TLS_URL")
        .to_owned();
    Server { port, ca }
}

impl Server {
    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }
}

/// Connects with `url` and returns the TLS version the server reports for this session
/// (`None`: plain text), or the connection error with its causes.
async fn session_tls(url: &str) -> Result<Option<String>, String> {
    let (config, tls, _) = connect_config(url).map_err(|e| e.to_string())?;
    let (client, connection) = config.connect(tls).await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    })?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    let (ssl, version): (bool, Option<String>) = (row.get(0), row.get(1));
    drop(client);
    driver.abort();
    assert_eq!(
        ssl,
        version.is_some(),
        "{url}: pg_stat_ssl disagrees with itself"
    );
    Ok(version)
}

fn assert_refused(result: Result<Option<String>, String>, url: &str, reason: &str) {
    match result {
        Ok(version) => panic!("{url}: connected ({version:?}) where it must be refused"),
        Err(e) => assert!(e.contains(reason), "{url}: expected {reason:?} in {e:?}"),
    }
}

#[tokio::test]
async fn each_sslmode_encrypts_and_verifies_what_libpq_would() {
    let s = server();
    let root = format!("sslrootcert={}", s.ca);

    // Plain text only when asked for.
    let url = s.url("127.0.0.1", "sslmode=disable");
    assert_eq!(session_tls(&url).await.unwrap(), None, "{url}");
    // The default and `prefer` take TLS when offered; the certificate is not checked, so the
    // unknown CA and the name mismatch (127.0.0.1) do not matter.
    for params in ["", "sslmode=prefer", "sslmode=require"] {
        let url = s.url("127.0.0.1", params);
        let version = session_tls(&url).await.unwrap();
        assert_eq!(version.as_deref(), Some("TLSv1.3"), "{url}");
    }
    // `require` with a root file checks the chain, as libpq does.
    let url = s.url("127.0.0.1", &format!("sslmode=require&{root}"));
    assert!(session_tls(&url).await.unwrap().is_some(), "{url}");
    // verify-ca: the chain, not the name.
    let url = s.url("127.0.0.1", &format!("sslmode=verify-ca&{root}"));
    assert!(session_tls(&url).await.unwrap().is_some(), "{url}");
    // verify-full: chain and name; the certificate names localhost only.
    let url = s.url("localhost", &format!("sslmode=verify-full&{root}"));
    assert!(session_tls(&url).await.unwrap().is_some(), "{url}");
    let url = s.url("127.0.0.1", &format!("sslmode=verify-full&{root}"));
    assert_refused(session_tls(&url).await, &url, "not valid for name");
    // Without a root file the Mozilla roots are the trust anchors: the test CA is not one.
    for mode in ["verify-full", "verify-ca"] {
        let url = s.url("localhost", &format!("sslmode={mode}"));
        assert_refused(session_tls(&url).await, &url, "UnknownIssuer");
        let url = s.url("localhost", &format!("sslmode={mode}&sslrootcert=system"));
        assert_refused(session_tls(&url).await, &url, "UnknownIssuer");
    }
    // A root file that is not a certificate is a configuration error, before any connection.
    let url = s.url("localhost", "sslmode=verify-full&sslrootcert=/dev/null");
    assert_refused(session_tls(&url).await, &url, "DATABASE_URL");
}

#[tokio::test]
async fn the_store_pool_and_doctor_connect_through_the_same_tls_policy() {
    let s = server();
    // The store's pool: the name mismatch stops it at the handshake, with the reason.
    let url = s.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", s.ca),
    );
    let err = PgStore::connect(&url, 2).await.err().expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake") && text.contains("not valid for name"),
        "{text}"
    );
    // Verified, the pool gets past the handshake: this server has no pgvector, so it stops
    // at the migrations, which run over the encrypted connection.
    let url = s.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", s.ca),
    );
    let err = PgStore::connect(&url, 2).await.err().expect("no pgvector");
    let text = err.to_string();
    assert!(
        text.contains("postgres migrations") && text.contains("vector"),
        "{text}"
    );
    // Doctor's inspection reports the version and what was verified.
    let seen = inspect(&url).await.expect("inspect");
    assert_eq!(seen.tls.as_deref(), Some("TLSv1.3"));
    assert_eq!(seen.tls_settings.mode, SslMode::VerifyFull);
    assert!(seen.tls_settings.loopback);
    let plain = inspect(&s.url("127.0.0.1", "sslmode=disable"))
        .await
        .expect("inspect");
    assert_eq!(plain.tls, None);
}
