//! The `morningai` binary as a user runs it: configuration precedence, secrets redaction,
//! production safety, the generated signing key, and administration commands.

use std::path::Path;
use std::process::Command;

mod common;

use common::{clean_cmd, scratch, serve};

/// A command with a clean MorningAI environment (no inherited DATABASE_URL etc.).
fn cmd(dir: &Path) -> Command {
    clean_cmd(dir)
}

fn run(c: &mut Command) -> (bool, String, String) {
    let out = c.output().expect("run morningai");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn print_config(c: &mut Command) -> String {
    print_config_with(c, &[])
}

/// `serve <serve_flags> --print-config`.
fn print_config_with(c: &mut Command, serve_flags: &[&str]) -> String {
    let (ok, out, err) = run(c.arg("serve").args(serve_flags).arg("--print-config"));
    assert!(ok, "{err}");
    out
}

#[test]
fn flags_beat_environment_beat_file_beat_defaults() {
    let dir = scratch("precedence");
    std::fs::write(
        dir.join("m.toml"),
        "listen = \"127.0.0.1:1111\"\nlog_level = \"debug\"\nsignup_enabled = false\n",
    )
    .unwrap();
    let defaults = print_config(&mut cmd(&dir));
    assert!(
        defaults.contains("listen = \"127.0.0.1:8080\"")
            && defaults.contains("signup_enabled = true"),
        "{defaults}"
    );
    let file = print_config(cmd(&dir).args(["--config", "m.toml"]));
    assert!(
        file.contains("listen = \"127.0.0.1:1111\"") && file.contains("log_level = \"debug\""),
        "{file}"
    );
    let env = print_config(
        cmd(&dir)
            .args(["--config", "m.toml"])
            .env("MORNINGAI_LISTEN", "127.0.0.1:2222"),
    );
    assert!(
        env.contains("listen = \"127.0.0.1:2222\"") && env.contains("signup_enabled = false"),
        "{env}"
    );
    let flag = print_config_with(
        cmd(&dir)
            .args(["--config", "m.toml"])
            .env("MORNINGAI_LISTEN", "127.0.0.1:2222"),
        &["--listen", "127.0.0.1:3333"],
    );
    assert!(flag.contains("listen = \"127.0.0.1:3333\""), "{flag}");
}

#[test]
fn print_config_redacts_secrets() {
    let dir = scratch("redact");
    let out = print_config(
        cmd(&dir)
            .env("DATABASE_URL", "postgres://app:hunter2@db:5432/x")
            .env("REDIS_URL", "redis://:s3cret@cache:6379/")
            .env("MORNINGAI_SIGNING_KEY", "k".repeat(40)),
    );
    assert!(out.contains("postgres://app:***@db:5432/x"), "{out}");
    for secret in ["hunter2", "s3cret", "kkkkkkkk"] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
}

#[test]
fn config_file_errors_are_precise() {
    let dir = scratch("badfile");
    std::fs::write(
        dir.join("bad.toml"),
        "listen = \"127.0.0.1:1\"\nlisten_port = 3\n",
    )
    .unwrap();
    let (ok, _, err) = run(cmd(&dir).args(["--config", "bad.toml", "serve", "--print-config"]));
    assert!(!ok);
    assert!(
        err.contains("listen_port") && err.contains("bad.toml"),
        "{err}"
    );
    let (ok, _, err) = run(cmd(&dir).args(["--config", "missing.toml", "migrate"]));
    assert!(!ok && err.contains("missing.toml"), "{err}");
}

#[test]
fn production_refuses_to_start_without_a_strong_key() {
    let dir = scratch("prod");
    let (ok, _, err) = run(cmd(&dir).env("MORNINGAI_ENV", "production").args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(!ok);
    assert!(
        err.contains("MORNINGAI_SIGNING_KEY is required in production"),
        "{err}"
    );
    assert!(
        !dir.join("data/signing.key").exists(),
        "no key may be generated in production"
    );
    let (ok, _, err) = run(cmd(&dir)
        .env("MORNINGAI_ENV", "production")
        .env("MORNINGAI_SIGNING_KEY", "short")
        .args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(!ok && err.contains("at least 32 bytes"), "{err}");
    let (_server, url) = serve(
        cmd(&dir)
            .env("MORNINGAI_ENV", "production")
            .env("MORNINGAI_SIGNING_KEY", "x".repeat(32)),
    );
    assert!(url.starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn embedded_key_is_generated_once_and_admin_commands_work() {
    let dir = scratch("admin");
    let (ok, _, err) = run(cmd(&dir)
        .args([
            "user",
            "create",
            "--email",
            "Ada@Example.com",
            "--name",
            "Ada",
        ])
        .env("MORNINGAI_PASSWORD", "correct horse battery"));
    assert!(ok, "{err}");
    let (ok, out, err) = run(cmd(&dir).args([
        "tenant",
        "create",
        "--name",
        "Acme",
        "--slug",
        "acme",
        "--owner",
        "ada@example.com",
    ]));
    assert!(ok, "{err}");
    assert!(out.contains("\"slug\": \"acme\""), "{out}");
    let (ok, _, err) = run(cmd(&dir).args([
        "apikey",
        "create",
        "--tenant",
        "acme",
        "--user",
        "ada@example.com",
        "--role",
        "owner",
    ]));
    assert!(ok, "owners may mint owner keys: {err}");
    let (ok, key, err) = run(cmd(&dir).args([
        "apikey",
        "create",
        "--tenant",
        "acme",
        "--user",
        "ada@example.com",
        "--role",
        "member",
    ]));
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("mai_"), "{key}");
    let (ok, _, err) = run(cmd(&dir)
        .args(["user", "create", "--email", "weak@example.com"])
        .env("MORNINGAI_PASSWORD", "short"));
    assert!(!ok && err.contains("8 characters"), "{err}");

    let client = reqwest::Client::new();
    let (server, url) = serve(&mut cmd(&dir));
    let tenant: serde_json::Value = client
        .get(format!("{url}/api/v1/tenant"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenant["slug"], "acme");
    let login: serde_json::Value = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("login").to_owned();
    let key_file = dir.join("data/signing.key");
    let first = std::fs::read(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    drop(server);
    // A restart keeps the key: the token issued before still verifies.
    let (_server, url) = serve(&mut cmd(&dir));
    assert_eq!(std::fs::read(&key_file).unwrap(), first);
    let res = client
        .get(format!("{url}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = scratch("sigterm");
    let (mut server, _url) = serve(&mut cmd(&dir));
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.0.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn help_explains_each_subcommand() {
    let dir = scratch("help");
    let (ok, out, _) = run(cmd(&dir).arg("--help"));
    assert!(ok);
    for sub in [
        "serve", "migrate", "tenant", "user", "apikey", "index", "ask", "codegen",
    ] {
        assert!(out.contains(sub), "{sub} missing from help: {out}");
    }
    let (ok, out, _) = run(cmd(&dir).args(["apikey", "create", "--help"]));
    assert!(
        ok && out.contains("--tenant") && out.contains("secret"),
        "{out}"
    );
}

/// A user `<slug>@example.com` owning the tenant `<slug>`, made with the CLI.
fn owner_and_tenant(dir: &Path, slug: &str) {
    owner_and_tenant_with(&|| cmd(dir), slug);
}

/// As [`owner_and_tenant`], with commands from `mk` (e.g. with a DATABASE_URL).
fn owner_and_tenant_with(mk: &dyn Fn() -> Command, slug: &str) {
    let email = format!("{slug}@example.com");
    let (ok, _, err) = run(mk()
        .args(["user", "create", "--email", &email])
        .env("MORNINGAI_PASSWORD", "correct horse battery"));
    assert!(ok, "{err}");
    let (ok, _, err) = run(mk().args([
        "tenant", "create", "--name", slug, "--slug", slug, "--owner", &email,
    ]));
    assert!(ok, "{err}");
}

/// `morningai index` in embedded mode and on PostgreSQL — the latter without REDIS_URL,
/// since indexing queues nothing.
#[test]
fn index_command_indexes_a_tree_incrementally() {
    let pg = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    for database_url in [None, Some(pg)] {
        index_incrementally(database_url);
    }
}

fn index_incrementally(database_url: Option<String>) {
    let dir = scratch("index");
    let cmd = |dir: &Path| {
        let mut c = cmd(dir);
        if let Some(url) = &database_url {
            c.env("DATABASE_URL", url);
        }
        c
    };
    let slug = format!("ix{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    owner_and_tenant_with(&|| cmd(&dir), &slug);
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::write(tree.join("README.md"), "# Tool\n\nIt does things.\n").unwrap();
    std::fs::write(tree.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(tree.join("src/empty.rs"), "").unwrap();
    let index = |c: &mut Command| {
        let (ok, out, err) =
            run(c.args(["index", "tree", "--tenant", &slug, "--collection", "docs"]));
        assert!(ok, "{database_url:?}: {err}");
        assert!(err.contains("docs:"), "a summary line on stderr: {err}");
        serde_json::from_str::<serde_json::Value>(&out).expect("a JSON report")
    };
    let first = index(&mut cmd(&dir));
    assert_eq!(
        (first["indexed"].as_u64(), first["unchanged"].as_u64()),
        (Some(2), Some(0)),
        "{first}"
    );
    assert_eq!(first["skipped"]["empty"], 1, "{first}");
    let again = index(&mut cmd(&dir));
    assert_eq!(
        (
            again["files"].as_u64(),
            again["indexed"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(2), Some(0), Some(2)),
        "{again}"
    );
    let (ok, _, err) = run(cmd(&dir).args([
        "index",
        "nowhere",
        "--tenant",
        &slug,
        "--collection",
        "docs",
    ]));
    assert!(!ok && err.contains("not a directory"), "{err}");
    let (ok, _, err) = run(cmd(&dir).args([
        "index",
        "tree",
        "--tenant",
        "nobody",
        "--collection",
        "docs",
    ]));
    assert!(!ok && err.contains("no tenant"), "{err}");
}

#[test]
fn ask_prints_the_document_in_embedded_mode_and_against_a_server() {
    let dir = scratch("ask");
    owner_and_tenant(&dir, "ask");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::write(
        tree.join("README.md"),
        "# Gizmo\n\nThe gizmo calibrates flux capacitors nightly.\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("src/lib.rs"),
        "/// Calibrates the flux capacitors.\npub fn calibrate() -> bool {\n    true\n}\n",
    )
    .unwrap();
    let (ok, _, err) =
        run(cmd(&dir).args(["index", "tree", "--tenant", "ask", "--collection", "gizmo"]));
    assert!(ok, "{err}");

    let q = "How are the flux capacitors calibrated?";
    let (ok, out, err) = run(cmd(&dir).args(["ask", q, "--tenant", "ask", "--project", "gizmo"]));
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("# {q}\n")) && out.contains("## Metadata"),
        "{out}"
    );
    assert!(
        out.contains("README.md:") && out.contains("src/lib.rs:"),
        "{out}"
    );
    assert!(
        err.contains("→ retrieve") && err.contains("→ publish"),
        "progress on stderr: {err}"
    );
    let (ok, out2, err) = run(cmd(&dir).args(["ask", q, "--tenant", "ask", "--project", "gizmo"]));
    assert!(ok && err.contains("already answers"), "{err}");
    assert_eq!(out2, out, "the published document again");
    // Documents out to a folder and back.
    let (ok, _, err) = run(cmd(&dir).args([
        "docs",
        "export",
        "out",
        "--tenant",
        "ask",
        "--project",
        "gizmo",
    ]));
    assert!(ok && err.contains("exported 1 documents"), "{err}");
    let slug = "how-are-the-flux-capacitors-calibrated";
    let exported = std::fs::read_to_string(dir.join(format!("out/docs/faq/{slug}.md"))).unwrap();
    assert_eq!(exported.trim_end(), out.trim_end());
    std::fs::create_dir_all(dir.join("out/docs/guide")).unwrap();
    std::fs::write(
        dir.join("out/docs/guide/intro.md"),
        "# Intro\n\nStart here.\n",
    )
    .unwrap();
    let (ok, report, err) = run(cmd(&dir).args([
        "docs",
        "import",
        "out",
        "--tenant",
        "ask",
        "--project",
        "gizmo",
    ]));
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["created"],
        serde_json::json!(["docs/guide/intro.md"]),
        "{report}"
    );
    assert_eq!(
        report["unchanged"],
        serde_json::json!([format!("docs/faq/{slug}.md")]),
        "{report}"
    );
    // Code generation needs a chat model: a clear refusal, non-zero exit.
    let (ok, _, err) = run(cmd(&dir).args([
        "codegen",
        "Make calibrate return false",
        "--tenant",
        "ask",
        "--project",
        "gizmo",
        "--path",
        "tree",
    ]));
    assert!(
        !ok && err.contains("code generation needs a chat model"),
        "{err}"
    );

    // The same against a running server, with an API key.
    let (ok, key, err) = run(cmd(&dir).args([
        "apikey",
        "create",
        "--tenant",
        "ask",
        "--user",
        "ask@example.com",
    ]));
    assert!(ok, "{err}");
    let (_server, url) = serve(&mut cmd(&dir));
    let (ok, out, err) = run(cmd(&dir).args([
        "ask",
        q,
        "--project",
        "gizmo",
        "--regenerate",
        "--server",
        &url,
        "--api-key",
        key.trim(),
    ]));
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("# {q}\n")), "{out}");
    assert!(
        err.contains("→ retrieve") && err.contains("→ succeeded"),
        "live events: {err}"
    );
    let (ok, _, err) = run(cmd(&dir).args([
        "ask",
        q,
        "--project",
        "nope",
        "--server",
        &url,
        "--api-key",
        key.trim(),
    ]));
    assert!(!ok && err.contains("no project"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codegen_prints_a_checked_diff_for_a_tree_outside_any_index_root() {
    use morningai_conformance::fake_openai::{FakeOpenAi, Reply};
    let dir = scratch("codegen");
    owner_and_tenant(&dir, "cg");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::write(
        tree.join("src/lib.rs"),
        "pub fn calibrate() -> bool {\n    true\n}\n",
    )
    .unwrap();
    let (ok, _, err) =
        run(cmd(&dir).args(["index", "tree", "--tenant", "cg", "--collection", "tree"]));
    assert!(ok, "{err}");
    let diff = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn calibrate() -> bool {\n-    true\n+    false\n }\n";
    let fake = FakeOpenAi::start().await;
    let content =
        serde_json::json!({"plan": ["flip it"], "explanation": "Now returns false.", "diff": diff})
            .to_string();
    fake.push([Reply::answer(&content, 10, 10)]);
    // No index_roots are configured: the CLI may still read the tree it is given.
    let out = tokio::task::spawn_blocking({
        let (dir, url) = (dir.clone(), fake.base_url());
        move || {
            run(cmd(&dir)
                .args([
                    "codegen",
                    "Make calibrate return false",
                    "--tenant",
                    "cg",
                    "--project",
                    "cg",
                    "--path",
                    "tree",
                ])
                .env("MORNINGAI_CHAT_BASE_URL", url)
                .env("MORNINGAI_CHAT_MODEL", "fake-model"))
        }
    })
    .await
    .unwrap();
    let (ok, out, err) = out;
    assert!(ok, "{err}");
    assert_eq!(out, diff);
    assert!(err.contains("Now returns false."), "{err}");
    assert_eq!(fake.seen().len(), 1);
}
