-- v17 (both engines): the identity provider's failing requests, kept per kind of failure for a
-- week, and its requests and failures per hour (the failure rate the provider's quarantine rule
-- judges); the tenant's warning threshold.
CREATE TABLE provider_failures (
    tenant_rk   INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,                        -- method, route, status, scimType, detail
    method      TEXT NOT NULL,
    route       TEXT NOT NULL,                        -- /scim/v2/Groups/{id}
    resource    TEXT NOT NULL,                        -- the last path it named
    status      INTEGER NOT NULL,
    scim_type   TEXT,
    detail      TEXT NOT NULL,
    first_at    INTEGER NOT NULL,                     -- ms since epoch
    last_at     INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (tenant_rk, fingerprint)
);
CREATE INDEX provider_failures_last ON provider_failures(tenant_rk, last_at);
CREATE TABLE provider_requests (
    tenant_rk   INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    hour        INTEGER NOT NULL,                     -- ms since epoch / 3,600,000
    requests    INTEGER NOT NULL DEFAULT 0,
    failures    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_rk, hour)
);
ALTER TABLE tenants ADD COLUMN idp_failure_warn_percent INTEGER NOT NULL DEFAULT 10;
