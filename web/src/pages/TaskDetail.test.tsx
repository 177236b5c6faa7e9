import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { TaskEvent } from "../api/client";
import { afterDecision, Diff, runView, timeline } from "./TaskDetail";

let next = 1;
function ev(kind: TaskEvent["kind"], data: unknown): TaskEvent {
  const id = next++;
  return { id, kind, data, task_id: "t", tenant_id: "x", at: new Date(2026, 0, 1, 0, 0, id).toISOString() };
}

describe("runView", () => {
  it("lists nodes in order, marks finished ones, and joins streamed tokens", () => {
    const events = [
      ev("started", {}),
      ev("progress", { mode: "custom", data: { step: "retrieve" } }),
      ev("progress", { mode: "updates", data: { retrieve: {} } }),
      ev("progress", { mode: "messages", data: { node: "write", content: "Hel" } }),
      ev("progress", { mode: "messages", data: { node: "write", content: "lo" } }),
    ];
    const { nodes, tokens } = runView(events);
    expect(nodes).toEqual([
      { name: "retrieve", state: "done" },
      { name: "write", state: "running" },
    ]);
    expect(tokens).toBe("Hello");
  });

  it("adds each node's reported time, over its runs", () => {
    const events = [
      ev("progress", { mode: "custom", data: { timing: "lookup", ms: 2 } }),
      ev("progress", { mode: "updates", data: { lookup: {} } }),
      ev("progress", { mode: "custom", data: { step: "write" } }),
      ev("progress", { mode: "custom", data: { timing: "write", ms: 3 } }),
      ev("progress", { mode: "updates", data: { write: {} } }),
      ev("progress", { mode: "custom", data: { timing: "write", ms: 4.5 } }),
      ev("progress", { mode: "custom", data: { timing: "publish", ms: 1500 } }),
    ];
    expect(runView(events).nodes).toEqual([
      { name: "lookup", state: "done", ms: 2 },
      { name: "write", state: "done", ms: 7.5 },
      { name: "publish", state: "running", ms: 1500 },
    ]);
  });

  it("marks the nodes an interrupted run waits in", () => {
    const events = [ev("progress", { mode: "updates", data: { write: {} } }), ev("progress", { mode: "custom", data: { step: "approve" } })];
    expect(runView(events, ["approve", "review"]).nodes).toEqual([
      { name: "write", state: "done" },
      { name: "approve", state: "waiting" },
      { name: "review", state: "waiting" },
    ]);
  });
});

describe("timeline", () => {
  it("folds a run of token events into one line with a count", () => {
    const events = [
      ev("queued", {}),
      ev("progress", { mode: "messages", data: { node: "write", content: "a" } }),
      ev("progress", { mode: "messages", data: { node: "write", content: "b" } }),
      ev("progress", { mode: "messages", data: { node: "write", content: "c" } }),
      ev("succeeded", {}),
    ];
    expect(timeline(events).map((l) => [l.first.kind, l.label, l.count])).toEqual([
      ["queued", "", 1],
      ["progress", "tokens", 3],
      ["succeeded", "", 1],
    ]);
  });
});

describe("Diff", () => {
  it("marks added and removed lines", () => {
    render(<Diff text={"--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same"} />);
    expect(screen.getByText("-old").className).toContain("text-red-300");
    expect(screen.getByText("+new").className).toContain("text-green-300");
    expect(screen.getByText("+++ b").className).not.toContain("text-green-300");
  });
});

describe("afterDecision", () => {
  const stored = { run_status: "interrupted", thread_id: "t", status: "ready", diff: "old", waiting_on: ["review"] };
  it("keeps the stored result while the thread waits", () => {
    expect(afterDecision(stored, undefined)).toBe(stored);
    expect(afterDecision(stored, { status: "interrupted", values: { status: "approved" } })).toBe(stored);
  });
  it("shows the thread's values once the approval is decided", () => {
    const now = afterDecision(stored, { status: "idle", values: { status: "approved", diff: "new", other: 1 } });
    expect(now).toMatchObject({ run_status: "success", decided: true, status: "approved", diff: "new", thread_id: "t" });
    expect(now).not.toHaveProperty("other");
  });
});
