use async_trait::async_trait;
use futures_util::StreamExt;
use morningai_core::coalesce::{Batch, Coalescer};
use morningai_core::events::{EventBus, LocalBus, TaskEvent};
use morningai_core::{Error, Result};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Events published to a Redis channel and delivered to every subscribed process; inside a
/// process they fan out through a local broadcast channel. Concurrent publications go as
/// one message, a JSON array of events.
pub struct RedisBus {
    publisher: Publisher,
    local: Arc<LocalBus>,
    publishes: Coalescer<(), Publisher, String, Result<()>>,
}

#[derive(Clone)]
struct Publisher {
    conn: ConnectionManager,
    channel: Arc<str>,
}

/// Messages in flight at once, and events per message.
const PUBLISHES_IN_FLIGHT: usize = 2;
const PUBLISHES_MOST: usize = 256;

fn run_publishes(
    publisher: Publisher,
    _: (),
    batch: Batch<String, Result<()>>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let events: Vec<&str> = batch.iter().map(|(event, _)| event.as_str()).collect();
        let message = format!("[{}]", events.join(","));
        let sent: Result<i64> = publisher
            .conn
            .clone()
            .publish(&*publisher.channel, message)
            .await
            .map_err(|e| Error::internal("publish event", e));
        let sent = sent.map(|_| ());
        for (_, reply) in batch {
            let _ = reply.send(sent.clone());
        }
    })
}

/// The events in a message: an array of them, or one (as older versions publish).
fn decode(payload: &str) -> serde_json::Result<Vec<TaskEvent>> {
    if payload.trim_start().starts_with('[') {
        serde_json::from_str(payload)
    } else {
        serde_json::from_str(payload).map(|event| vec![event])
    }
}

impl RedisBus {
    /// Connects and starts the subscriber task (it reconnects on its own).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::internal("parse REDIS_URL", e))?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(|e| Error::internal("connect to Redis", e))?;
        let channel = format!("{{{prefix}}}:events");
        let local = Arc::new(LocalBus::default());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(subscribe_forever(
            client,
            channel.clone(),
            local.clone(),
            ready_tx,
        ));
        // Wait for the first subscription so events published right after connect arrive.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(Self {
            publisher: Publisher {
                conn,
                channel: channel.into(),
            },
            local,
            publishes: Coalescer::new(PUBLISHES_IN_FLIGHT, PUBLISHES_MOST, run_publishes),
        })
    }
}

async fn subscribe_forever(
    client: redis::Client,
    channel: String,
    local: Arc<LocalBus>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.subscribe(&channel).await {
                    tracing::warn!(error = %e, "subscribing to the event channel failed");
                } else {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match decode(&payload) {
                            Ok(events) => events.into_iter().for_each(|ev| local.deliver(ev)),
                            Err(e) => tracing::warn!(error = %e, "undecodable event on the bus"),
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "event subscriber cannot connect to Redis"),
        }
        // The connection dropped (Redis restarted?): clients replay missed events from the
        // store by id, so a short gap here loses nothing.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: &TaskEvent) -> Result<()> {
        let payload =
            serde_json::to_string(event).map_err(|e| Error::internal("encode event", e))?;
        self.publishes
            .ask(&self.publisher, (), payload, "publish event")
            .await?
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TaskEvent> {
        self.local.subscribe()
    }
}
