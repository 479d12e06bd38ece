-- v17 (both engines): the identity provider's failing requests, kept per kind of failure for a
-- week, and its requests and failures per hour; the tenant's warning threshold.
CREATE TABLE provider_failures (
    tenant_rk   BIGINT NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    fingerprint TEXT COLLATE "C" NOT NULL,
    method      TEXT NOT NULL,
    route       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    status      BIGINT NOT NULL,
    scim_type   TEXT,
    detail      TEXT NOT NULL,
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (tenant_rk, fingerprint)
);
CREATE INDEX provider_failures_last ON provider_failures(tenant_rk, last_at);
CREATE TABLE provider_requests (
    tenant_rk   BIGINT NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    hour        BIGINT NOT NULL,
    requests    BIGINT NOT NULL DEFAULT 0,
    failures    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_rk, hour)
);
ALTER TABLE tenants ADD COLUMN idp_failure_warn_percent BIGINT NOT NULL DEFAULT 10;
