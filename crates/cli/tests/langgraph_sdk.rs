//! The official Python `langgraph-sdk` client (from PyPI, in the virtualenv the test script
//! makes; `MORNINGAI_SDK_PYTHON` names its interpreter) against a real `morningai serve`:
//! assistants, threads, streaming and waiting runs, an interrupt resumed with
//! `Command(resume=…)` (refused to the run's own starter, accepted from another admin, as
//! the approval policy says), history. The test fails if the SDK cannot parse what we send.

mod common;

use common::{clean_cmd, scratch, serve};
use std::process::Command;

#[test]
fn the_official_python_client_drives_our_server() {
    let python = std::env::var("MORNINGAI_SDK_PYTHON")
        .expect("MORNINGAI_SDK_PYTHON is not set: run the suite with scripts/test.sh, which installs langgraph-sdk");
    let dir = scratch("sdk");
    let run = |args: &[&str]| {
        let out = clean_cmd(&dir)
            .args(args)
            .env("MORNINGAI_PASSWORD", "sdk-test-password")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["user", "create", "--email", "sdk@example.com"]);
    run(&[
        "tenant",
        "create",
        "--name",
        "SDK",
        "--slug",
        "sdk",
        "--owner",
        "sdk@example.com",
    ]);
    let key = run(&[
        "apikey",
        "create",
        "--tenant",
        "sdk",
        "--user",
        "sdk@example.com",
        "--role",
        "owner",
    ])
    .trim()
    .to_owned();
    // A second admin: approvals of the owner's runs are someone else's to give.
    run(&[
        "user",
        "create",
        "--email",
        "reviewer@example.com",
        "--tenant",
        "sdk",
        "--role",
        "admin",
    ]);
    let reviewer = run(&[
        "apikey",
        "create",
        "--tenant",
        "sdk",
        "--user",
        "reviewer@example.com",
    ])
    .trim()
    .to_owned();
    let (_server, url) = serve(&mut clean_cmd(&dir));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/langgraph_sdk_check.py"
    );
    let out = Command::new(python)
        .args([script, &url, &key, &reviewer])
        .output()
        .expect("run python");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "langgraph-sdk checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
