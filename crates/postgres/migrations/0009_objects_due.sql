-- Records fall due (an approval's expiry): the sweeper asks the index instead of reading
-- every pending record and filtering in memory.
ALTER TABLE objects ADD COLUMN due_at timestamptz;
UPDATE objects
   SET due_at = (body->>'expires_at')::timestamptz
 WHERE kind = 'approval' AND body->>'expires_at' IS NOT NULL;
CREATE INDEX objects_due ON objects(kind, status, due_at) WHERE due_at IS NOT NULL;
