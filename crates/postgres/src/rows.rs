//! Row mapping between PostgreSQL rows and domain types. Columns are read by position, in
//! the order of the `*_COLS` lists.

use morningai_core::entities::*;
use morningai_core::{Error, Priority, Role};
use std::str::FromStr;
use tokio_postgres::Row;

fn parse<T: FromStr>(row: &Row, idx: usize) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    let s: &str = row.get(idx);
    T::from_str(s).map_err(|e| Error::internal("bad stored value", e))
}

pub(crate) const USER_COLS: &str = "id, email, name, is_platform_admin, created_at";

pub(crate) fn user(r: &Row) -> Result<User, Error> {
    Ok(User {
        id: r.get::<_, uuid::Uuid>(0).into(),
        email: parse(r, 1)?,
        name: r.get(2),
        is_platform_admin: r.get(3),
        created_at: r.get(4),
    })
}

pub(crate) const TENANT_COLS: &str = "id, slug, name, created_at";

pub(crate) fn tenant_at(r: &Row, o: usize) -> Result<Tenant, Error> {
    Ok(Tenant {
        id: r.get::<_, uuid::Uuid>(o).into(),
        slug: parse(r, o + 1)?,
        name: r.get(o + 2),
        created_at: r.get(o + 3),
    })
}

pub(crate) fn tenant(r: &Row) -> Result<Tenant, Error> {
    tenant_at(r, 0)
}

pub(crate) const MEMBER_SELECT: &str = "SELECT u.id, u.email, u.name, m.role, m.created_at
    FROM memberships m JOIN users u ON u.id = m.user_id";

pub(crate) fn member(r: &Row) -> Result<Member, Error> {
    Ok(Member {
        user_id: r.get::<_, uuid::Uuid>(0).into(),
        email: parse(r, 1)?,
        name: r.get(2),
        role: parse::<Role>(r, 3)?,
        joined_at: r.get(4),
    })
}

pub(crate) fn role(r: &Row, idx: usize) -> Result<Role, Error> {
    parse(r, idx)
}

pub(crate) const API_KEY_COLS: &str = "id, name, prefix, role, created_by, created_at, revoked_at";

pub(crate) fn api_key(r: &Row) -> Result<ApiKey, Error> {
    Ok(ApiKey {
        id: r.get::<_, uuid::Uuid>(0).into(),
        name: r.get(1),
        prefix: r.get(2),
        role: parse(r, 3)?,
        created_by: r.get::<_, uuid::Uuid>(4).into(),
        created_at: r.get(5),
        revoked_at: r.get(6),
    })
}

pub(crate) const PROJECT_COLS: &str = "id, name, description, created_by, created_at, updated_at";

pub(crate) fn project(r: &Row) -> Result<Project, Error> {
    Ok(Project {
        id: r.get::<_, uuid::Uuid>(0).into(),
        name: r.get(1),
        description: r.get(2),
        created_by: r.get::<_, Option<uuid::Uuid>>(3).map(Into::into),
        created_at: r.get(4),
        updated_at: r.get(5),
    })
}

pub(crate) const TASK_COLS: &str =
    "id, kind, status, priority, project_id, trace_id, input, result, error,
    idempotency_key, created_by, created_at, updated_at";

pub(crate) fn task(r: &Row) -> Result<Task, Error> {
    Ok(Task {
        id: r.get::<_, uuid::Uuid>(0).into(),
        kind: r.get(1),
        status: parse(r, 2)?,
        priority: Priority::new(i64::from(r.get::<_, i16>(3)))
            .map_err(|e| Error::internal("bad stored priority", e))?,
        project_id: r.get::<_, Option<uuid::Uuid>>(4).map(Into::into),
        trace_id: r.get(5),
        input: r.get(6),
        result: r.get(7),
        error: r.get(8),
        idempotency_key: r.get(9),
        created_by: r.get::<_, Option<uuid::Uuid>>(10).map(Into::into),
        created_at: r.get(11),
        updated_at: r.get(12),
    })
}

pub(crate) fn all<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T, Error>) -> Result<Vec<T>, Error> {
    rows.iter().map(f).collect()
}

pub(crate) const EVENT_COLS: &str = "id, tenant_id, task_id, kind, data, at";

pub(crate) fn event(r: &Row) -> Result<morningai_core::events::TaskEvent, Error> {
    Ok(morningai_core::events::TaskEvent {
        id: r.get(0),
        tenant_id: r.get::<_, uuid::Uuid>(1).into(),
        task_id: r.get::<_, uuid::Uuid>(2).into(),
        kind: parse(r, 3)?,
        data: r.get(4),
        at: r.get(5),
    })
}

pub(crate) const SCHEDULE_COLS: &str = "id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at";

pub(crate) fn schedule(r: &Row) -> Result<morningai_core::schedules::Schedule, Error> {
    Ok(morningai_core::schedules::Schedule {
        id: r.get(0),
        tenant_id: r.get::<_, uuid::Uuid>(1).into(),
        name: r.get(2),
        cron: r.get(3),
        timezone: r.get(4),
        kind: r.get(5),
        input: r.get(6),
        priority: Priority::new(i64::from(r.get::<_, i16>(7)))
            .map_err(|e| Error::internal("bad stored priority", e))?,
        next_run_at: r.get(8),
        created_by: r.get::<_, Option<uuid::Uuid>>(9).map(Into::into),
        created_at: r.get(10),
    })
}
