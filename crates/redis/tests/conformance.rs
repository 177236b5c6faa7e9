//! The JobQueue conformance suite on Redis (REDIS_URL; the test script starts a throwaway
//! server). Each case gets its own key prefix.

use morningai_redis::RedisQueue;
use std::sync::Arc;

async fn fresh_queue() -> morningai_conformance::queue::DynQueue {
    let url = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the suite with scripts/test.sh, which starts Redis");
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let q = RedisQueue::connect(&url, &prefix, morningai_conformance::queue::TENANT_LIMIT)
        .await
        .expect("connect to Redis")
        .with_backoff(
            morningai_conformance::queue::BACKOFF_BASE,
            std::time::Duration::from_secs(5),
        );
    Arc::new(q)
}

morningai_conformance::queue_conformance!(fresh_queue());
