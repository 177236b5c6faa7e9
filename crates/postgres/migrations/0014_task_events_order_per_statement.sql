-- Migration 11's commit order, taken once per statement instead of once per row: a
-- BEFORE STATEMENT trigger takes the tenant's lock, and the id column's default (its
-- nextval) is evaluated for each row after it, so ids are still taken in commit order. A
-- statement that inserts many events (a batch of new tasks' `queued` events) runs PL/pgSQL
-- once rather than per row, and each event now uses one sequence value, not two.
--
-- A statement trigger does not see its rows, so the tenant comes from the transaction:
-- under the tenant role, row-level security holds every row to `app.tenant_id`, and the
-- statement takes that tenant's lock plus a shared hold on a lock of all tenants; any other
-- insert (the platform path, which may write any tenant's events) takes the lock of all
-- tenants exclusively, so it is ordered against every tenant's inserts.
CREATE FUNCTION task_events_commit_order_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text := NULLIF(current_setting('app.tenant_id', true), '');
BEGIN
    IF current_user = 'morningai_tenant' AND tenant IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock_shared(hashtextextended('task_events', 0));
        PERFORM pg_advisory_xact_lock(hashtextextended('task_events:' || tenant, 0));
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('task_events', 0));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_events_commit_order_statement BEFORE INSERT ON task_events
    FOR EACH STATEMENT EXECUTE FUNCTION task_events_commit_order_statement();
-- The row trigger goes; its function stays (unused) because removing a function is not
-- additive by the rollout rule (README, Upgrades), and nothing is gained by it.
DROP TRIGGER task_events_commit_order ON task_events;
