//! The `morningai` binary as a user runs it: configuration precedence, secrets redaction,
//! production safety, the generated signing key, and administration commands.

use std::path::Path;
use std::process::Command;

mod common;

use common::{clean_cmd, scratch, serve};

/// Logs `email` in (the password every test user here has) and returns the access token.
async fn access_token(client: &reqwest::Client, url: &str, email: &str) -> String {
    let login: serde_json::Value = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().expect("login").to_owned()
}

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
    // A worker reads the same key (it unseals tenants' provider keys): it starts in
    // production with it and refuses without it. Its own Redis prefix: it takes no job of
    // another test.
    let prefix = dir.join("worker.toml");
    std::fs::write(
        &prefix,
        format!(
            "redis_prefix = \"prod-{}\"\n",
            uuid::Uuid::new_v4().simple()
        ),
    )
    .unwrap();
    let distributed = |c: &mut Command| {
        c.env("MORNINGAI_ENV", "production")
            .env(
                "DATABASE_URL",
                std::env::var("DATABASE_URL").expect("DATABASE_URL"),
            )
            .env("REDIS_URL", std::env::var("REDIS_URL").expect("REDIS_URL"))
            .env("MORNINGAI_CONFIG", &prefix);
    };
    let mut c = cmd(&dir);
    distributed(&mut c);
    let (ok, _, err) = run(c.arg("worker"));
    assert!(
        !ok && err.contains("MORNINGAI_SIGNING_KEY is required"),
        "{err}"
    );
    let mut c = cmd(&dir);
    distributed(&mut c);
    let (_worker, line) =
        common::spawn_ready(c.env("MORNINGAI_SIGNING_KEY", "x".repeat(32)).arg("worker"));
    assert!(line.contains("worker running"), "{line:?}");
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
    let token = access_token(&client, &url, "ada@example.com").await;
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
        "serve", "migrate", "tenant", "user", "apikey", "index", "ask", "codegen", "doctor",
        "backup", "restore",
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

/// An owner API key for the tenant `slug` made by [`owner_and_tenant`].
fn owner_key(dir: &Path, slug: &str) -> String {
    let (ok, key, err) = run(cmd(dir).args([
        "apikey",
        "create",
        "--tenant",
        slug,
        "--user",
        &format!("{slug}@example.com"),
    ]));
    assert!(ok, "{err}");
    key.trim().to_owned()
}

