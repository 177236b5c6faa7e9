// Server-Sent Events over fetch (EventSource cannot send the Authorization header): parses
// `id:`/`event:`/`data:` frames, resumes with `Last-Event-ID` after a dropped connection or
// a server restart, refreshes an expired token, and backs off between attempts.
import type { TaskEvent } from "./client";
import { refresh, session } from "./session";

export interface StreamOptions {
  /** Called once per event, in order, never twice for one id. */
  onEvent: (event: TaskEvent) => void;
  /** Connection state for the page ("live" or "reconnecting"). */
  onState?: (state: "live" | "reconnecting") => void;
  /** Resume after this event id. */
  after?: number;
}

/** Follows `path` until `signal` aborts. */
export async function follow(path: string, signal: AbortSignal, opts: StreamOptions): Promise<void> {
  let last = opts.after;
  let delay = 250;
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      const token = session()?.access_token;
      if (token) headers.authorization = `Bearer ${token}`;
      if (last !== undefined) headers["last-event-id"] = String(last);
      const res = await fetch(path, { headers, signal, cache: "no-store" });
      if (res.status === 401 && (await refresh())) continue;
      if (!res.ok || !res.body) throw new Error(`${res.status}`);
      opts.onState?.("live");
      delay = 250;
      for await (const frame of frames(res.body, signal)) {
        if (frame.id === undefined) continue;
        const id = Number(frame.id);
        if (last !== undefined && id <= last) continue;
        last = id;
        // An id alone is the stream's position (where to resume), not an event.
        if (frame.data !== undefined) opts.onEvent(JSON.parse(frame.data) as TaskEvent);
      }
    } catch (e) {
      if (signal.aborted) return;
      void e;
    }
    if (signal.aborted) return;
    opts.onState?.("reconnecting");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 5000);
  }
}

interface Frame {
  id?: string;
  event?: string;
  data?: string;
}

async function* frames(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Frame> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const onAbort = () => void reader.cancel();
  signal.addEventListener("abort", onAbort);
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        yield parse(block);
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** One frame of the text/event-stream format; comment lines (`:`) are skipped. */
export function parse(block: string): Frame {
  const frame: Frame = {};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
  }
  return frame;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
