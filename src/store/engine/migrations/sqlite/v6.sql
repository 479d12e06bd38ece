-- Version 6: console sessions in the database, so that every process (and every node) on it
-- knows them and a revoked credential ends them wherever they were opened.
CREATE TABLE console_sessions (
    id_hash     BLOB PRIMARY KEY,
    tenant      INTEGER REFERENCES tenants(rk) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created     INTEGER NOT NULL,
    seen        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_tenant ON console_sessions(tenant);
