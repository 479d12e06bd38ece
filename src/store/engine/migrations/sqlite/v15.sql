-- Version 15: console sessions bound to the credential that opened them; audit entries keyed
-- (HMAC) when the operator sets `audit_key_file`.
ALTER TABLE console_sessions ADD COLUMN bound BLOB;           -- HMAC of the credential, keyed by the session id
ALTER TABLE audit ADD COLUMN key_id TEXT;                     -- NULL: SHA-256; else the audit key's fingerprint (HMAC-SHA-256)
ALTER TABLE tenants ADD COLUMN group_names_unique INTEGER NOT NULL DEFAULT 1;  -- a group's displayName unique in the tenant
ALTER TABLE overrides ADD COLUMN set_by TEXT;                -- who set an override
ALTER TABLE tenants ADD COLUMN closed_at INTEGER;             -- offboarding: closed, then purged at purge_at
ALTER TABLE tenants ADD COLUMN purge_at INTEGER;
