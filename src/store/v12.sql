-- Version 12: the circuit breaker on mass seat loss. A tenant's breaker settings, each
-- license's window of directory-made losses, holds, and the hold a held seat belongs to.
ALTER TABLE tenants ADD COLUMN hold_threshold_percent INTEGER NOT NULL DEFAULT 20;
ALTER TABLE tenants ADD COLUMN hold_min_seats INTEGER NOT NULL DEFAULT 10;
ALTER TABLE tenants ADD COLUMN hold_window_seconds INTEGER NOT NULL DEFAULT 3600;
ALTER TABLE licenses ADD COLUMN loss_since INTEGER;
ALTER TABLE licenses ADD COLUMN loss_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN losses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE seats ADD COLUMN hold INTEGER;
ALTER TABLE seats ADD COLUMN hold_loss TEXT;
CREATE INDEX seats_held ON seats(license_rk, hold) WHERE hold IS NOT NULL;
CREATE TABLE holds (
    rk          INTEGER PRIMARY KEY,
    tenant      INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    license_rk  INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    created     INTEGER NOT NULL,
    held        INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL DEFAULT 0,
    changes     TEXT NOT NULL DEFAULT '{}',
    decided     INTEGER,
    decided_by  TEXT
);
CREATE INDEX holds_tenant ON holds(tenant, rk);
CREATE UNIQUE INDEX holds_open ON holds(license_rk) WHERE state = 'open';
