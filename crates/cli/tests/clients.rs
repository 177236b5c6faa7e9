//! The official Python `mcp` and `openai` clients (from PyPI, in the virtualenv the test
//! script makes; `MORNINGAI_SDK_PYTHON` names its interpreter) against a real
//! `morningai serve` with the MiniLM embedding model: MCP tools with progress, resources,
//! roles and another tenant's view; OpenAI models, completions whole and streamed,
//! embeddings equal to the memory's vectors, and OpenAI-shaped errors.

mod common;

use common::{clean_cmd, scratch, serve};
use std::process::Command;

#[test]
fn the_official_mcp_and_openai_clients_drive_our_server() {
    let python = std::env::var("MORNINGAI_SDK_PYTHON").expect(
        "MORNINGAI_SDK_PYTHON is not set: run the suite with scripts/test.sh, which installs mcp and openai",
    );
    let model = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    let dir = scratch("clients");
    let cmd = || {
        let mut c = clean_cmd(&dir);
        c.env("MORNINGAI_PASSWORD", "clients-test-password")
            .env("MORNINGAI_EMBED_MODEL_DIR", &model);
        c
    };
    let run = |args: &[&str]| {
        let out = cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let tenant = |slug: &str, owner: &str| {
        run(&["user", "create", "--email", owner]);
        run(&[
            "tenant", "create", "--name", slug, "--slug", slug, "--owner", owner,
        ]);
        run(&["apikey", "create", "--tenant", slug, "--user", owner])
    };
    let member = |email: &str, role: &str| {
        run(&[
            "user", "create", "--email", email, "--tenant", "acme", "--role", role,
        ]);
        run(&["apikey", "create", "--tenant", "acme", "--user", email])
    };
    let owner = tenant("acme", "owner@acme.example");
    let other = tenant("rival", "owner@rival.example");
    let reviewer = member("reviewer@acme.example", "admin");
    let viewer = member("viewer@acme.example", "viewer");

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
    run(&[
        "index",
        tree.to_str().unwrap(),
        "--tenant",
        "acme",
        "--collection",
        "gizmo",
    ]);

    let (_server, url) = serve(&mut cmd());
    let setup = serde_json::json!({
        "owner": owner, "reviewer": reviewer, "viewer": viewer, "other": other,
        "tree": tree,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/mcp_openai_check.py");
    let out = Command::new(python)
        .args([script, &url, &setup.to_string()])
        .output()
        .expect("run python");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "mcp / openai client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
