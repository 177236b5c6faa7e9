//! Distributed mode on Redis: the `JobQueue` (atomic Lua scripts; in-flight jobs in a lease
//! set scored by deadline, so any worker can reclaim a dead worker's jobs without knowing
//! who it was) and the `EventBus` (pub/sub, so an API process streams events of jobs run
//! by any worker).

mod bus;
mod queue;

pub use bus::RedisBus;
pub use queue::RedisQueue;
