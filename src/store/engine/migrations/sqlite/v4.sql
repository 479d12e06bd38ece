-- Version 4: seat figures on each seat event (the console's usage chart) and tenant admin tokens.
ALTER TABLE seat_events ADD COLUMN in_use INTEGER;
ALTER TABLE seat_events ADD COLUMN waiting INTEGER;
CREATE INDEX seat_events_license ON seat_events(license_rk, seq);

CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    tenant      INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    created     TEXT NOT NULL,
    revoked     TEXT
);
CREATE INDEX admin_tokens_tenant ON admin_tokens(tenant);
