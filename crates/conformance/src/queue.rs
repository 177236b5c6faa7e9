//! The conformance suite of the `JobQueue` port. Each backend's tests call
//! [`queue_conformance!`] with an async expression yielding a fresh, empty
//! `Arc<dyn JobQueue>` whose tenant limit is [`TENANT_LIMIT`] and whose retry backoff
//! starts at [`BACKOFF_BASE`].

use morningai_core::queue::*;
use morningai_core::{Priority, TaskId, TenantId};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub type DynQueue = Arc<dyn JobQueue>;
pub const TENANT_LIMIT: u32 = 2;
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
const LEASE: Duration = Duration::from_secs(30);

/// Generates one `#[tokio::test]` per conformance case for a backend.
#[macro_export]
macro_rules! queue_conformance {
    ($make:expr) => {
        $crate::queue_conformance!($make;
            priority_then_fifo,
            delayed_jobs_wait_for_their_time,
            expired_leases_are_reclaimed_by_anyone,
            heartbeats_extend_leases,
            retries_back_off_then_dead_letter,
            non_retryable_failures_dead_letter_at_once,
            dead_letters_can_be_retried_and_purged,
            cancelling_a_queued_job_means_it_never_runs,
            cancelling_a_running_job_signals_its_worker,
            dedupe_keys_reject_duplicates_while_pending,
            one_tenants_backlog_cannot_starve_another,
            release_gives_the_job_back_untouched,
            enqueue_is_idempotent_per_job_id,
            depth_counts_every_state,
            concurrent_enqueues_each_get_their_answer,
        );
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let queue: $crate::queue::DynQueue = $make.await;
                $crate::queue::$case(queue).await;
            }
        )*
    };
}

fn job(tenant: TenantId, priority: i64) -> NewJob {
    NewJob {
        priority: Priority::new(priority).unwrap(),
        max_attempts: 3,
        ..NewJob::new(TaskId::new(), tenant, "echo", json!({"p": priority}))
    }
}

async fn take(q: &DynQueue, max: usize) -> Vec<Lease> {
    q.dequeue(max, LEASE).await.unwrap()
}

async fn take_one(q: &DynQueue) -> Lease {
    let mut l = take(q, 1).await;
    assert_eq!(l.len(), 1, "expected one ready job");
    l.remove(0)
}

pub async fn priority_then_fifo(q: DynQueue) {
    let t = TenantId::new();
    let jobs: Vec<NewJob> = [5, 9, 5, 0, 9].into_iter().map(|p| job(t, p)).collect();
    for j in &jobs {
        assert_eq!(q.enqueue(j.clone()).await.unwrap(), Enqueued::Queued);
    }
    let mut order = Vec::new();
    for _ in 0..5 {
        let l = take_one(&q).await;
        order.push(l.job.id);
        q.complete(&l).await.unwrap();
    }
    let want: Vec<TaskId> = [1, 4, 0, 2, 3].iter().map(|&i| jobs[i].id).collect();
    assert_eq!(order, want, "priority 9 first, FIFO within a priority");
    let l = jobs[0].clone();
    assert_eq!(l.payload, json!({"p": 5}));
    assert!(take(&q, 10).await.is_empty());
}

