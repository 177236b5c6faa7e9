//! The dashboard as the server delivers it: its files with their caching and security
//! headers, `index.html` for a browser on a client-side route, problems for everything
//! else; and the OpenAPI copy its generated client is built from.

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
};

/// `web/openapi.json` is what `npm run gen:api` turns into the dashboard's types. It must be
/// the document the server serves; `UPDATE_OPENAPI=1` rewrites it.
#[test]
fn the_dashboards_openapi_copy_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json");
    let doc = serde_json::to_string_pretty(&morningai_server::openapi::document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == doc,
        "web/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p morningai-server --test dashboard` \
         and then `npm run gen:api` in web/"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_its_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = |path: &'static str| {
        app.client
            .get(app.url(path))
            .header(ACCEPT, "text/html,application/xhtml+xml")
            .send()
    };
    let root = page("/").await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    let csp = root.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(root.headers()[CACHE_CONTROL], "no-cache");
    assert!(root.headers().get(CONTENT_ENCODING).is_none());
    let html = root.text().await.unwrap();
    // A client that accepts gzip gets the compressed copy.
    let gz = app
        .client
        .get(app.url("/"))
        .header(ACCEPT, "text/html")
        .header(ACCEPT_ENCODING, "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()[CONTENT_ENCODING], "gzip");
    assert!(gz.bytes().await.unwrap().starts_with(&[0x1f, 0x8b]));
    assert!(html.contains("<div id=\"root\">"), "{html}");

    // A client-side route a browser navigates to gets the same page.
    let deep = page("/tasks/0190ffff-aaaa-7bbb-8ccc-dddddddddddd")
        .await
        .unwrap();
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(deep.text().await.unwrap(), html);

    // Every script the page names is served, cached for good, as JavaScript.
    let scripts: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(!scripts.is_empty(), "{html}");
    for src in scripts {
        let res = app.client.get(app.url(src)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{src}");
        assert_eq!(
            res.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(
            res.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
    }

    // Not pages: API paths, files that do not exist, clients that do not ask for HTML,
    // and writes keep their JSON problems.
    for (path, accept) in [
        ("/api/v1/nowhere", "text/html"),
        ("/threads/nowhere/x", "text/html"),
        ("/assets/missing.js", "text/html"),
        ("/tasks", "application/json"),
    ] {
        let res = app
            .client
            .get(app.url(path))
            .header(ACCEPT, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "route_not_found", "{path}");
    }
    let post = app.client.post(app.url("/")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);

    // Hostile paths: files are looked up in the embedded table by exact name, so nothing
    // outside it is reachable, and nothing odd reaches a page either.
    let long = format!("/assets/{}.js", "a".repeat(8_000));
    for path in [
        "/assets/../../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/assets/index.js%00.html",
        "/index.html/.",
        long.as_str(),
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{path}: {status}"
        );
        assert!(!body.contains("root:"), "{path}: {body}");
    }
    let head = app
        .client
        .head(app.url("/documents"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.headers().contains_key(CONTENT_SECURITY_POLICY));
}
