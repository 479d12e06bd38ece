-- Version 6: a tamper-evident audit log (each entry's SHA-256 and its predecessor's: a hash
-- chain per tenant) and the actor behind each console session.
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
ALTER TABLE console_sessions ADD COLUMN actor TEXT;
