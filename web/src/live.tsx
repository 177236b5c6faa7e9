// Live data: a hook that follows an event stream while the component is mounted, and keeps
// the server-state cache fresh as tasks change.
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import type { TaskEvent } from "./api/client";
import { follow } from "./api/events";

export type LiveState = "connecting" | "live" | "reconnecting";

/** Follows `path` (null: nothing) and calls `onEvent` for each new event. */
export function useEvents(path: string | null, onEvent: (e: TaskEvent) => void, after?: number): LiveState {
  const [state, setState] = useState<LiveState>("connecting");
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (!path) return;
    const ctl = new AbortController();
    setState("connecting");
    void follow(path, ctl.signal, {
      after,
      onEvent: (e) => handler.current(e),
      onState: setState,
    });
    return () => ctl.abort();
  }, [path, after]);
  return state;
}

/** The tenant's event stream, invalidating the cached lists an event changes. Returns the
 *  latest events (newest first, at most `keep`). */
export function useTenantFeed(keep = 20): { events: TaskEvent[]; state: LiveState } {
  const qc = useQueryClient();
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const pending = useRef<Set<string> | null>(null);
  const state = useEvents("/api/v1/events", (e) => {
    setEvents((prev) => [e, ...prev].slice(0, keep));
    if (e.kind === "progress") return;
    // A burst of events refetches the lists once, a quarter second later, not per event.
    if (pending.current) {
      pending.current.add(e.task_id);
      return;
    }
    pending.current = new Set([e.task_id]);
    setTimeout(() => {
      const tasks = pending.current ?? new Set<string>();
      pending.current = null;
      // An agent's task ending may have published or changed a document.
      for (const key of ["tasks", "approvals", "usage", "queue", "documents", "document"]) void qc.invalidateQueries({ queryKey: [key] });
      for (const id of tasks) void qc.invalidateQueries({ queryKey: ["task", id] });
    }, 250);
  });
  return { events, state };
}

export function LiveBadge({ state }: { state: LiveState }) {
  const text = state === "live" ? "live" : state === "connecting" ? "connecting…" : "reconnecting…";
  const tone = state === "live" ? "bg-green-100 text-green-900" : "bg-amber-100 text-amber-900";
  return (
    <span role="status" className={`rounded-full px-2 py-0.5 text-xs font-medium ${tone}`}>
      {text}
    </span>
  );
}
