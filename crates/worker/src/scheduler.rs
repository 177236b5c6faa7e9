//! Per-tenant cron schedules. Every process may run the scheduler: a fire happens only in
//! the process that wins the compare-and-set on `next_run_at`, and the task it creates
//! carries the idempotency key `schedule:<id>:<fire time>`, so a fire creates exactly one
//! task however many processes run.

use crate::service::TaskService;
use chrono::{DateTime, Utc};
use croner::Cron;
use morningai_core::entities::NewTask;
use morningai_core::schedules::Schedule;
use morningai_core::{TaskId, TenantCtx};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Parses a standard 5-field cron expression and an IANA time zone.
pub fn parse(cron: &str, timezone: &str) -> Result<(Cron, chrono_tz::Tz), (&'static str, String)> {
    let fields = cron.split_whitespace().count();
    if fields != 5 {
        return Err((
            "cron",
            format!("expected 5 fields (minute hour day-of-month month day-of-week), got {fields}"),
        ));
    }
    let c = Cron::from_str(cron).map_err(|e| ("cron", format!("invalid cron expression: {e}")))?;
    let tz = chrono_tz::Tz::from_str(timezone)
        .map_err(|_| ("timezone", format!("unknown time zone {timezone:?}")))?;
    Ok((c, tz))
}

/// The first fire time strictly after `after`.
pub fn next_after(
    cron: &str,
    timezone: &str,
    after: DateTime<Utc>,
) -> Result<DateTime<Utc>, (&'static str, String)> {
    let (c, tz) = parse(cron, timezone)?;
    c.find_next_occurrence(&after.with_timezone(&tz), false)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ("cron", format!("the expression never fires: {e}")))
}

/// Fires every due schedule once; returns how many tasks this process created.
pub async fn tick(service: &TaskService, now: DateTime<Utc>) -> morningai_core::Result<usize> {
    let mut fired = 0;
    for s in service.store.due_schedules(now, 100).await? {
        let Ok(next) = next_after(&s.cron, &s.timezone, now) else {
            tracing::warn!(schedule = %s.id, "schedule no longer parses; skipping");
            continue;
        };
        if !service
            .store
            .advance_schedule(s.id, s.next_run_at, next)
            .await?
        {
            continue; // another process fired it
        }
        if fire(service, &s).await? {
            fired += 1;
        }
    }
    Ok(fired)
}

async fn fire(service: &TaskService, s: &Schedule) -> morningai_core::Result<bool> {
    let task = NewTask {
        id: TaskId::new(),
        kind: s.kind.clone(),
        priority: s.priority,
        project_id: None,
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
        input: s.input.clone(),
        idempotency_key: Some(format!("schedule:{}:{}", s.id, s.next_run_at.timestamp())),
        created_by: s.created_by,
    };
    let created = service.submit(TenantCtx::new(s.tenant_id), task).await?;
    Ok(matches!(
        created,
        morningai_core::entities::TaskCreated::New(..)
    ))
}

pub async fn run_scheduler(service: Arc<TaskService>, every: Duration, stop: CancellationToken) {
    loop {
        if let Err(e) = tick(&service, Utc::now()).await {
            tracing::warn!(error = %e, "scheduler pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {},
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_parsing_and_time_zones() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            next_after("*/15 * * * *", "UTC", t).unwrap().to_rfc3339(),
            "2026-03-01T10:45:00+00:00"
        );
        // 09:00 in Paris is 08:00 UTC in winter.
        assert_eq!(
            next_after("0 9 * * *", "Europe/Paris", t)
                .unwrap()
                .to_rfc3339(),
            "2026-03-02T08:00:00+00:00"
        );
        for (cron, tz, field) in [
            ("* * * *", "UTC", "cron"),
            ("0 0 * * * *", "UTC", "cron"),
            ("61 * * * *", "UTC", "cron"),
            ("a b c d e", "UTC", "cron"),
            ("0 9 * * *", "Mars/Olympus", "timezone"),
        ] {
            assert_eq!(
                parse(cron, tz).err().map(|e| e.0),
                Some(field),
                "{cron} {tz}"
            );
        }
    }
}
