-- Version 14: failing requests and refused tokens counted in the database, shared by every
-- node (they were counted in each process's memory).
CREATE TABLE scim_failures (
    id          INTEGER PRIMARY KEY,
    tenant_rk   INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    at          INTEGER NOT NULL,                     -- ms
    label       TEXT NOT NULL                         -- status, error type and route
);
CREATE INDEX scim_failures_tenant ON scim_failures(tenant_rk, at);
CREATE TABLE alert_marks (
    tenant_rk   INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    at          INTEGER NOT NULL,                     -- ms, when last recorded
    unrecorded  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_rk, name)
);
