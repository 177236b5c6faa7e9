-- Inbound webhooks name a record (an integration connection) before anyone is
-- authenticated: the platform path finds its tenant by kind and id. Additive.
CREATE INDEX objects_by_id ON objects (kind, id);