/// Polls `take` until it yields a job, for at most 10 s.
async fn take_when_ready(q: &DynQueue) -> Lease {
    let started = std::time::Instant::now();
    loop {
        if let Some(l) = take(q, 1).await.pop() {
            return l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no job became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn delayed_jobs_wait_for_their_time(q: DynQueue) {
    let t = TenantId::new();
    let run_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let later = NewJob {
        run_at: Some(run_at),
        ..job(t, 9)
    };
    q.enqueue(later.clone()).await.unwrap();
    let now_job = job(t, 0);
    q.enqueue(now_job.clone()).await.unwrap();
    let first = take(&q, 10).await;
    // Only meaningful while the delay has not passed (a stalled machine may get there late).
    if chrono::Utc::now() < run_at {
        assert_eq!(
            first.iter().map(|l| l.job.id).collect::<Vec<_>>(),
            vec![now_job.id],
            "the delayed job waits"
        );
        assert_eq!(q.depth(t).await.unwrap().scheduled, 1);
    }
    let l = match first.iter().find(|l| l.job.id == later.id) {
        Some(l) => l.clone(),
        None => take_when_ready(&q).await,
    };
    assert_eq!(l.job.id, later.id);
    assert!(chrono::Utc::now() >= run_at, "not before its time");
}

pub async fn expired_leases_are_reclaimed_by_anyone(q: DynQueue) {
    let t = TenantId::new();
    let j = job(t, 5);
    q.enqueue(j.clone()).await.unwrap();
    let lease = Duration::from_millis(500);
    let leased_at = std::time::Instant::now();
    let first = q.dequeue(1, lease).await.unwrap().remove(0);
    assert_eq!(first.attempt, 1);
    let reclaimed = q.reclaim_expired().await.unwrap();
    if leased_at.elapsed() < lease {
        assert_eq!(reclaimed, 0, "not expired yet");
    }
    // Expired: the next reclaim pass (by anyone) takes it back, exactly once.
    let mut reclaimed = reclaimed;
    while reclaimed == 0 {
        assert!(
            leased_at.elapsed() < Duration::from_secs(10),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        reclaimed = q.reclaim_expired().await.unwrap();
    }
    assert_eq!(reclaimed, 1);
    let second = take_one(&q).await;
    assert_eq!((second.job.id, second.attempt), (j.id, 2));
    assert_ne!(second.token, first.token);
    // The dead worker's late acknowledgement is refused; the new lease stands.
    assert!(!q.complete(&first).await.unwrap());
    assert_eq!(q.heartbeat(&first, LEASE).await.unwrap(), Heartbeat::Lost);
    assert_eq!(q.fail(&first, "late", true).await.unwrap(), Failure::Lost);
    assert!(q.complete(&second).await.unwrap());
    assert!(!q.contains(j.id).await.unwrap());
}

pub async fn heartbeats_extend_leases(q: DynQueue) {
    let t = TenantId::new();
    q.enqueue(job(t, 5)).await.unwrap();
    // Four beats half a lease apart outlive the first lease; the margin (a stall of over
    // 750 ms between two beats) keeps this true on a busy machine.
    let lease = Duration::from_millis(1500);
    let l = q.dequeue(1, lease).await.unwrap().remove(0);
    for _ in 0..4 {
        tokio::time::sleep(lease / 2).await;
        assert_eq!(q.heartbeat(&l, lease).await.unwrap(), Heartbeat::Extended);
    }
    assert_eq!(
        q.reclaim_expired().await.unwrap(),
        0,
        "heartbeats kept the lease alive"
    );
    assert!(q.complete(&l).await.unwrap());
}

pub async fn retries_back_off_then_dead_letter(q: DynQueue) {
    let t = TenantId::new();
    let j = job(t, 5);
    q.enqueue(j.clone()).await.unwrap();
    let mut delays = Vec::new();
    for attempt in 1..=3u32 {
        let mut l = take(&q, 1).await;
        let started = std::time::Instant::now();
        while l.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "retry never became ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            l = take(&q, 1).await;
        }
        let l = l.remove(0);
        assert_eq!(l.attempt, attempt);
        let before = chrono::Utc::now();
        match q.fail(&l, &format!("boom {attempt}"), true).await.unwrap() {
            Failure::Retrying { at } if attempt < 3 => {
                delays.push((at - before).num_milliseconds());
                let early = take(&q, 1).await;
                // Only meaningful before `at` (a stalled machine may get here later).
                if chrono::Utc::now() < at {
                    assert!(early.is_empty(), "a retry waits for its backoff");
                } else if let Some(l) = early.into_iter().next() {
                    q.release(&l).await.unwrap();
                }
            }
            Failure::Dead if attempt == 3 => {}
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    // Exponential with ±25 % jitter: ~100 ms, then ~200 ms.
    assert!((60..=160).contains(&delays[0]), "{delays:?}");
    assert!((140..=290).contains(&delays[1]), "{delays:?}");
    let dead = q.dead_jobs(t, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id, dead[0].attempts, dead[0].last_error.as_str()),
        (j.id, 3, "boom 3")
    );
    assert_eq!(dead[0].payload, j.payload);
    assert_eq!(q.depth(t).await.unwrap().dead, 1);
    assert!(q.contains(j.id).await.unwrap(), "dead jobs are kept");
}

pub async fn non_retryable_failures_dead_letter_at_once(q: DynQueue) {
    let t = TenantId::new();
    q.enqueue(job(t, 5)).await.unwrap();
    let l = take_one(&q).await;
    assert_eq!(q.fail(&l, "bad input", false).await.unwrap(), Failure::Dead);
    assert_eq!(q.dead_jobs(t, 10).await.unwrap()[0].attempts, 1);
}

pub async fn dead_letters_can_be_retried_and_purged(q: DynQueue) {
    let t = TenantId::new();
    let other = TenantId::new();
    let (a, b) = (job(t, 5), job(t, 5));
    for j in [&a, &b] {
        q.enqueue(j.clone()).await.unwrap();
        let l = take_one(&q).await;
        q.fail(&l, "fatal", false).await.unwrap();
    }
    assert!(
        !q.retry_dead(other, a.id).await.unwrap(),
        "another tenant cannot touch it"
    );
    assert_eq!(q.purge_dead(other, None).await.unwrap(), 0);
    assert!(q.retry_dead(t, a.id).await.unwrap());
    let l = take_one(&q).await;
    assert_eq!((l.job.id, l.attempt), (a.id, 1), "fresh attempts");
    assert!(q.complete(&l).await.unwrap());
    assert_eq!(q.purge_dead(t, Some(b.id)).await.unwrap(), 1);
    assert!(q.dead_jobs(t, 10).await.unwrap().is_empty());
    assert!(!q.contains(b.id).await.unwrap());
}

pub async fn cancelling_a_queued_job_means_it_never_runs(q: DynQueue) {
    let t = TenantId::new();
    let (j, delayed) = (
        job(t, 5),
        NewJob {
            run_at: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
            ..job(t, 5)
        },
    );
    q.enqueue(j.clone()).await.unwrap();
    q.enqueue(delayed.clone()).await.unwrap();
    assert_eq!(
        q.cancel(TenantId::new(), j.id).await.unwrap(),
        Cancelled::NotFound,
        "other tenant"
    );
    assert_eq!(q.cancel(t, j.id).await.unwrap(), Cancelled::Removed);
    assert_eq!(q.cancel(t, delayed.id).await.unwrap(), Cancelled::Removed);
    assert!(take(&q, 10).await.is_empty());
    assert_eq!(q.cancel(t, j.id).await.unwrap(), Cancelled::NotFound);
    let d = q.depth(t).await.unwrap();
    assert_eq!(
        (d.scheduled, d.ready_by_priority.iter().sum::<u64>()),
        (0, 0)
    );
}

pub async fn cancelling_a_running_job_signals_its_worker(q: DynQueue) {
    let t = TenantId::new();
    let j = job(t, 5);
    q.enqueue(j.clone()).await.unwrap();
    let l = take_one(&q).await;
    assert_eq!(q.heartbeat(&l, LEASE).await.unwrap(), Heartbeat::Extended);
    assert_eq!(q.cancel(t, j.id).await.unwrap(), Cancelled::Signalled);
    assert_eq!(q.heartbeat(&l, LEASE).await.unwrap(), Heartbeat::Cancelled);
    assert!(q.complete(&l).await.unwrap());
}

pub async fn dedupe_keys_reject_duplicates_while_pending(q: DynQueue) {
    let t = TenantId::new();
    let keyed = |id| NewJob {
        dedupe_key: Some("nightly".into()),
        ..NewJob { id, ..job(t, 5) }
    };
    let first = keyed(TaskId::new());
    assert_eq!(q.enqueue(first.clone()).await.unwrap(), Enqueued::Queued);
    assert_eq!(
        q.enqueue(keyed(TaskId::new())).await.unwrap(),
        Enqueued::Duplicate(first.id)
    );
    let other_tenant = NewJob {
        dedupe_key: Some("nightly".into()),
        ..job(TenantId::new(), 5)
    };
    assert_eq!(
        q.enqueue(other_tenant).await.unwrap(),
        Enqueued::Queued,
        "keys are per tenant"
    );
    let l = take(&q, 10)
        .await
        .into_iter()
        .find(|l| l.job.id == first.id)
        .unwrap();
    assert_eq!(
        q.enqueue(keyed(TaskId::new())).await.unwrap(),
        Enqueued::Duplicate(first.id),
        "still held while running"
    );
    assert!(q.complete(&l).await.unwrap());
    assert_eq!(
        q.enqueue(keyed(TaskId::new())).await.unwrap(),
        Enqueued::Queued,
        "released when done"
    );
}

pub async fn one_tenants_backlog_cannot_starve_another(q: DynQueue) {
    let (big, small) = (TenantId::new(), TenantId::new());
    for _ in 0..50 {
        q.enqueue(job(big, 9)).await.unwrap();
    }
    let lone = job(small, 0);
    q.enqueue(lone.clone()).await.unwrap();
    let got = take(&q, 10).await;
    let by = |t| got.iter().filter(|l| l.job.tenant_id == t).count();
    assert_eq!(
        by(big),
        TENANT_LIMIT as usize,
        "the big tenant is held to its limit"
    );
    assert_eq!(
        by(small),
        1,
        "the small tenant's lowest-priority job still runs"
    );
    assert!(
        take(&q, 10).await.is_empty(),
        "both tenants at their limit or empty"
    );
    let done = got.iter().find(|l| l.job.tenant_id == big).unwrap();
    q.complete(done).await.unwrap();
    let next = take(&q, 10).await;
    assert_eq!(next.len(), 1, "a finished job frees one slot");
    assert_eq!(q.depth(big).await.unwrap().running, TENANT_LIMIT as u64);
}

pub async fn release_gives_the_job_back_untouched(q: DynQueue) {
    let t = TenantId::new();
    q.enqueue(job(t, 5)).await.unwrap();
    let l = take_one(&q).await;
    q.release(&l).await.unwrap();
    let again = take_one(&q).await;
    assert_eq!((again.job.id, again.attempt), (l.job.id, 1));
}

pub async fn enqueue_is_idempotent_per_job_id(q: DynQueue) {
    let t = TenantId::new();
    let j = job(t, 5);
    q.enqueue(j.clone()).await.unwrap();
    q.enqueue(j.clone()).await.unwrap();
    assert_eq!(take(&q, 10).await.len(), 1);
    assert!(q.contains(j.id).await.unwrap());
    q.enqueue(j.clone()).await.unwrap();
    assert!(
        take(&q, 10).await.is_empty(),
        "a running job is not enqueued twice"
    );
}

pub async fn depth_counts_every_state(q: DynQueue) {
    let t = TenantId::new();
    for p in [1, 1, 7] {
        q.enqueue(job(t, p)).await.unwrap();
    }
    q.enqueue(NewJob {
        run_at: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
        ..job(t, 3)
    })
    .await
    .unwrap();
    let d = q.depth(t).await.unwrap();
    assert_eq!(d.ready_by_priority.len(), 10);
    assert_eq!(
        (
            d.ready_by_priority[1],
            d.ready_by_priority[7],
            d.scheduled,
            d.running
        ),
        (2, 1, 1, 0)
    );
    let l = take_one(&q).await;
    assert_eq!(l.job.priority.get(), 7);
    let d = q.depth(t).await.unwrap();
    assert_eq!((d.ready_by_priority[7], d.running), (0, 1));
    assert_eq!(
        q.depth(TenantId::new()).await.unwrap(),
        QueueDepth {
            ready_by_priority: vec![0; 10],
            ..Default::default()
        }
    );
}

/// Many enqueues at once (which a backend may send together): every job is queued exactly
/// once, whatever else is in flight beside it; of the jobs racing for one dedupe key one
/// is queued and the others are told its id; the same job sent twice at once runs once;
/// a delayed job stays scheduled; and the ready ones come out by priority, then in order.
pub async fn concurrent_enqueues_each_get_their_answer(q: DynQueue) {
    let (a, b) = (TenantId::new(), TenantId::new());
    let mut asks = Vec::new();
    for i in 0..40 {
        asks.push(job(if i % 2 == 0 { a } else { b }, i % 3));
    }
    let keyed: Vec<NewJob> = (0..6)
        .map(|_| NewJob {
            dedupe_key: Some("race".into()),
            ..job(a, 4)
        })
        .collect();
    asks.extend(keyed.iter().cloned());
    asks.push(asks[0].clone()); // the same job twice
    let later = NewJob {
        run_at: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
        ..job(b, 9)
    };
    asks.push(later.clone());
    let answers: Vec<_> = asks
        .iter()
        .map(|j| {
            let (q, j) = (q.clone(), j.clone());
            tokio::spawn(async move { q.enqueue(j).await })
        })
        .collect();
    let mut race = Vec::new();
    for (j, answer) in asks.iter().zip(answers) {
        let answer = answer.await.unwrap().unwrap();
        if j.dedupe_key.is_some() {
            race.push((j.id, answer));
        } else {
            assert_eq!(answer, Enqueued::Queued, "{:?}", j.id);
        }
    }
    let winners: Vec<TaskId> = race
        .iter()
        .filter(|(_, e)| *e == Enqueued::Queued)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(winners.len(), 1, "{race:?}");
    for (id, e) in &race {
        if *id != winners[0] {
            assert_eq!(*e, Enqueued::Duplicate(winners[0]));
        }
    }
    let depth = |t| {
        let q = q.clone();
        async move { q.depth(t).await.unwrap() }
    };
    let (da, db) = (depth(a).await, depth(b).await);
    assert_eq!(
        da.ready_by_priority.iter().sum::<u64>(),
        21,
        "20 plain + the race's one"
    );
    assert_eq!(
        (db.ready_by_priority.iter().sum::<u64>(), db.scheduled),
        (20, 1)
    );
    let mut seen = std::collections::HashSet::new();
    let mut by_tenant: std::collections::HashMap<TenantId, Vec<u8>> = Default::default();
    loop {
        let leased = take(&q, 8).await;
        if leased.is_empty() {
            break;
        }
        for l in leased {
            assert!(seen.insert(l.job.id), "{:?} leased twice", l.job.id);
            by_tenant
                .entry(l.job.tenant_id)
                .or_default()
                .push(l.job.priority.get());
            assert!(q.complete(&l).await.unwrap());
        }
    }
    assert_eq!(seen.len(), 41);
    assert!(
        !seen.contains(&later.id),
        "a delayed job waits for its time"
    );
    for priorities in by_tenant.values() {
        assert!(
            priorities.windows(2).all(|w| w[0] >= w[1]),
            "highest priority first within a tenant: {priorities:?}"
        );
    }
}
