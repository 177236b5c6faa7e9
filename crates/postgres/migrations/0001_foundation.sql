-- Foundation schema for distributed mode, with row-level security.
--
-- Two ways in:
--  * tenant-scoped transactions switch to the role morningai_tenant (NOLOGIN, no
--    BYPASSRLS) and set app.tenant_id, both with set_config(..., true) so they end with the
--    transaction. Policies for that role admit only the current tenant's rows, so a query
--    that forgot its tenant filter still sees nothing else.
--  * the platform path (sign-up, login, credential lookup, migrations) runs as the login
--    role that applied these migrations; its policies are explicit and separate.
-- FORCE makes the policies apply to the table owner too. A superuser bypasses RLS
-- altogether, which is why tenant transactions switch role instead of trusting the login.
-- Plain SQL only (no superuser-only statements), so this runs unchanged on Supabase.

-- Roles are cluster-wide while the migration lock is per database, so two databases of
-- one cluster migrating at once may race here: the loser's duplicate is harmless.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'morningai_tenant') THEN
        CREATE ROLE morningai_tenant NOLOGIN NOBYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- The login role must be a member to switch to it.
DO $$
BEGIN
    GRANT morningai_tenant TO CURRENT_USER;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
GRANT USAGE ON SCHEMA public TO morningai_tenant;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- Users are global (no tenant): they join tenants through memberships.
CREATE TABLE users (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL,
    name               text,
    password_hash      text NOT NULL,
    is_platform_admin  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

-- The role lives here and only here: tokens never carry it.
CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

-- Only a SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    prefix      text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_by  uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id, id);

-- Rotating refresh tokens, hashed; platform path only (no grant to the tenant role).
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE projects (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (tenant_id, id)
);

-- The composite foreign key makes it impossible for a task to point at another tenant's
-- project; deleting a project unlinks its tasks (they are history).
CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id       uuid,
    kind             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    priority         smallint NOT NULL CHECK (priority BETWEEN 0 AND 9),
    trace_id         text NOT NULL,
    input            jsonb NOT NULL,
    result           jsonb,
    error            text,
    idempotency_key  text,
    created_by       uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE SET NULL (project_id)
);
CREATE INDEX tasks_tenant ON tasks(tenant_id, id);
CREATE INDEX tasks_tenant_status ON tasks(tenant_id, status, id);

CREATE TABLE audit_log (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    actor          jsonb NOT NULL,
    action         text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text,
    ip             text,
    details        jsonb NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);

-- Least privilege for the tenant role: what the tenant-scoped repositories need, no more.
GRANT SELECT, UPDATE (name) ON tenants TO morningai_tenant;
GRANT SELECT (id, email, name, is_platform_admin, created_at) ON users TO morningai_tenant;
GRANT SELECT, INSERT, UPDATE (role), DELETE ON memberships TO morningai_tenant;
GRANT SELECT, INSERT, UPDATE (revoked_at) ON api_keys TO morningai_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects TO morningai_tenant;
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO morningai_tenant;
GRANT SELECT, INSERT ON audit_log TO morningai_tenant;

-- Row-level security on every tenant-owned table. The policy is
-- tenant_id = current_setting('app.tenant_id', true)::uuid, with one change: a setting that
-- was set in an earlier transaction of the same pooled session reads back as '' rather
-- than NULL, and ''::uuid would raise; NULLIF makes both mean "no tenant", matching no row.
DO $$
DECLARE
    t text;
    col text;
BEGIN
    FOR t, col IN VALUES ('tenants', 'id'), ('memberships', 'tenant_id'), ('api_keys', 'tenant_id'),
                         ('refresh_tokens', 'tenant_id'), ('projects', 'tenant_id'),
                         ('tasks', 'tenant_id'), ('audit_log', 'tenant_id')
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO morningai_tenant
                 USING (%I = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)
                 WITH CHECK (%I = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)',
            t, col, col);
        EXECUTE format(
            'CREATE POLICY platform_path ON %I TO %I USING (true) WITH CHECK (true)', t, current_user);
    END LOOP;
END
$$;
