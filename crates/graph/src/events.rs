//! The stream of a run's events, with backpressure: nodes and the engine send without
//! waiting (a token delta must not block a model's stream), and the runner waits before each
//! superstep until the consumer has caught up to a bounded backlog. A slow event writer thus
//! slows the run down instead of letting queued events grow without limit.

use crate::node::StreamEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc};

/// How many events may wait for the consumer before a run pauses at its next step. Small:
/// a `values` event holds the whole state, so the queue's memory is this many states.
pub const MAX_BACKLOG: usize = 16;

struct Backlog {
    queued: AtomicUsize,
    /// Every event sent so far (a run's limit counts these).
    sent: AtomicU64,
    drained: Notify,
}

/// The sending side, held by the runner and the node contexts.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<StreamEvent>,
    backlog: Arc<Backlog>,
}

/// The consuming side.
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<StreamEvent>,
    backlog: Arc<Backlog>,
}

/// A run's event stream.
pub fn channel() -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog {
        queued: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        drained: Notify::new(),
    });
    (
        EventSender {
            tx,
            backlog: backlog.clone(),
        },
        EventReceiver { rx, backlog },
    )
}

impl EventSender {
    pub(crate) fn send(&self, e: StreamEvent) {
        // Counted before it can be received, so the consumer never finds it uncounted.
        self.backlog.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(e).is_err() {
            self.backlog.queued.fetch_sub(1, Ordering::AcqRel);
        }
        self.backlog.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// How many events were sent on this stream.
    pub(crate) fn sent(&self) -> u64 {
        self.backlog.sent.load(Ordering::Relaxed)
    }

    /// Waits until at most `max` events are queued (at once when the consumer is gone).
    pub(crate) async fn room(&self, max: usize) {
        loop {
            let drained = self.backlog.drained.notified();
            if self.backlog.queued.load(Ordering::Acquire) <= max || self.tx.is_closed() {
                return;
            }
            drained.await;
        }
    }
}

impl EventReceiver {
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        let e = self.rx.recv().await?;
        self.backlog.queued.fetch_sub(1, Ordering::AcqRel);
        self.backlog.drained.notify_waiters();
        Some(e)
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        self.rx.close();
        self.backlog.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn event(i: usize) -> StreamEvent {
        StreamEvent {
            mode: "custom",
            ns: Vec::new(),
            data: json!(i),
        }
    }

    #[tokio::test]
    async fn a_sender_waits_for_the_consumer_to_catch_up() {
        let (tx, mut rx) = channel();
        for i in 0..10 {
            tx.send(event(i));
        }
        // Over the bound: room() waits until the consumer has read enough.
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.room(4).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "room() returned over the bound");
        for _ in 0..6 {
            rx.recv().await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("room() after the consumer caught up")
            .unwrap();
        // A consumer that goes away releases the sender.
        for i in 0..10 {
            tx.send(event(i));
        }
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), tx.room(0))
            .await
            .expect("room() once the consumer is gone");
    }
}
