//! Distributed mode on Redis: the `JobQueue` (atomic Lua scripts; in-flight jobs in a lease
//! set scored by deadline, so any worker can reclaim a dead worker's jobs without knowing
//! who it was) and the `EventBus` (pub/sub, so an API process streams events of jobs run
//! by any worker).

mod bus;
mod queue;

pub use bus::RedisBus;
pub use queue::RedisQueue;

/// Connects to `url` once and PINGs; returns the server's version (`morningai doctor`).
pub async fn ping(url: &str) -> morningai_core::Result<String> {
    use morningai_core::Error;
    let down = |e: redis::RedisError| Error::unavailable("redis_unreachable", e.to_string());
    let client = redis::Client::open(url).map_err(|e| Error::invalid("redis_url", e))?;
    let mut conn = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| Error::unavailable("redis_unreachable", "no connection within 5 s"))?
    .map_err(down)?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(down)?;
    if pong != "PONG" {
        return Err(Error::unavailable(
            "redis_unreachable",
            format!("PING answered {pong:?}"),
        ));
    }
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(down)?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned())
}
