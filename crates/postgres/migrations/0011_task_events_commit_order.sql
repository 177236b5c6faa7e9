-- A tenant's task event ids become visible in id order. Ids come from one sequence, and a
-- transaction that took an id could otherwise commit after one that took a later id: a
-- reader following "the events after the last id I saw" (an SSE stream, a resume with
-- Last-Event-ID) would skip the late one for good. Every insert, from any client, first
-- takes a per-tenant lock held until its transaction ends, then its id: ids are taken in
-- commit order. Inserting events is the last statement of every transaction that writes
-- one, so the lock is held for the commit alone and waits on nothing else. The column's
-- default has already taken a value by the time a BEFORE trigger runs, so each event uses
-- two sequence values (ids skip; the sequence is bigint): dropping the default would break
-- an older binary during a rollout, and ids only need to grow.
CREATE FUNCTION task_events_commit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('task_events:' || NEW.tenant_id::text, 0));
    NEW.id := nextval('task_events_id_seq');
    RETURN NEW;
END
$$;

CREATE TRIGGER task_events_commit_order BEFORE INSERT ON task_events
    FOR EACH ROW EXECUTE FUNCTION task_events_commit_order();
