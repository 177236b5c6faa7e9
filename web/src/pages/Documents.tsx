// Documents: a project's documents, searchable (published ones, hybrid search), exported as
// a zip of markdown files and imported from one.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, Status, When, input } from "../components/ui";
import { LiveBadge, useTenantFeed } from "../live";
import { NewProject, ProjectSelect, useProjects } from "./Ask";

export function Documents() {
  const role = useRole();
  const qc = useQueryClient();
  const projects = useProjects();
  const [params, setParams] = useSearchParams();
  const projectId = params.get("project") || projects.data?.[0]?.id || "";
  const q = params.get("q") ?? "";
  const [typed, setTyped] = useState(q);
  // Live: a document an agent publishes appears without a reload.
  const { state } = useTenantFeed();
  const list = useQuery({
    queryKey: ["documents", projectId, q],
    queryFn: () =>
      must(api.GET("/api/v1/documents", { params: { query: { project_id: projectId, q: q || undefined, limit: 100 } } })),
    enabled: projectId !== "",
  });
  const exportZip = useMutation({
    mutationFn: async () => {
      const blob = await must(
        api.GET("/api/v1/documents/export", { params: { query: { project_id: projectId } }, parseAs: "blob" }),
      );
      const url = URL.createObjectURL(blob as Blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = "documents.zip";
      a.click();
      URL.revokeObjectURL(url);
    },
  });
  const importZip = useMutation({
    mutationFn: (file: File) =>
      must(
        api.POST("/api/v1/documents/import", {
          params: { query: { project_id: projectId } },
          body: file as unknown as number[],
          bodySerializer: (b) => b as unknown as Blob,
          headers: { "content-type": "application/zip" },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["documents"] }),
  });
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };

  return (
    <Page
      title="Documents"
      actions={
        projectId ? (
          <div className="flex flex-wrap items-center gap-2">
            <LiveBadge state={state} />
            <Button tone="secondary" onClick={() => exportZip.mutate()} disabled={exportZip.isPending}>
              Export zip
            </Button>
            {atLeast(role, "member") && (
              <label className="inline-flex min-h-10 cursor-pointer items-center rounded-md border border-slate-300 bg-white px-4 text-sm font-medium hover:bg-slate-100 focus-within:outline-2">
                Import zip
                <input
                  type="file"
                  accept=".zip,application/zip"
                  className="sr-only"
                  onChange={(e) => {
                    const f = e.target.files?.[0];
                    if (f) importZip.mutate(f);
                  }}
                />
              </label>
            )}
          </div>
        ) : undefined
      }
    >
      <ErrorLine error={list.error ?? exportZip.error ?? importZip.error} />
      {importZip.data && (
        <div role="status" className="mb-3 text-sm text-green-900" data-testid="import-report">
          <p>
            Imported: {importZip.data.created.length} created, {importZip.data.updated.length} updated, {importZip.data.unchanged.length} unchanged,{" "}
            {importZip.data.skipped.length} skipped.
          </p>
          {importZip.data.skipped.length > 0 && (
            <ul className="mt-1 list-disc pl-5 text-amber-900">
              {importZip.data.skipped.map((s) => (
                <li key={s}>{s}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      {projects.data?.length === 0 ? (
        atLeast(role, "member") ? (
          <Card>
            <NewProject onCreated={(id) => set("project", id)} />
          </Card>
        ) : (
          <p className="text-sm text-slate-600">No projects yet.</p>
        )
      ) : (
        <>
          <form
            className="mb-4 flex flex-wrap items-end gap-3"
            onSubmit={(e) => {
              e.preventDefault();
              set("q", typed.trim());
            }}
          >
            <Field label="Project">
              <ProjectSelect value={projectId} onChange={(id) => set("project", id)} />
            </Field>
            <Field label="Search published documents">
              <input type="search" className={input} value={typed} maxLength={500} onChange={(e) => setTyped(e.target.value)} />
            </Field>
            <Button type="submit" tone="secondary">
              Search
            </Button>
          </form>
          <Card>
            {list.data?.items.length === 0 ? (
              <p className="text-sm text-slate-600">{q ? "No published document matches." : "No documents yet: ask a question to write the first."}</p>
            ) : (
              <ul className="divide-y divide-slate-100" data-testid="documents">
                {(list.data?.hits?.map((h) => ({ doc: h.document, excerpt: h.excerpt })) ?? list.data?.items.map((doc) => ({ doc, excerpt: "" })) ?? []).map(
                  ({ doc, excerpt }) => (
                    <li key={doc.id} className="py-3">
                      <div className="flex flex-wrap items-center gap-2">
                        <Link to={`/documents/${doc.id}`} className="font-medium underline-offset-2 hover:underline">
                          {doc.title}
                        </Link>
                        <Status value={doc.status} />
                        <span className="text-xs text-slate-600">
                          {doc.kind} · v{doc.latest_version} · <When at={doc.updated_at} />
                        </span>
                      </div>
                      {excerpt && <p className="mt-1 line-clamp-2 text-sm text-slate-700">{excerpt}</p>}
                    </li>
                  ),
                )}
              </ul>
            )}
          </Card>
        </>
      )}
    </Page>
  );
}
