// Settings tabs for what connects the tenant to the outside: chat platforms (where people
// ask) and webhooks (where events go, with their delivery log).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { Button, Card, ErrorLine, Field, Status, When, input } from "../components/ui";

type Platform = components["schemas"]["Platform"];

/** Each platform's secrets, as its console names them; optional ones are marked. */
const SECRETS: Record<Platform, { name: string; label: string; optional?: boolean; multiline?: boolean }[]> = {
  slack: [
    { name: "signing_secret", label: "Signing secret" },
    { name: "bot_token", label: "Bot token (xoxb-…)" },
  ],
  telegram: [
    { name: "bot_token", label: "Bot token (from @BotFather)" },
    { name: "secret_token", label: "Secret token (optional: generated)", optional: true },
  ],
  line: [
    { name: "channel_secret", label: "Channel secret" },
    { name: "channel_access_token", label: "Channel access token" },
  ],
  messenger: [
    { name: "app_secret", label: "App secret" },
    { name: "page_access_token", label: "Page access token" },
    { name: "verify_token", label: "Verify token (you choose it)" },
  ],
  discord: [
    { name: "public_key", label: "Public key (hex)" },
    { name: "bot_token", label: "Bot token" },
  ],
  github: [
    { name: "webhook_secret", label: "Webhook secret" },
    { name: "token", label: "Token (Issues; for pull requests also Contents and Pull requests: write)", optional: true },
    { name: "app_id", label: "Or a GitHub App: App ID", optional: true },
    { name: "installation_id", label: "Installation ID", optional: true },
    { name: "private_key", label: "Private key (.pem)", optional: true, multiline: true },
  ],
};
const PLATFORMS = Object.keys(SECRETS) as Platform[];

/** The server gives a path when it does not know its public address: this page's origin. */
function absolute(url: string): string {
  return url.startsWith("/") ? `${window.location.origin}${url}` : url;
}