/// `morningai backup` while `serve` takes writes: the copy holds every task the API had
/// acknowledged before the backup started; `restore` checks the files against the manifest,
/// refuses a database in use and an existing one without --replace, and brings back the
/// signing key (a token issued before the backup still verifies after the restore).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_write_load_restores_every_acknowledged_task() {
    use std::sync::{Arc, Mutex};
    let dir = scratch("backup");
    owner_and_tenant(&dir, "bk");
    let key = owner_key(&dir, "bk");
    let (server, url) = serve(&mut cmd(&dir));
    let client = reqwest::Client::new();
    let token = access_token(&client, &url, "bk@example.com").await;

    // Four writers create tasks until told to stop; each acknowledged id is recorded.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop: Arc<std::sync::atomic::AtomicBool> = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, url, key, acked, stop) = (
                client.clone(),
                url.clone(),
                key.clone(),
                acked.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let res = client
                        .post(format!("{url}/api/v1/tasks"))
                        .header("x-api-key", &key)
                        .json(&serde_json::json!({"kind": "echo", "input": {"writer": w, "n": i}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201);
                    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    acked.lock().unwrap().push(id);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let before: Vec<String> = acked.lock().unwrap().clone();
    let backup = dir.join("backup-1");
    let out = tokio::task::spawn_blocking({
        let (dir, backup) = (dir.clone(), backup.clone());
        move || run(cmd(&dir).arg("backup").arg(&backup))
    })
    .await
    .unwrap();
    assert!(out.0, "{}", out.2);
    let manifest: serde_json::Value = serde_json::from_str(&out.1).unwrap();
    assert_eq!(manifest["signing_key"], "data_dir", "{manifest}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let during = acked.lock().unwrap().len();
    eprintln!(
        "backup: {} tasks acknowledged before it began, {during} in all",
        before.len()
    );
    assert!(
        before.len() >= 20 && during > before.len(),
        "writes went on around the backup: {} before, {during} in all",
        before.len()
    );

    // Refusals: a backup into a folder that is not empty; a restore over the database
    // serve has open; over an existing database without --replace; a damaged file.
    let (ok, _, err) = run(cmd(&dir).arg("backup").arg(&backup));
    assert!(!ok && err.contains("not empty"), "{err}");
    let (ok, _, err) = run(cmd(&dir).args(["restore", "--replace"]).arg(&backup));
    assert!(!ok && err.contains("stop it before restoring"), "{err}");
    drop(server);
    let (ok, _, err) = run(cmd(&dir).arg("restore").arg(&backup));
    assert!(!ok && err.contains("--replace"), "{err}");
    let damaged = dir.join("backup-damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    for f in ["manifest.json", "signing.key", "morningai.db"] {
        std::fs::copy(backup.join(f), damaged.join(f)).unwrap();
    }
    let mut db = std::fs::read(damaged.join("morningai.db")).unwrap();
    let middle = db.len() / 2;
    db[middle] ^= 0xff;
    std::fs::write(damaged.join("morningai.db"), db).unwrap();
    let fresh = scratch("restored");
    let (ok, _, err) = run(cmd(&fresh).arg("restore").arg(&damaged));
    assert!(!ok && err.contains("does not match the manifest"), "{err}");
    assert!(!fresh.join("data/morningai.db").exists());

    let (ok, _, err) = run(cmd(&fresh)
        .arg("restore")
        .arg(&backup)
        .env("MORNINGAI_SIGNING_KEY", "k7Qp2vXz9LmN4rTb8WcY1sFh6GdJ3eKa"));
    assert!(
        !ok && err.contains("not the key this backup was taken with"),
        "{err}"
    );
    assert!(!fresh.join("data/morningai.db").exists());

    // The restore into a new data directory: every task acknowledged before the backup.
    let (ok, _, err) = run(cmd(&fresh).arg("restore").arg(&backup));
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(fresh.join("data/signing.key")).unwrap(),
        std::fs::read(dir.join("data/signing.key")).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fresh.join("data/signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_server, url) = serve(&mut cmd(&fresh));
    let mut missing = Vec::new();
    for id in &before {
        let res = client
            .get(format!("{url}/api/v1/tasks/{id}"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        if res.status() != 200 {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged tasks missing after the restore: {missing:?}",
        missing.len(),
        before.len()
    );
    let me = client
        .get(format!("{url}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "a token from before the backup verifies");

    // Over the original deployment (killed, its log as it was): --replace sets the old
    // database and log aside; the last task, acknowledged after the backup, is gone.
    let last = acked.lock().unwrap().last().unwrap().clone();
    let (ok, _, err) = run(cmd(&dir).args(["restore", "--replace"]).arg(&backup));
    assert!(ok, "{err}");
    assert!(dir.join("data/morningai.db.pre-restore").exists());
    let (_again, url) = serve(&mut cmd(&dir));
    for (id, want) in [(&before[0], 200), (&last, 404)] {
        let res = client
            .get(format!("{url}/api/v1/tasks/{id}"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "task {id}");
    }
}

/// `morningai doctor` names what is wrong and exits non-zero until nothing fails: an
/// uninitialised data directory, an unreachable Redis, a chat provider refusing the key, a
/// signing key others can read; then everything configured and reachable (the real model,
/// the fake OpenAI provider listing its models, PostgreSQL with its RLS role) passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_is_wrong_and_passes_when_all_is_well() {
    use morningai_conformance::fake_openai::{FakeOpenAi, Reply};
    let doctor = |c: &mut Command| {
        let (ok, out, err) = run(c.arg("doctor").env("RUST_BACKTRACE", "0"));
        (ok, out, err)
    };
    let dir = scratch("doctor");
    let (ok, out, _) = doctor(&mut cmd(&dir));
    assert!(
        !ok && out.contains("FAIL  database") && out.contains("morningai migrate"),
        "{out}"
    );
    let (ok, _, err) = run(cmd(&dir).arg("migrate"));
    assert!(ok, "{err}");
    let (ok, out, err) = doctor(&mut cmd(&dir));
    assert!(
        ok && out.contains("schema") && !out.contains("FAIL"),
        "{out}{err}"
    );

    let (ok, out, _) = doctor(cmd(&dir).env("REDIS_URL", "redis://127.0.0.1:1"));
    assert!(!ok && out.contains("FAIL  queue"), "{out}");
    let roots = |root: &Path| {
        let file = dir.join(format!("roots-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &file,
            format!("index_roots = [{:?}]\n", root.display().to_string()),
        )
        .unwrap();
        file
    };
    let (ok, out, _) = doctor(cmd(&dir).env("MORNINGAI_CONFIG", roots(&dir.join("nowhere"))));
    assert!(!ok && out.contains("FAIL  index roots"), "{out}");

    let fake = FakeOpenAi::start().await;
    let models = Reply::json(
        200,
        serde_json::json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}),
    );
    fake.push([
        Reply::error(401, "Incorrect API key provided", vec![]),
        models.clone(),
    ]);
    let chat = |c: &mut Command| {
        c.env("MORNINGAI_CHAT_BASE_URL", fake.base_url())
            .env("MORNINGAI_CHAT_MODEL", "fake-model")
            .env("MORNINGAI_CHAT_API_KEY", "sk-test");
    };
    let mut c = cmd(&dir);
    chat(&mut c);
    let (ok, out, _) = doctor(&mut c);
    assert!(
        !ok && out.contains("FAIL  chat provider") && out.contains("HTTP 401"),
        "{out}"
    );
    let model_dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    let mut c = cmd(&dir);
    chat(&mut c);
    c.env("MORNINGAI_EMBED_MODEL_DIR", &model_dir)
        .env("MORNINGAI_CONFIG", roots(&dir));
    let (ok, out, err) = doctor(&mut c);
    assert!(ok, "{out}{err}");
    assert!(!out.contains("warn") && !out.contains("FAIL"), "{out}");
    assert!(
        out.contains("serves fake-model")
            && out.contains("384 dimensions")
            && out.contains("ok    dashboard            built in ("),
        "{out}"
    );
    let seen = fake.seen();
    assert_eq!(seen.last().unwrap().path, "/v1/models");
    assert_eq!(
        seen.last().unwrap().headers["authorization"],
        "Bearer sk-test"
    );

    // A signing key others can read.
    let (server, _) = serve(&mut cmd(&dir));
    drop(server);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join("data/signing.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (ok, out, _) = doctor(&mut cmd(&dir));
        assert!(!ok && out.contains("chmod 600"), "{out}");
    }

    // PostgreSQL: migrated, the RLS role in place, pgvector installed.
    let pg = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let (ok, _, err) = run(cmd(&dir).arg("migrate").env("DATABASE_URL", &pg));
    assert!(ok, "{err}");
    let redis = std::env::var("REDIS_URL").expect("REDIS_URL is not set");
    let (ok, out, err) = doctor(
        cmd(&dir)
            .env("DATABASE_URL", &pg)
            .env("REDIS_URL", &redis)
            .env("MORNINGAI_SIGNING_KEY", "k7Qp2vXz9LmN4rTb8WcY1sFh6GdJ3eKa"),
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ok    row-level security") && out.contains("ok    pgvector"),
        "{out}"
    );
    // The suite's server has no TLS and listens on loopback: plain text is fine there.
    assert!(
        out.contains("ok    database TLS") && out.contains("the database is on this machine"),
        "{out}"
    );
    // sslmode=require against a server without TLS fails, and says so.
    let (ok, out, _) = doctor(
        cmd(&dir)
            .env("DATABASE_URL", format!("{pg}?sslmode=require"))
            .env("REDIS_URL", &redis),
    );
    assert!(!ok && out.contains("FAIL  database"), "{out}");
    // A server with TLS (certificate for localhost from a throwaway CA; no pgvector, so other
    // checks fail): verified says so, unverified is a warning that names the fix.
    let tls = std::env::var("MORNINGAI_TEST_PG_TLS_URL").expect("MORNINGAI_TEST_PG_TLS_URL");
    let ca = std::env::var("MORNINGAI_TEST_PG_CA").expect("MORNINGAI_TEST_PG_CA");
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        tls.replace("127.0.0.1", "localhost")
    );
    let (_, out, _) = doctor(cmd(&dir).env("DATABASE_URL", &verified));
    assert!(
        out.contains("ok    database TLS") && out.contains("certificate and host name verified"),
        "{out}"
    );
    let (_, out, _) = doctor(cmd(&dir).env("DATABASE_URL", format!("{tls}?sslmode=require")));
    assert!(
        out.contains("warn  database TLS") && out.contains("sslmode=verify-full"),
        "{out}"
    );
    let (ok, out, _) = doctor(cmd(&dir).env("DATABASE_URL", &pg));
    assert!(!ok && out.contains("REDIS_URL"), "{out}");
}
