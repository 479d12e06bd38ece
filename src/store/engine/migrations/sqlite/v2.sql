-- Schema version 2: licenses, group selection, overrides, seats, the seat-event feed, the audit
-- log, and the tenant settings of the reconciliation window. Appended to schema.sql's
-- version 1 by src/store/migrate.rs; schema.sql holds the whole current schema.

ALTER TABLE tenants ADD COLUMN expected_sync_seconds INTEGER NOT NULL DEFAULT 7200;
ALTER TABLE tenants ADD COLUMN pending_window_seconds INTEGER NOT NULL DEFAULT 259200;
ALTER TABLE tenants ADD COLUMN last_provider_call TEXT;
ALTER TABLE tenants ADD COLUMN last_reconcile TEXT;         -- JSON report of the last pass

CREATE TABLE licenses (
    rk              INTEGER PRIMARY KEY,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    seats           INTEGER NOT NULL,                    -- capacity
    auto_promote    INTEGER NOT NULL,
    grace_seconds   INTEGER NOT NULL,
    on_capacity_lowered TEXT NOT NULL,                   -- 'keep' | 'block_newest'
    free_on_delete  INTEGER NOT NULL,
    granted         INTEGER NOT NULL DEFAULT 0,          -- seat counts, kept with every seat write
    releasing       INTEGER NOT NULL DEFAULT 0,
    blocked         INTEGER NOT NULL DEFAULT 0,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);
CREATE UNIQUE INDEX licenses_id ON licenses(tenant, id);
CREATE UNIQUE INDEX licenses_name ON licenses(tenant, name COLLATE NOCASE);

-- A license's group selectors; `group_id` is NULL while the selector names no group yet
-- (a pending reference, dropped when `pending_since` is older than the tenant's window).
CREATE TABLE license_groups (
    license_rk      INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    selector        TEXT NOT NULL,                       -- 'id' | 'externalId' | 'displayName'
    value           TEXT NOT NULL,
    group_id        TEXT,
    pending_since   TEXT,
    PRIMARY KEY (license_rk, selector, value)
) WITHOUT ROWID;
CREATE INDEX license_groups_group ON license_groups(tenant, group_id);

CREATE TABLE overrides (
    license_rk      INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,                       -- 'pin' | 'exclude'
    created         TEXT NOT NULL,
    PRIMARY KEY (license_rk, user_id)
) WITHOUT ROWID;

-- One row per (license, user) with a seat state; no row is state "none".
CREATE TABLE seats (
    license_rk      INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    state           TEXT NOT NULL,                       -- 'granted' | 'blocked' | 'releasing'
    pinned          INTEGER NOT NULL,
    entitled_at     INTEGER NOT NULL,                    -- microseconds since epoch, distinct per change: the waitlist order
    since           INTEGER NOT NULL,
    release_at      INTEGER,
    PRIMARY KEY (license_rk, user_id)
) WITHOUT ROWID;
CREATE INDEX seats_order ON seats(license_rk, state, pinned DESC, entitled_at, user_id);
CREATE INDEX seats_user ON seats(tenant, user_id);
CREATE INDEX seats_release ON seats(license_rk, release_at) WHERE release_at IS NOT NULL;

-- The ordered feed of seat changes; `seq` is the cursor.
CREATE TABLE seat_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          INTEGER NOT NULL,
    license_rk      INTEGER NOT NULL,
    license_id      TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    user_name       TEXT,
    event           TEXT NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX seat_events_tenant ON seat_events(tenant, seq);

CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          INTEGER NOT NULL,
    at              INTEGER NOT NULL,                    -- ms since epoch
    actor           TEXT NOT NULL,                       -- 'admin' | 'cli' | 'reconciler'
    action          TEXT NOT NULL,
    detail          TEXT NOT NULL                        -- JSON
);
CREATE INDEX audit_tenant ON audit(tenant, seq);
