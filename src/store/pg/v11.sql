-- Version 11: console sessions bound to the credential that opened them; audit entries keyed
-- (HMAC) when the operator sets `audit_key_file`.
ALTER TABLE console_sessions ADD COLUMN bound BYTEA;
ALTER TABLE audit ADD COLUMN key_id TEXT;
