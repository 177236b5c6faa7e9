//! Dense search keeps each tenant's vectors in memory; a write from another process (here:
//! another store on the same file, as the CLI indexing beside a running server) must be
//! visible at the next search.

use morningai_core::Store;
use morningai_core::memory::{Memory, NewChunk, NewItem, SearchScope};
use morningai_sqlite::SqliteStore;
use serde_json::json;
use std::sync::Arc;

fn item(source: &str, v: Vec<f32>) -> NewItem {
    NewItem {
        source: source.into(),
        content_hash: source.into(),
        metadata: json!({}),
        chunks: vec![NewChunk {
            text: source.into(),
            start_line: 1,
            end_line: 1,
            language: None,
            heading: None,
            embedding: Some(v),
            embed_key: None,
        }],
    }
}

#[tokio::test]
async fn writes_from_another_process_are_seen_by_the_next_search() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("vcache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = SqliteStore::open(dir.join("m.db")).await.unwrap();
    let cli = SqliteStore::open(dir.join("m.db")).await.unwrap();
    let dynstore: Arc<dyn Store> = Arc::new(server.clone());
    let (_, cx) = morningai_conformance::owner(&dynstore, "vcache").await;
    let c = server
        .create_collection(cx, "c", None, "m", 2)
        .await
        .unwrap();
    server
        .put_item(cx, c.id, item("east", vec![1.0, 0.0]))
        .await
        .unwrap();
    let scope = SearchScope {
        k: 1,
        ..Default::default()
    };
    let north = [0.0, 1.0];
    let hits = server.dense_search(cx, &scope, "m", &north).await.unwrap();
    assert_eq!(hits[0].source, "east", "the only vector");

    cli.put_item(cx, c.id, item("north", vec![0.0, 1.0]))
        .await
        .unwrap();
    let hits = server.dense_search(cx, &scope, "m", &north).await.unwrap();
    assert_eq!(
        hits[0].source, "north",
        "the other process's vector is searched"
    );

    let items = cli.list_items(cx, c.id).await.unwrap();
    let n = items.iter().find(|i| i.source == "north").unwrap();
    cli.delete_item(cx, c.id, n.id).await.unwrap();
    let hits = server.dense_search(cx, &scope, "m", &north).await.unwrap();
    assert_eq!(hits[0].source, "east", "and its deletion too");
}
