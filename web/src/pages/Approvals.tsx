// Approvals: what the agents hold for a person's decision — the draft document or the
// diff — since when and requested by whom; approve or reject with a comment.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useSearchParams } from "react-router";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, Status, When, input } from "../components/ui";
import { LiveBadge, useTenantFeed } from "../live";
import { Change } from "./TaskDetail";

type Approval = components["schemas"]["Approval"];
const FILTERS = ["pending", "approved", "rejected", "expired"] as const;

export function Approvals() {
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") ?? "pending") as (typeof FILTERS)[number];
  const { state } = useTenantFeed();
  const list = useQuery({
    queryKey: ["approvals", status],
    queryFn: () => must(api.GET("/api/v1/approvals", { params: { query: { status } } })),
    // Opened, the inbox asks the server even when a list cached seconds ago (still "fresh"
    // for other pages) says nothing waits: a link from a task waiting for approval must
    // land on that approval. The live feed refetches on task events; a refresh it missed
    // (the feed reconnecting) heals within 10 s.
    refetchOnMount: "always",
    refetchInterval: 10_000,
  });
  return (
    <Page title="Approvals" actions={<LiveBadge state={state} />}>
      <div role="group" aria-label="Status" className="mb-4 flex flex-wrap gap-2">
        {FILTERS.map((f) => (
          <Button key={f} tone={f === status ? "primary" : "secondary"} aria-pressed={f === status} onClick={() => setParams({ status: f })}>
            {f}
          </Button>
        ))}
      </div>
      <ErrorLine error={list.error} />
      {list.data?.length === 0 && <p className="text-sm text-slate-600">Nothing {status}.</p>}
      <ul className="space-y-4">
        {list.data?.map((a) => (
          <li key={a.id}>
            <ApprovalCard approval={a} />
          </li>
        ))}
      </ul>
    </Page>
  );
}

function ApprovalCard({ approval: a }: { approval: Approval }) {
  const role = useRole();
  const qc = useQueryClient();
  const [comment, setComment] = useState("");
  const decide = useMutation({
    mutationFn: (approve: boolean) =>
      must(
        approve
          ? api.POST("/api/v1/approvals/{id}/approve", { params: { path: { id: a.id } }, body: { comment: comment || null } })
          : api.POST("/api/v1/approvals/{id}/reject", { params: { path: { id: a.id } }, body: { comment: comment || null } }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["approvals"] }),
  });
  const value = (a.value ?? {}) as Record<string, unknown>;
  const draft = typeof value.markdown === "string" ? value.markdown : typeof value.draft === "string" ? value.draft : null;
  return (
    <Card>
      <div className="mb-2 flex flex-wrap items-center gap-2 text-sm">
        <Status value={a.status} />
        <span className="font-medium">{a.graph_id}</span>
        <span className="text-slate-600">
          waiting since <When at={a.created_at} />
        </span>
        {a.expires_at && (
          <span className="text-slate-600">
            · expires <When at={a.expires_at} />
          </span>
        )}
      </div>
      {typeof value.title === "string" && <h2 className="mb-1 font-medium">{value.title}</h2>}
      {typeof value.question === "string" && (
        <p className="mb-2 text-sm text-slate-700">
          {value.question}
          {typeof value.min_role === "string" && ` · decided by a ${value.min_role} or above`}
        </p>
      )}
      <Change value={value} />
      {draft && <pre tabIndex={0} className="mb-2 max-h-80 overflow-auto whitespace-pre-wrap rounded bg-slate-100 p-2 text-xs">{draft}</pre>}
      {!draft && typeof value.diff !== "string" && (
        <pre tabIndex={0} className="mb-2 max-h-80 overflow-auto rounded bg-slate-100 p-2 text-xs">{JSON.stringify(value, null, 2)}</pre>
      )}
      {a.comment && <p className="mb-2 text-sm text-slate-700">Comment: {a.comment}</p>}
      {a.status === "pending" && atLeast(role, "member") && (
        <div className="flex flex-wrap items-end gap-2">
          <div className="min-w-48 flex-1">
            <Field label="Comment">
              <input className={input} value={comment} maxLength={2000} onChange={(e) => setComment(e.target.value)} />
            </Field>
          </div>
          <Button onClick={() => decide.mutate(true)} disabled={decide.isPending}>
            Approve
          </Button>
          <Button tone="danger" onClick={() => decide.mutate(false)} disabled={decide.isPending}>
            Reject
          </Button>
        </div>
      )}
      <ErrorLine error={decide.error} />
    </Card>
  );
}
