//! Documents over HTTP on both backends: versions based on a parent (a stale or concurrent
//! save conflicts cleanly), diff, restore, publish and search, archive, tenant isolation,
//! roles, and bad input.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    documents_keep_every_version_and_refuse_conflicting_saves,
    export_then_import_round_trips
);

async fn project(app: &TestApp, who: &Account) -> String {
    let (s, p) = app
        .post("/api/v1/projects", &who.access, json!({"name": "Docs"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    p["id"].as_str().unwrap().to_owned()
}

async fn save(
    app: &TestApp,
    who: &Account,
    id: &str,
    base: u64,
    text: &str,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/documents/{id}/versions"),
        &who.access,
        json!({"base_version": base, "text": text}),
    )
    .await
}

async fn documents_keep_every_version_and_refuse_conflicting_saves(app: TestApp) {
    let a = app.signup("docs-a").await;
    let b = app.signup("docs-b").await;
    let pa = project(&app, &a).await;
    let (s, created) = app
        .post(
            "/api/v1/documents",
            &a.access,
            json!({"project_id": pa, "title": "What is the queue?", "kind": "faq", "tags": ["Queue", "queue"],
                   "text": "# Queue\n\nJobs are leased.\n"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let doc = &created["document"];
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            doc["slug"].as_str(),
            doc["status"].as_str(),
            doc["latest_version"].as_u64()
        ),
        (Some("what-is-the-queue"), Some("draft"), Some(1))
    );
    assert_eq!(doc["tags"], json!(["queue"]));
    assert_eq!(
        created["version"]["author"],
        json!({"type": "user", "user_id": a.user_id})
    );
    let (s, e) = app
        .post(
            "/api/v1/documents",
            &a.access,
            json!({"project_id": pa, "title": "What is the queue?", "kind": "faq"}),
        )
        .await;
    assert_problem(s, &e, StatusCode::CONFLICT, "slug_taken");

    // Edits build on the latest version; a stale base is refused.
    let (s, v2) = save(&app, &a, &id, 1, "# Queue\n\nJobs are leased for 30 s.\n").await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(
        (
            v2["version"]["n"].as_u64(),
            v2["version"]["parent"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let (s, e) = save(&app, &a, &id, 1, "an edit of a stale copy").await;
    assert_problem(s, &e, StatusCode::CONFLICT, "version_conflict");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("version 2 is the latest"),
        "{e}"
    );
    // Two saves racing from the same base: exactly one wins.
    let (r1, r2) = tokio::join!(
        save(&app, &a, &id, 2, "# Queue\n\nPerson's edit.\n"),
        save(&app, &a, &id, 2, "# Queue\n\nAgent's edit.\n"),
    );
    let mut statuses = [r1.0, r2.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CONFLICT],
        "{r1:?} {r2:?}"
    );
    let winner = if r1.0 == StatusCode::CREATED {
        &r1.1
    } else {
        &r2.1
    };
    let (_, v3) = app
        .get(&format!("/api/v1/documents/{id}/versions/3"), &a.access)
        .await;
    assert_eq!(
        v3["text"], winner["version"]["text"],
        "the stored version is the winner's"
    );

    // A document written from a stale read (a metadata patch racing a save, or a crash
    // between claiming a version and updating the document) does not wedge later saves.
    let cx = morningai_core::TenantCtx::new(a.tenant_id.parse().unwrap());
    let mut stale = app
        .store
        .get_object(cx, "document", id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    stale.body["latest_version"] = json!(1);
    app.store.put_object(cx, &stale).await.unwrap();
    let (_, healed) = app.get(&format!("/api/v1/documents/{id}"), &a.access).await;
    assert_eq!(healed["latest_version"], 3, "{healed}");
    let (_, versions) = app
        .get(&format!("/api/v1/documents/{id}/versions"), &a.access)
        .await;
    let ns: Vec<u64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [3, 2, 1]);
    let (s, e) = app
        .get(&format!("/api/v1/documents/{id}/versions/99"), &a.access)
        .await;
    assert_problem(s, &e, StatusCode::NOT_FOUND, "not_found");
    // A version named in the body or query that the document lacks is the request's fault.
    let (s, e) = app
        .post(
            &format!("/api/v1/documents/{id}/publish"),
            &a.access,
            json!({"version": 99}),
        )
        .await;
    assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "version", "{e}");
    let (s, e) = app
        .get(
            &format!("/api/v1/documents/{id}/diff?from=1&to=99"),
            &a.access,
        )
        .await;
    assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "to", "{e}");

    let (s, d) = app
        .get(
            &format!("/api/v1/documents/{id}/diff?from=1&to=2"),
            &a.access,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let diff = d["diff"].as_str().unwrap();
    assert!(
        diff.contains("-Jobs are leased.\n") && diff.contains("+Jobs are leased for 30 s.\n"),
        "{diff}"
    );
    assert!(diff.starts_with("--- v1\n+++ v2\n"), "{diff}");

    // Restore version 1 as version 4.
    let (s, r) = app
        .post(
            &format!("/api/v1/documents/{id}/restore"),
            &a.access,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        (r["version"]["n"].as_u64(), r["version"]["parent"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(r["version"]["text"], "# Queue\n\nJobs are leased.\n");
    assert_eq!(r["version"]["metadata"]["restored_from"], 1);

    // Publish (no body: the latest), then find it.
    let (s, p) = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/documents/{id}/publish"),
            Some(&a.access),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        (p["status"].as_str(), p["published_version"].as_u64()),
        (Some("published"), Some(4))
    );
    let (s, found) = app
        .get(
            &format!("/api/v1/documents?project_id={pa}&q=leased+jobs"),
            &a.access,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
    assert!(
        found["hits"][0]["excerpt"]
            .as_str()
            .unwrap()
            .contains("leased")
    );
    let (_, published) = app
        .get(
            &format!("/api/v1/documents?project_id={pa}&status=published"),
            &a.access,
        )
        .await;
    assert_eq!(published["items"].as_array().unwrap().len(), 1);

    // Archived documents leave search.
    let (s, _) = app
        .patch(
            &format!("/api/v1/documents/{id}"),
            &a.access,
            json!({"archived": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, found) = app
        .get(
            &format!("/api/v1/documents?project_id={pa}&q=leased+jobs"),
            &a.access,
        )
        .await;
    assert_eq!(found["items"], json!([]), "{found}");

    // Tenant B sees none of it and cannot write into A's project.
    let (s, e) = app.get(&format!("/api/v1/documents/{id}"), &b.access).await;
    assert_problem(s, &e, StatusCode::NOT_FOUND, "not_found");
    let (s, e) = save(&app, &b, &id, 4, "hijack").await;
    assert_problem(s, &e, StatusCode::NOT_FOUND, "not_found");
    let (_, mine) = app.get("/api/v1/documents", &b.access).await;
    assert_eq!(mine["items"], json!([]));
    let (s, e) = app
        .post(
            "/api/v1/documents",
            &b.access,
            json!({"project_id": pa, "title": "x", "kind": "faq"}),
        )
        .await;
    assert_problem(s, &e, StatusCode::NOT_FOUND, "not_found");

    // Roles.
    let viewer = app.member(&a, "docs-viewer", "viewer").await;
    let (s, e) = save(&app, &viewer, &id, 4, "nope").await;
    assert_problem(s, &e, StatusCode::FORBIDDEN, "forbidden");
    let member = app.member(&a, "docs-member", "member").await;
    let (s, e) = app
        .delete(&format!("/api/v1/documents/{id}"), &member.access)
        .await;
    assert_problem(s, &e, StatusCode::FORBIDDEN, "forbidden");

    // Bad input.
    for (body, want) in [
        (
            json!({"project_id": pa, "title": "t", "kind": "novel"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"project_id": pa, "title": "t", "kind": "faq", "slug": "Bad Slug"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"project_id": pa, "title": "", "kind": "faq"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"project_id": pa, "title": "t", "kind": "faq", "text": "x".repeat(600_000)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"project_id": pa, "title": "t", "kind": "faq", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, e) = app.post("/api/v1/documents", &a.access, body).await;
        // Too-large texts meet the body limit first when it is lower than 512 KiB.
        assert!(
            s == want || s == StatusCode::BAD_REQUEST || s == StatusCode::PAYLOAD_TOO_LARGE,
            "{s} {e}"
        );
        assert!(e["code"].is_string(), "{e}");
    }
    let (s, _) = app
        .get(
            &format!("/api/v1/documents/{id}/diff?from=a&to=2"),
            &a.access,
        )
        .await;
    assert!(s.is_client_error());

    // Admins delete; the slug is free again.
    let (s, _) = app
        .delete(&format!("/api/v1/documents/{id}"), &a.access)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .get(&format!("/api/v1/documents/{id}/versions/1"), &a.access)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(
            "/api/v1/documents",
            &a.access,
            json!({"project_id": pa, "title": "What is the queue?", "kind": "faq"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

async fn import_zip(
    app: &TestApp,
    who: &Account,
    project: &str,
    zip: Vec<u8>,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/documents/import?project_id={project}")))
        .bearer_auth(&who.access)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn export_then_import_round_trips(app: TestApp) {
    let a = app.signup("docs-io").await;
    let p1 = project(&app, &a).await;
    for (title, kind, text, publish) in [
        (
            "Queue FAQ",
            "faq",
            "# Queue FAQ\n\nJobs are leased.\n",
            true,
        ),
        (
            "Setup guide",
            "guide",
            "# Setup guide\n\nRun `morningai serve`.\n",
            true,
        ),
        ("Draft notes", "guide", "# Draft notes\n\nNot yet.\n", false),
    ] {
        let (_, d) = app
            .post(
                "/api/v1/documents",
                &a.access,
                json!({"project_id": p1, "title": title, "kind": kind, "text": text}),
            )
            .await;
        if publish {
            let id = d["document"]["id"].as_str().unwrap();
            app.post(
                &format!("/api/v1/documents/{id}/publish"),
                &a.access,
                json!({}),
            )
            .await;
        }
    }
    let res = app
        .client
        .get(app.url(&format!("/api/v1/documents/export?project_id={p1}")))
        .bearer_auth(&a.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip = res.bytes().await.unwrap().to_vec();
    let files = morningai_app::documents::unzip_files(&zip).unwrap();
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["docs/faq/queue-faq.md", "docs/guide/setup-guide.md"],
        "published only"
    );

    // Into another project: the same documents, published.
    let p2 = project(&app, &a).await;
    let (s, report) = import_zip(&app, &a, &p2, zip.clone()).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(
        report["created"],
        json!(["docs/faq/queue-faq.md", "docs/guide/setup-guide.md"])
    );
    let (_, listed) = app
        .get(
            &format!("/api/v1/documents?project_id={p2}&status=published"),
            &a.access,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let res = app
        .client
        .get(app.url(&format!("/api/v1/documents/export?project_id={p2}")))
        .bearer_auth(&a.access)
        .send()
        .await
        .unwrap();
    let again = morningai_app::documents::unzip_files(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(again, files, "export → import → export is the identity");
    // Importing the same again changes nothing, even over an edit not yet published (the
    // export holds the published versions); a changed file is a new version.
    let (_, listed) = app
        .get(&format!("/api/v1/documents?project_id={p2}"), &a.access)
        .await;
    let setup = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["slug"] == "setup-guide")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = save(
        &app,
        &a,
        &setup,
        1,
        "# Setup guide\n\nAn edit in progress.\n",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, report) = import_zip(&app, &a, &p2, zip).await;
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 2, "{report}");
    let (_, d) = app
        .get(&format!("/api/v1/documents/{setup}"), &a.access)
        .await;
    assert_eq!(
        (&d["published_version"], &d["latest_version"]),
        (&json!(1), &json!(2)),
        "{d}"
    );
    // A decompression bomb (8 MiB of one byte in a few KiB) is refused while inflating.
    let bomb =
        morningai_app::documents::zip_files(&[("docs/guide/bomb.md".into(), "a".repeat(8 << 20))])
            .unwrap();
    let (s, b) = import_zip(&app, &a, &p2, bomb).await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(b.to_string().contains("larger than 524288 bytes"), "{b}");
    let mut changed = files.clone();
    changed[0].1.push_str("\nLeases last 30 s.\n");
    changed.push(("docs/novel/x.md".into(), "# x".into()));
    let (_, report) = import_zip(
        &app,
        &a,
        &p2,
        morningai_app::documents::zip_files(&changed).unwrap(),
    )
    .await;
    assert_eq!(
        report["updated"],
        json!(["docs/faq/queue-faq.md"]),
        "{report}"
    );
    assert!(
        report["skipped"][0]
            .as_str()
            .unwrap()
            .contains("unknown kind"),
        "{report}"
    );
    let (_, faq) = app
        .get(
            &format!("/api/v1/documents?project_id={p2}&status=published"),
            &a.access,
        )
        .await;
    let faq = faq["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["slug"] == "queue-faq")
        .unwrap()
        .clone();
    assert_eq!(faq["published_version"], 2);

    // Bad input and isolation.
    let (s, e) = import_zip(&app, &a, &p2, b"not a zip".to_vec()).await;
    assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let b = app.signup("docs-io-b").await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/documents/export?project_id={p1}")))
        .bearer_auth(&b.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
