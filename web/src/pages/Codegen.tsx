// Codegen: a change request over an indexed tree on the server; the code agent plans,
// explains and writes a diff, held for approval when asked, followed on the task's page.
import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api, must } from "../api/client";
import { atLeast, useRole } from "../auth";
import { Button, Card, ErrorLine, Field, Page, input } from "../components/ui";
import { CollectionSelect, NewProject, ProjectSelect, useProjects } from "./Ask";

export function Codegen() {
  const role = useRole();
  const navigate = useNavigate();
  const projects = useProjects();
  const [project, setProject] = useState("");
  const projectId = project || projects.data?.[0]?.id || "";
  const run = useMutation({
    mutationFn: (input: Record<string, unknown>) => must(api.POST("/api/v1/tasks", { body: { kind: "codegen", input, project_id: projectId } })),
    onSuccess: (t) => navigate(`/tasks/${t.id}`),
  });
  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    run.mutate({
      project_id: projectId,
      request: String(f.get("request") ?? ""),
      path: String(f.get("path") ?? ""),
      collection_id: String(f.get("collection") ?? "") || null,
      require_approval: f.get("approval") === "on",
    });
  }
  if (!atLeast(role, "member")) {
    return (
      <Page title="Codegen">
        <Card>
          <p className="text-sm text-slate-700">Asking for code changes needs the member role.</p>
        </Card>
      </Page>
    );
  }
  return (
    <Page title="Codegen">
      <Card>
        {projects.data?.length === 0 ? (
          <NewProject onCreated={setProject} />
        ) : (
          <form onSubmit={submit} className="space-y-4">
            <div className="grid grid-cols-1 gap-4 sm:grid-cols-3">
              <Field label="Project">
                <ProjectSelect value={projectId} onChange={setProject} />
              </Field>
              <Field label="Memory collection">
                <CollectionSelect />
              </Field>
              <Field label="Tree on the server" hint="The indexed folder, under index_roots.">
                <input name="path" required maxLength={4096} className={input} />
              </Field>
            </div>
            <Field label="Change">
              <textarea name="request" required rows={3} maxLength={4000} className={input} placeholder="Add a logout endpoint that revokes the session" />
            </Field>
            <label className="flex items-center gap-2 text-sm">
              <input type="checkbox" name="approval" defaultChecked className="size-4" /> Hold the diff for approval
            </label>
            <ErrorLine error={run.error} />
            <Button type="submit" disabled={run.isPending || !projectId}>
              Generate
            </Button>
          </form>
        )}
      </Card>
    </Page>
  );
}
