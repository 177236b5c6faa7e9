// The checkpoints of an agent run's thread, read with the official LangGraph SDK against
// our LangGraph-compatible API, and "fork from here": a new run from that checkpoint.
import { Client } from "@langchain/langgraph-sdk/client";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { session } from "../api/session";
import { Button, Card, ErrorLine, When } from "./ui";

function client(): Client {
  return new Client({
    apiUrl: window.location.origin,
    onRequest: (_url, init) => {
      const headers = new Headers(init.headers);
      const token = session()?.access_token;
      if (token) headers.set("authorization", `Bearer ${token}`);
      return { ...init, headers };
    },
  });
}

export default function Checkpoints({ threadId, canFork }: { threadId: string; canFork: boolean }) {
  const navigate = useNavigate();
  const history = useQuery({
    queryKey: ["thread-history", threadId],
    queryFn: () => client().threads.getHistory(threadId, { limit: 50 }),
  });
  const fork = useMutation({
    mutationFn: async (checkpointId: string) => {
      const c = client();
      const [last] = await c.runs.list(threadId, { limit: 1 });
      if (!last) throw new Error("this thread has no run to fork");
      return c.runs.create(threadId, last.assistant_id, { input: null, checkpointId });
    },
    onSuccess: () => navigate("/tasks"),
  });
  return (
    <Card title="Checkpoints" className="mt-4">
      <ErrorLine error={history.error ?? fork.error} />
      <ol className="divide-y divide-slate-100 text-sm" data-testid="checkpoints">
        {(history.data ?? []).map((s) => {
          const id = s.checkpoint.checkpoint_id ?? "";
          return (
            <li key={id} className="py-2">
              <div className="flex flex-wrap items-center gap-2">
                <span className="font-mono text-xs">{id.slice(0, 13)}…</span>
                <span className="text-slate-700">next: {s.next.length ? s.next.join(", ") : "end"}</span>
                {s.created_at && (
                  <span className="text-xs text-slate-600">
                    <When at={s.created_at} />
                  </span>
                )}
                {canFork && id && (
                  <Button tone="secondary" className="ml-auto" onClick={() => fork.mutate(id)} disabled={fork.isPending}>
                    Fork from here
                  </Button>
                )}
              </div>
              <details className="mt-1">
                <summary className="cursor-pointer text-slate-600">State</summary>
                <pre tabIndex={0} className="mt-1 max-h-64 overflow-auto rounded bg-slate-100 p-2 text-xs">{JSON.stringify(s.values, null, 2)}</pre>
              </details>
            </li>
          );
        })}
      </ol>
    </Card>
  );
}
