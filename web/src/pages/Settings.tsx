// Settings (admins): API keys (the secret shown once), members and roles, the AI provider
// and budgets, the tenant's name and retention, chat platforms and webhooks.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { NavLink, useParams } from "react-router";
import { api, must } from "../api/client";
import type { components } from "../api/schema";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, When, input, optionalNumber } from "../components/ui";
import { ChatPlatforms, Webhooks } from "./Connections";

type Role = components["schemas"]["Role"];
const ROLES: Role[] = ["viewer", "member", "admin", "owner"];
const TABS = [
  ["keys", "API keys"],
  ["members", "Members"],
  ["ai", "AI provider and budgets"],
  ["tenant", "Tenant"],
  ["platforms", "Chat platforms"],
  ["webhooks", "Webhooks"],
] as const;

export function Settings() {
  const role = useRole();
  const { tab = "keys" } = useParams();
  if (!atLeast(role, "admin")) {
    return (
      <Page title="Settings">
        <Card>
          <p className="text-sm text-slate-700">{role ? "Settings are for the tenant's admins." : "Loading…"}</p>
        </Card>
      </Page>
    );
  }
  return (
    <Page title="Settings">
      <nav aria-label="Settings" className="mb-4">
        <ul className="flex flex-wrap gap-2">
          {TABS.map(([id, label]) => (
            <li key={id}>
              <NavLink
                to={`/settings/${id}`}
                className={({ isActive }) =>
                  `inline-flex min-h-10 items-center rounded-md px-4 text-sm font-medium ${isActive || (tab === id && id === "keys") ? "bg-slate-900 text-white" : "border border-slate-300 bg-white"}`
                }
              >
                {label}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      {tab === "keys" && <ApiKeys />}
      {tab === "members" && <Members owner={role === "owner"} />}
      {tab === "ai" && <AiSettings />}
      {tab === "tenant" && <TenantSettings />}
      {tab === "platforms" && <ChatPlatforms />}
      {tab === "webhooks" && <Webhooks />}
    </Page>
  );
}

function ApiKeys() {
  const qc = useQueryClient();
  const [secret, setSecret] = useState<string | null>(null);
  const keys = useQuery({ queryKey: ["api-keys"], queryFn: () => must(api.GET("/api/v1/api-keys")) });
  const create = useMutation({
    mutationFn: (body: { name: string; role: Role }) => must(api.POST("/api/v1/api-keys", { body })),
    onSuccess: (k) => {
      setSecret(k.secret);
      void qc.invalidateQueries({ queryKey: ["api-keys"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => must(api.DELETE("/api/v1/api-keys/{id}", { params: { path: { id } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["api-keys"] }),
  });
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    create.mutate({ name: String(f.get("name")), role: String(f.get("role")) as Role });
  }
  return (
    <div className="space-y-4">
      <Card title="New key">
        <form onSubmit={submit} className="flex flex-wrap items-end gap-2">
          <Field label="Name">
            <input name="name" required maxLength={200} className={input} placeholder="ci-bot" />
          </Field>
          <Field label="Role">
            <select name="role" className={input} defaultValue="member">
              {ROLES.filter((r) => r !== "owner").map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </Field>
          <Button type="submit" disabled={create.isPending}>
            Create key
          </Button>
        </form>
        <ErrorLine error={create.error} />
        {secret && (
          <div role="status" className="mt-3 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm">
            <p className="mb-1 font-medium">Copy the key now: it is shown once.</p>
            <code className="break-all" data-testid="api-key-secret">
              {secret}
            </code>
          </div>
        )}
      </Card>
      <Card title="Keys">
        <ErrorLine error={keys.error ?? revoke.error} />
        <table className="w-full text-left text-sm">
          <caption className="sr-only">API keys</caption>
          <thead className="text-xs uppercase text-slate-600">
            <tr>
              <th scope="col" className="py-2">Name</th>
              <th scope="col">Prefix</th>
              <th scope="col">Role</th>
              <th scope="col" className="hidden sm:table-cell">Created</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {keys.data?.map((k) => (
              <tr key={k.id}>
                <td className="py-2">{k.name}</td>
                <td className="font-mono text-xs">{k.prefix}…</td>
                <td>{k.role}</td>
                <td className="hidden sm:table-cell">
                  <When at={k.created_at} />
                </td>
                <td className="text-right">
                  {k.revoked_at ? (
                    <span className="text-xs text-slate-600">revoked</span>
                  ) : (
                    <Button tone="secondary" onClick={() => revoke.mutate(k.id)} disabled={revoke.isPending}>
                      Revoke
                    </Button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
    </div>
  );
}

function Members({ owner }: { owner: boolean }) {
  const qc = useQueryClient();
  const members = useQuery({ queryKey: ["members"], queryFn: () => must(api.GET("/api/v1/tenant/members")) });
  const done = () => void qc.invalidateQueries({ queryKey: ["members"] });
  const add = useMutation({
    mutationFn: (body: { email: string; role: Role }) => must(api.POST("/api/v1/tenant/members", { body })),
    onSuccess: done,
  });
  const change = useMutation({
    mutationFn: ({ id, role }: { id: string; role: Role }) =>
      must(api.PATCH("/api/v1/tenant/members/{user_id}", { params: { path: { user_id: id } }, body: { role } })),
    onSuccess: done,
  });
  const remove = useMutation({
    mutationFn: (id: string) => must(api.DELETE("/api/v1/tenant/members/{user_id}", { params: { path: { user_id: id } } })),
    onSuccess: done,
  });
  const assignable = ROLES.filter((r) => owner || r !== "owner");
  return (
    <div className="space-y-4">
      <Card title="Add a member">
        <form
          className="flex flex-wrap items-end gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            const f = new FormData(e.currentTarget);
            add.mutate({ email: String(f.get("email")), role: String(f.get("role")) as Role });
          }}
        >
          <Field label="Email" hint="Someone who has signed up.">
            <input name="email" type="email" required className={input} />
          </Field>
          <Field label="Role">
            <select name="role" className={input} defaultValue="member">
              {assignable.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </Field>
          <Button type="submit" disabled={add.isPending}>
            Add
          </Button>
        </form>
        <ErrorLine error={add.error} />
      </Card>
      <Card title="Members">
        <ErrorLine error={members.error ?? change.error ?? remove.error} />
        <ul className="divide-y divide-slate-100 text-sm" data-testid="members">
          {members.data?.map((m) => (
            <li key={m.user_id} className="flex flex-wrap items-center gap-2 py-2">
              <span className="min-w-48 flex-1 break-all">{m.email}</span>
              <select
                aria-label={`Role of ${m.email}`}
                className={`${input} w-auto`}
                value={m.role}
                onChange={(e) => change.mutate({ id: m.user_id, role: e.target.value as Role })}
              >
                {ROLES.map((r) => (
                  <option key={r} disabled={!assignable.includes(r)}>
                    {r}
                  </option>
                ))}
              </select>
              <Button tone="secondary" onClick={() => remove.mutate(m.user_id)} disabled={remove.isPending}>
                Remove
              </Button>
            </li>
          ))}
        </ul>
      </Card>
    </div>
  );
}

/** A settings form's last row: its error, "Saved." once saved, the button. */
function SaveRow({ save }: { save: { error: unknown; isSuccess: boolean; isPending: boolean } }) {
  return (
    <div className="sm:col-span-2">
      <ErrorLine error={save.error} />
      {save.isSuccess && <p role="status" className="mb-2 text-sm text-green-900">Saved.</p>}
      <Button type="submit" disabled={save.isPending}>
        Save
      </Button>
    </div>
  );
}

function AiSettings() {
  const qc = useQueryClient();
  const ai = useQuery({ queryKey: ["ai"], queryFn: () => must(api.GET("/api/v1/tenant/ai")) });
  const save = useMutation({
    mutationFn: (body: components["schemas"]["AiSettingsUpdate"]) => must(api.PUT("/api/v1/tenant/ai", { body })),
    onSuccess: (s) => qc.setQueryData(["ai"], s),
  });
  const s = ai.data;
  if (!s) return <ErrorLine error={ai.error} />;
  return (
    <Card>
      <form
        className="grid grid-cols-1 gap-4 sm:grid-cols-2"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          const key = String(f.get("api_key") ?? "");
          save.mutate({
            base_url: String(f.get("base_url") ?? "") || null,
            model: String(f.get("model") ?? "") || null,
            ...(key ? { api_key: key } : {}),
            budget: {
              daily_usd: optionalNumber(f.get("daily_usd")),
              monthly_usd: optionalNumber(f.get("monthly_usd")),
              daily_tokens: optionalNumber(f.get("daily_tokens")),
              monthly_tokens: optionalNumber(f.get("monthly_tokens")),
            },
          });
        }}
      >
        <Field label="Provider base URL" hint="OpenAI-compatible; empty: the deployment's.">
          <input name="base_url" type="url" defaultValue={s.base_url ?? ""} className={input} placeholder="https://api.openai.com/v1" />
        </Field>
        <Field label="Model">
          <input name="model" defaultValue={s.model ?? ""} className={input} placeholder="gpt-4o-mini" />
        </Field>
        <Field label="API key" hint={s.api_key_set ? `Set (…${s.api_key_hint ?? ""}); empty keeps it.` : "Not set."}>
          <input name="api_key" type="password" autoComplete="off" className={input} />
        </Field>
        <p className="self-end break-all text-sm text-slate-700">Now answering: {JSON.stringify(s.effective)}</p>
        <Field label="Daily budget (USD)">
          <input name="daily_usd" type="number" min={0} step="0.01" defaultValue={s.budget.daily_usd ?? ""} className={input} />
        </Field>
        <Field label="Monthly budget (USD)">
          <input name="monthly_usd" type="number" min={0} step="0.01" defaultValue={s.budget.monthly_usd ?? ""} className={input} />
        </Field>
        <Field label="Daily tokens">
          <input name="daily_tokens" type="number" min={0} step={1} defaultValue={s.budget.daily_tokens ?? ""} className={input} />
        </Field>
        <Field label="Monthly tokens">
          <input name="monthly_tokens" type="number" min={0} step={1} defaultValue={s.budget.monthly_tokens ?? ""} className={input} />
        </Field>
        <SaveRow save={save} />
      </form>
    </Card>
  );
}

function TenantSettings() {
  const qc = useQueryClient();
  const tenant = useQuery({ queryKey: ["tenant"], queryFn: () => must(api.GET("/api/v1/tenant")) });
  const save = useMutation({
    mutationFn: (body: components["schemas"]["UpdateTenant"]) => must(api.PATCH("/api/v1/tenant", { body })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["tenant"] }),
  });
  const t = tenant.data;
  if (!t) return <ErrorLine error={tenant.error} />;
  return (
    <Card>
      <form
        className="grid grid-cols-1 gap-4 sm:grid-cols-2"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          save.mutate({ name: String(f.get("name")), checkpoint_ttl_days: optionalNumber(f.get("ttl")) });
        }}
      >
        <Field label="Name">
          <input name="name" required maxLength={200} defaultValue={t.name} className={input} />
        </Field>
        <Field label="Keep idle threads' checkpoints (days)" hint="0: forever; empty: the deployment's default.">
          <input name="ttl" type="number" min={0} step={1} className={input} />
        </Field>
        <p className="text-sm text-slate-700">
          Slug <code>{t.slug}</code> · created <When at={t.created_at} />
        </p>
        <SaveRow save={save} />
      </form>
    </Card>
  );
}
