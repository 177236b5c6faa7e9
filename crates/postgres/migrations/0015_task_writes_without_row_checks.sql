-- A new task's row and its `queued` event no longer run foreign-key checks on insert.
--
-- Why: each of the three (tasks -> tenants, tasks -> users, task_events -> tenants) is a
-- trigger that runs a query per inserted row, with its own executor start-up and a row
-- lock on the parent (the tenant's row is locked FOR KEY SHARE by every concurrent batch,
-- which makes MultiXacts). Measured on the distributed write path (BENCHMARKS.md, issue
-- 17): 27 % of PostgreSQL's time on `POST /api/v1/tasks`, and 11-15 % more requests per
-- second without them.
--
-- What still holds:
--  * A tenant-scoped insert is pinned to its transaction's tenant by row-level security
--    (WITH CHECK tenant_id = app.tenant_id), and that tenant comes from an authenticated
--    principal: a signed token or an API key looked up in this database. `created_by` is
--    that principal's user. Neither tenants nor users are deleted by any code path.
--  * Deleting a tenant still removes its tasks and their events, and deleting a user still
--    clears `created_by` (what ON DELETE CASCADE / SET NULL did): statement triggers below,
--    one statement per deletion rather than a check per insert.
-- What goes: an insert that names a tenant or user that does not exist is no longer
-- refused by the database (no code path makes one: both come from the principal), and a
-- tenant deleted while one of its batches commits can leave that batch's rows behind.
--
-- The project reference (tenant_id, project_id) stays: it is checked only for a task that
-- names a project, and it is what answers "no such project in this tenant".

ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_tenant_id_fkey;
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_created_by_fkey;
ALTER TABLE task_events DROP CONSTRAINT IF EXISTS task_events_tenant_id_fkey;

CREATE FUNCTION tenants_deleted_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM task_events e USING gone g WHERE e.tenant_id = g.id;
    DELETE FROM tasks t USING gone g WHERE t.tenant_id = g.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_deleted_tasks AFTER DELETE ON tenants
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_deleted_tasks();

CREATE FUNCTION users_deleted_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks t SET created_by = NULL FROM gone g WHERE t.created_by = g.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_deleted_tasks AFTER DELETE ON users
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION users_deleted_tasks();
