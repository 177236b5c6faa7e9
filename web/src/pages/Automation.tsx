// Assistants (an agent's configuration: model, temperature, retrieval, approval, prompt) and
// schedules (a task on a cron, its next five fire times previewed as typed).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Cron } from "croner";
import { useState } from "react";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, When, input, optionalNumber } from "../components/ui";

type Role = components["schemas"]["Role"];

/** The next `n` fire times of `cron` in `timezone`, or the reason it is not a schedule. */
export function nextRuns(cron: string, timezone: string, n = 5): Date[] | string {
  try {
    return new Cron(cron, { timezone: timezone || undefined, paused: true }).nextRuns(n);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export function Automation() {
  const role = useRole();
  return (
    <Page title="Assistants and schedules">
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
        <Assistants admin={atLeast(role, "admin")} />
        <Schedules member={atLeast(role, "member")} />
      </div>
    </Page>
  );
}

function Assistants({ admin }: { admin: boolean }) {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ["assistants"], queryFn: () => must(api.GET("/api/v1/assistants")) });
  const create = useMutation({
    mutationFn: (body: components["schemas"]["CreateAssistant"]) => must(api.POST("/api/v1/assistants", { body })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["assistants"] }),
  });
  return (
    <Card title="Assistants">
      <ErrorLine error={list.error} />
      <ul className="mb-4 divide-y divide-slate-100 text-sm" data-testid="assistants">
        {list.data?.items.map((a) => (
          <li key={a.assistant_id} className="py-2">
            <p className="font-medium">
              {a.name} <span className="text-xs font-normal text-slate-600">({a.graph_id}, v{a.version})</span>
            </p>
            <p className="text-xs text-slate-700">
              model {a.config.model ?? "default"} · temperature {a.config.temperature ?? "default"} · {a.config.mode ?? "hybrid"} k={a.config.k ?? "default"} ·{" "}
              {a.config.require_approval ? `approval by ${a.config.approver_role ?? "member"}+` : "no approval"}
            </p>
          </li>
        ))}
      </ul>
      {admin && (
        <form
          className="grid grid-cols-1 gap-3 sm:grid-cols-2"
          onSubmit={(e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const f = new FormData(form);
            create.mutate(
              {
              graph_id: String(f.get("graph")),
              name: String(f.get("name")),
              config: {
                model: String(f.get("model") ?? "") || null,
                temperature: optionalNumber(f.get("temperature")),
                k: optionalNumber(f.get("k")),
                require_approval: f.get("approval") === "on",
                approver_role: String(f.get("approver")) as Role,
                system_prompt: String(f.get("prompt") ?? "") || null,
              },
              },
              { onSuccess: () => form.reset() },
            );
          }}
        >
          <Field label="Name">
            <input name="name" required maxLength={200} className={input} />
          </Field>
          <Field label="Agent">
            <select name="graph" className={input} defaultValue="faq">
              <option value="faq">documentation (faq)</option>
              <option value="codegen">code generation (codegen)</option>
            </select>
          </Field>
          <Field label="Model">
            <input name="model" className={input} placeholder="the tenant's" />
          </Field>
          <Field label="Temperature">
            <input name="temperature" type="number" min={0} max={2} step="0.1" className={input} />
          </Field>
          <Field label="Passages retrieved (k)">
            <input name="k" type="number" min={1} max={50} className={input} />
          </Field>
          <Field label="Approved by">
            <select name="approver" className={input} defaultValue="member">
              <option>member</option>
              <option>admin</option>
              <option>owner</option>
            </select>
          </Field>
          <label className="flex items-center gap-2 text-sm sm:col-span-2">
            <input type="checkbox" name="approval" className="size-4" /> Hold results for approval
          </label>
          <div className="sm:col-span-2">
            <Field label="System prompt (added to the agent's)">
              <textarea name="prompt" rows={3} maxLength={8000} className={input} />
            </Field>
          </div>
          <div className="sm:col-span-2">
            <ErrorLine error={create.error} />
            <Button type="submit" disabled={create.isPending}>
              Create assistant
            </Button>
          </div>
        </form>
      )}
    </Card>
  );
}

function Schedules({ member }: { member: boolean }) {
  const qc = useQueryClient();
  const [cron, setCron] = useState("0 9 * * 1-5");
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [badInput, setBadInput] = useState(false);
  const list = useQuery({ queryKey: ["schedules"], queryFn: () => must(api.GET("/api/v1/schedules")) });
  const done = () => void qc.invalidateQueries({ queryKey: ["schedules"] });
  const create = useMutation({
    mutationFn: (body: components["schemas"]["CreateSchedule"]) => must(api.POST("/api/v1/schedules", { body })),
    onSuccess: done,
  });
  const remove = useMutation({
    mutationFn: (id: string) => must(api.DELETE("/api/v1/schedules/{id}", { params: { path: { id } } })),
    onSuccess: done,
  });
  const preview = nextRuns(cron, timezone);
  return (
    <Card title="Schedules">
      <ErrorLine error={list.error ?? remove.error} />
      <ul className="mb-4 divide-y divide-slate-100 text-sm" data-testid="schedules">
        {list.data?.map((s) => (
          <li key={s.id} className="flex flex-wrap items-center gap-2 py-2">
            <span className="font-medium">{s.name}</span>
            <code className="text-xs">{s.cron}</code>
            <span className="text-xs text-slate-600">
              {s.kind} · next <When at={s.next_run_at} />
            </span>
            {member && (
              <Button tone="secondary" className="ml-auto" onClick={() => remove.mutate(s.id)}>
                Delete
              </Button>
            )}
          </li>
        ))}
      </ul>
      {member && (
        <form
          className="grid grid-cols-1 gap-3 sm:grid-cols-2"
          onSubmit={(e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const f = new FormData(form);
            let input: Record<string, unknown>;
            try {
              input = JSON.parse(String(f.get("input") || "{}")) as Record<string, unknown>;
            } catch {
              setBadInput(true);
              return;
            }
            setBadInput(false);
            create.mutate({ name: String(f.get("name")), cron, timezone, kind: String(f.get("kind")), input }, { onSuccess: () => form.reset() });
          }}
        >
          <Field label="Name">
            <input name="name" required maxLength={200} className={input} />
          </Field>
          <Field label="Task kind">
            <input name="kind" required defaultValue="faq" className={input} />
          </Field>
          <Field label="Cron">
            <input value={cron} onChange={(e) => setCron(e.target.value)} required className={`${input} font-mono`} />
          </Field>
          <Field label="Time zone">
            <input value={timezone} onChange={(e) => setTimezone(e.target.value)} className={input} />
          </Field>
          <div className="sm:col-span-2">
            <Field label="Input (JSON)">
              <textarea name="input" rows={2} className={`${input} font-mono`} defaultValue="{}" />
            </Field>
          </div>
          <div className="text-sm sm:col-span-2" data-testid="next-runs" aria-live="polite">
            {typeof preview === "string" ? (
              <p className="text-red-900">{preview}</p>
            ) : (
              <>
                <p className="font-medium">Next five runs</p>
                <ol className="list-decimal pl-5">
                  {preview.map((d) => (
                    <li key={d.toISOString()}>
                      <When at={d.toISOString()} />
                    </li>
                  ))}
                </ol>
              </>
            )}
          </div>
          <div className="sm:col-span-2">
            <ErrorLine error={badInput ? "Input is not JSON." : create.error} />
            <Button type="submit" disabled={create.isPending || typeof preview === "string"}>
              Create schedule
            </Button>
          </div>
        </form>
      )}
    </Card>
  );
}