export function ChatPlatforms() {
  const qc = useQueryClient();
  const [platform, setPlatform] = useState<Platform>("slack");
  const [checked, setChecked] = useState<Record<string, string>>({});
  const [links, setLinks] = useState<Record<string, string>>({});
  const list = useQuery({ queryKey: ["integrations"], queryFn: () => must(api.GET("/api/v1/integrations")) });
  const projects = useQuery({ queryKey: ["projects"], queryFn: () => must(api.GET("/api/v1/projects")) });
  const done = () => void qc.invalidateQueries({ queryKey: ["integrations"] });
  const create = useMutation({
    mutationFn: (body: components["schemas"]["CreateIntegration"]) => must(api.POST("/api/v1/integrations", { body })),
    onSuccess: done,
  });
  const [form, setForm] = useState<HTMLFormElement | null>(null);
  const remove = useMutation({
    mutationFn: (id: string) => must(api.DELETE("/api/v1/integrations/{id}", { params: { path: { id } } })),
    onSuccess: done,
  });
  const link = useMutation({
    mutationFn: (id: string) => must(api.POST("/api/v1/integrations/{id}/link", { params: { path: { id } } })),
    onSuccess: (r, id) => setLinks((l) => ({ ...l, [id]: r.command })),
  });
  const test = useMutation({
    mutationFn: (id: string) => must(api.POST("/api/v1/integrations/{id}/test", { params: { path: { id } } })),
    onSuccess: (r, id) => setChecked((c) => ({ ...c, [id]: `${r.ok ? "✓" : "✗"} ${r.detail}` })),
  });
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const secrets: Record<string, string> = {};
    for (const s of SECRETS[platform]) {
      const v = String(f.get(s.name) ?? "").trim();
      if (v) secrets[s.name] = v;
    }
    const text = (name: string) => String(f.get(name) ?? "").trim() || undefined;
    const repository = platform === "github" ? text("repository") : undefined;
    const github = repository && {
      repository,
      base_branch: text("base_branch"),
      tree_path: text("tree_path"),
      publish_documents: f.get("publish_documents") === "on",
    };
    const channel = platform === "slack" ? text("approvals_channel") : undefined;
    const body = {
      platform,
      name: String(f.get("name")),
      project_id: text("project_id"),
      secrets,
      github: github || undefined,
      approvals: channel ? { channel } : undefined,
    };
    // The secrets leave the page once saved.
    create.mutate(body, { onSuccess: () => form?.reset() });
  }
  return (
    <div className="space-y-4">
      <Card title="Connect a platform">
        <p className="mb-3 text-sm text-slate-700">
          People ask where they already talk; the documentation assistant answers from this tenant's memory, with its sources.
          Secrets are stored encrypted and never shown again.
        </p>
        <form ref={setForm} onSubmit={submit} className="grid gap-3 sm:grid-cols-2">
          <Field label="Platform">
            <select name="platform" className={input} value={platform} onChange={(e) => setPlatform(e.target.value as Platform)}>
              {PLATFORMS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </Field>
          <Field label="Connection name">
            <input name="name" required maxLength={200} className={input} placeholder={platform === "github" ? "acme/app on GitHub" : "Engineering Slack"} />
          </Field>
          <Field label="Project (its tasks are filed there)">
            <select name="project_id" className={input} defaultValue="">
              <option value="">None</option>
              {projects.data?.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </Field>
          {SECRETS[platform].map((s) => (
            <Field key={`${platform}-${s.name}`} label={s.label}>
              {s.multiline ? (
                <textarea name={s.name} autoComplete="off" rows={3} maxLength={10000} className={`${input} font-mono text-xs`} />
              ) : (
                <input name={s.name} type="password" autoComplete="off" required={!s.optional} maxLength={1000} className={input} />
              )}
            </Field>
          ))}
          {platform === "slack" && (
            <Field label="Approvals channel id (optional, C…)">
              <input name="approvals_channel" maxLength={30} className={input} placeholder="C0123456789" />
            </Field>
          )}
          {platform === "github" && (
            <>
              <Field label="Repository for pull requests (owner/name, optional)">
                <input name="repository" maxLength={201} className={input} placeholder="acme/app" />
              </Field>
              <Field label="Base branch (default: the repository's)">
                <input name="base_branch" maxLength={200} className={input} placeholder="main" />
              </Field>
              <Field label="Indexed checkout on the server (for /morningai codegen)">
                <input name="tree_path" maxLength={1000} className={input} placeholder="/srv/repos/app" />
              </Field>
              <label className="flex items-center gap-2 self-end text-sm">
                <input name="publish_documents" type="checkbox" /> Propose published documents as pull requests
              </label>
            </>
          )}
          <div className="sm:col-span-2">
            <Button type="submit" disabled={create.isPending}>
              Connect
            </Button>
          </div>
        </form>
        <ErrorLine error={create.error} />
      </Card>
      <Card title="Connections">
        <ErrorLine error={list.error ?? remove.error ?? test.error ?? link.error} />
        {list.data?.length === 0 && <p className="text-sm text-slate-700">No platform connected yet.</p>}
        <ul className="divide-y divide-slate-100 text-sm" data-testid="integrations">
          {list.data?.map((c) => (
            <li key={c.id} className="space-y-1 py-3">
              <div className="flex flex-wrap items-center gap-2">
                <span className="font-medium">{c.name}</span>
                <Status value={c.platform} />
                <span className="flex-1" />
                <Button tone="secondary" onClick={() => test.mutate(c.id)} disabled={test.isPending}>
                  Test
                </Button>
                <Button tone="secondary" onClick={() => remove.mutate(c.id)} disabled={remove.isPending}>
                  Disconnect
                </Button>
              </div>
              <p className="text-slate-700">
                Webhook URL: <code className="break-all">{absolute(c.hook_url)}</code>
              </p>
              {c.hook_url.startsWith("/") && (
                <p className="text-xs text-slate-600">
                  This page's address; if the platform reaches the server elsewhere, set MORNINGAI_PUBLIC_URL.
                </p>
              )}
              {c.github && (
                <p className="text-xs text-slate-700" data-testid="pull-requests">
                  Pull requests to {c.github.repository}
                  {c.github.base_branch ? ` (${c.github.base_branch})` : ""}
                  {c.github.tree_path ? ` · codegen on ${c.github.tree_path}` : ""}
                  {c.github.publish_documents ? " · published documents" : ""}
                </p>
              )}
              {c.approvals && (
                <div className="flex flex-wrap items-center gap-2 text-xs text-slate-700">
                  <span>Approval requests go to channel {c.approvals.channel}; those who linked their Slack account decide there as themselves.</span>
                  <Button tone="secondary" onClick={() => link.mutate(c.id)} disabled={link.isPending}>
                    Link my Slack account
                  </Button>
                  {links[c.id] && (
                    <span>
                      Type <code data-testid="link-command">{links[c.id]}</code> in Slack within ten minutes.
                    </span>
                  )}
                </div>
              )}
              <p className="text-xs text-slate-600">
                {Object.entries(c.secrets)
                  .map(([k, hint]) => `${k} ${hint}`)
                  .join(" · ")}
              </p>
              {checked[c.id] && (
                <p role="status" className="text-xs">
                  {checked[c.id]}
                </p>
              )}
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}

const EVENTS = ["task.succeeded", "task.failed", "approval.requested", "document.published"] as const;

export function Webhooks() {
  const qc = useQueryClient();
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const list = useQuery({ queryKey: ["webhooks"], queryFn: () => must(api.GET("/api/v1/webhooks")) });
  const done = () => void qc.invalidateQueries({ queryKey: ["webhooks"] });
  const create = useMutation({
    mutationFn: (body: components["schemas"]["CreateWebhook"]) => must(api.POST("/api/v1/webhooks", { body })),
    onSuccess: (w) => {
      setSecret(w.secret ?? null);
      done();
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => must(api.DELETE("/api/v1/webhooks/{id}", { params: { path: { id } } })),
    onSuccess: done,
  });
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const events = EVENTS.filter((ev) => f.get(ev) === "on");
    const description = String(f.get("description") ?? "").trim();
    create.mutate({ url: String(f.get("url")), events, description: description || null });
  }
  return (
    <div className="space-y-4">
      <Card title="New webhook">
        <form onSubmit={submit} className="space-y-3">
          <Field label="Endpoint URL">
            <input name="url" type="url" required maxLength={2000} className={input} placeholder="https://example.com/morningai" />
          </Field>
          <fieldset>
            <legend className="mb-1 text-sm font-medium">Events</legend>
            <div className="flex flex-wrap gap-4 text-sm">
              {EVENTS.map((ev) => (
                <label key={ev} className="inline-flex min-h-10 items-center gap-2">
                  <input type="checkbox" name={ev} defaultChecked={ev.startsWith("task.")} />
                  {ev}
                </label>
              ))}
            </div>
          </fieldset>
          <Field label="Description">
            <input name="description" maxLength={500} className={input} />
          </Field>
          <Button type="submit" disabled={create.isPending}>
            Create webhook
          </Button>
        </form>
        <ErrorLine error={create.error} />
        {secret && (
          <div role="status" className="mt-3 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm">
            <p className="mb-1 font-medium">Copy the signing secret now: it is shown once. Deliveries are signed per Standard Webhooks.</p>
            <code className="break-all" data-testid="webhook-secret">
              {secret}
            </code>
          </div>
        )}
      </Card>
      <Card title="Webhooks">
        <ErrorLine error={list.error ?? remove.error} />
        {list.data?.length === 0 && <p className="text-sm text-slate-700">No webhook yet.</p>}
        <ul className="divide-y divide-slate-100 text-sm" data-testid="webhooks">
          {list.data?.map((w) => (
            <li key={w.id} className="space-y-2 py-3">
              <div className="flex flex-wrap items-center gap-2">
                <code className="min-w-0 flex-1 break-all">{w.url}</code>
                <Button tone="secondary" onClick={() => setOpen(open === w.id ? null : w.id)} aria-expanded={open === w.id}>
                  Deliveries
                </Button>
                <Button tone="secondary" onClick={() => remove.mutate(w.id)} disabled={remove.isPending}>
                  Delete
                </Button>
              </div>
              <p className="text-xs text-slate-600">
                {w.events.join(", ")} · secret {w.secret_hint}
                {w.description ? ` · ${w.description}` : ""}
              </p>
              {open === w.id && <DeliveryLog id={w.id} />}
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}

function DeliveryLog({ id }: { id: string }) {
  const qc = useQueryClient();
  const log = useQuery({
    queryKey: ["webhook-deliveries", id],
    queryFn: () => must(api.GET("/api/v1/webhooks/{id}/deliveries", { params: { path: { id } } })),
    refetchInterval: 5_000,
  });
  const again = useMutation({
    mutationFn: (delivery: string) =>
      must(api.POST("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", { params: { path: { id, delivery } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["webhook-deliveries", id] }),
  });
  return (
    <div data-testid="deliveries">
      <ErrorLine error={log.error ?? again.error} />
      {log.data?.length === 0 && <p className="text-xs text-slate-600">No deliveries yet.</p>}
      <table className={`w-full text-left text-xs ${log.data?.length ? "" : "hidden"}`}>
        <caption className="sr-only">Deliveries</caption>
        <thead className="uppercase text-slate-600">
          <tr>
            <th scope="col" className="py-1">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col" className="hidden sm:table-cell">Created</th>
            <th scope="col"><span className="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {log.data?.map((d) => {
            const last = d.attempts[d.attempts.length - 1];
            return (
              <tr key={d.id}>
                <td className="py-1">{d.event}</td>
                <td>
                  <Status value={d.status} />
                </td>
                <td title={last?.error ?? undefined}>
                  {d.attempts.length}
                  {last ? ` (last: ${last.status ?? last.error ?? "?"})` : ""}
                </td>
                <td className="hidden sm:table-cell">
                  <When at={d.created_at} />
                </td>
                <td className="text-right">
                  {d.status !== "pending" && (
                    <Button tone="secondary" onClick={() => again.mutate(d.id)} disabled={again.isPending}>
                      Redeliver
                    </Button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
