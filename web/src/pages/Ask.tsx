// Ask: a question about a project's indexed code and documents. The documentation agent
// runs as a task; the page follows it live on the task's page, which ends with the document.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, input } from "../components/ui";

export function useProjects() {
  return useQuery({ queryKey: ["projects"], queryFn: () => must(api.GET("/api/v1/projects")) });
}

export function useCollections() {
  return useQuery({ queryKey: ["collections"], queryFn: () => must(api.GET("/api/v1/memory/collections")) });
}

/** Field props a control receives from `Field` (its id and hint). */
type Labelled = { id?: string; "aria-describedby"?: string };

/** The tenant's projects; `value` is the chosen project's id. */
export function ProjectSelect({ value, onChange, ...labelled }: Labelled & { value: string; onChange: (id: string) => void }) {
  const projects = useProjects();
  return (
    <select {...labelled} className={input} value={value} onChange={(e) => onChange(e.target.value)}>
      {projects.data?.map((p) => (
        <option key={p.id} value={p.id}>
          {p.name}
        </option>
      ))}
    </select>
  );
}

/** The tenant's memory collections, as the form field `collection` ("" = all). */
export function CollectionSelect(labelled: Labelled) {
  const collections = useCollections();
  return (
    <select {...labelled} name="collection" className={input} defaultValue="">
      <option value="">all</option>
      {collections.data?.items.map((c) => (
        <option key={c.id} value={c.id}>
          {c.name}
        </option>
      ))}
    </select>
  );
}

/** Creates a project and selects it. */
export function NewProject({ onCreated }: { onCreated: (id: string) => void }) {
  const qc = useQueryClient();
  const create = useMutation({
    mutationFn: (name: string) => must(api.POST("/api/v1/projects", { body: { name } })),
    onSuccess: (p) => {
      void qc.invalidateQueries({ queryKey: ["projects"] });
      onCreated(p.id);
    },
  });
  return (
    <form
      className="flex flex-wrap items-end gap-2"
      onSubmit={(e) => {
        e.preventDefault();
        const name = String(new FormData(e.currentTarget).get("name") ?? "").trim();
        if (name) create.mutate(name);
      }}
    >
      <Field label="New project">
        <input name="name" required maxLength={200} className={input} placeholder="e.g. payments-service" />
      </Field>
      <Button type="submit" tone="secondary" disabled={create.isPending}>
        Create project
      </Button>
      <ErrorLine error={create.error} />
    </form>
  );
}

export function Ask() {
  const role = useRole();
  const navigate = useNavigate();
  const projects = useProjects();
  const [project, setProject] = useState("");
  const projectId = project || projects.data?.[0]?.id || "";
  const ask = useMutation({
    mutationFn: (input: Record<string, unknown>) =>
      must(api.POST("/api/v1/tasks", { body: { kind: "faq", input, project_id: projectId } })),
    onSuccess: (t) => navigate(`/tasks/${t.id}`),
  });

  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    ask.mutate({
      project_id: projectId,
      question: String(f.get("question") ?? ""),
      collection_id: String(f.get("collection") ?? "") || null,
      require_approval: f.get("approval") === "on",
      regenerate: f.get("regenerate") === "on",
    });
  }

  if (!atLeast(role, "member")) {
    return (
      <Page title="Ask">
        <Card>
          <p className="text-sm text-slate-700">Viewers read documents; asking the agent needs the member role.</p>
        </Card>
      </Page>
    );
  }
  return (
    <Page title="Ask">
      <Card>
        {projects.data?.length === 0 ? (
          <NewProject onCreated={setProject} />
        ) : (
          <form onSubmit={submit} className="space-y-4">
            <div className="grid grid-cols-1 gap-4 sm:grid-cols-2">
              <Field label="Project">
                <ProjectSelect value={projectId} onChange={setProject} />
              </Field>
              <Field label="Memory collection" hint="Where the agent looks; all of the project's when empty.">
                <CollectionSelect />
              </Field>
            </div>
            <Field label="Question">
              <textarea name="question" required rows={3} maxLength={2000} className={input} placeholder="How does authentication work?" />
            </Field>
            <div className="flex flex-wrap gap-4 text-sm">
              <label className="flex items-center gap-2">
                <input type="checkbox" name="approval" className="size-4" /> Hold for approval before publishing
              </label>
              <label className="flex items-center gap-2">
                <input type="checkbox" name="regenerate" className="size-4" /> Write a new version even if a document answers
              </label>
            </div>
            <ErrorLine error={ask.error} />
            <Button type="submit" disabled={ask.isPending || !projectId}>
              Ask
            </Button>
          </form>
        )}
      </Card>
    </Page>
  );
}
