-- Version 11: console sessions bound to the credential that opened them; audit entries keyed
-- (HMAC) when the operator sets `audit_key_file`; commit marks (the outcome of a commit whose
-- connection was lost).
ALTER TABLE console_sessions ADD COLUMN bound BYTEA;
ALTER TABLE audit ADD COLUMN key_id TEXT;
CREATE TABLE commit_marks (
    mark        TEXT COLLATE "C" PRIMARY KEY,
    at          BIGINT NOT NULL
);
CREATE INDEX commit_marks_at ON commit_marks(at);
ALTER TABLE tenants ADD COLUMN group_names_unique BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE overrides ADD COLUMN set_by TEXT;
ALTER TABLE tenants ADD COLUMN closed_at BIGINT;
ALTER TABLE tenants ADD COLUMN purge_at BIGINT;
