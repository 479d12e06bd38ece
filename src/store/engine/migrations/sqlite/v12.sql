-- Version 12: the circuit breaker on mass seat loss (a tenant's breaker settings, each
-- license's window of directory-made losses, holds, and the hold a held seat belongs to) and
-- capacity planning (overage, the daily history, the forecast's horizon and alerts).
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
ALTER TABLE tenants ADD COLUMN forecast_horizon_days INTEGER NOT NULL DEFAULT 14;
ALTER TABLE licenses ADD COLUMN overage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN overage_percent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN overage_notified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN runout_notified INTEGER NOT NULL DEFAULT 0;
CREATE TABLE license_days (
    license_rk  INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant      INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    seats       INTEGER NOT NULL,
    overage     INTEGER NOT NULL,
    peak_in_use INTEGER NOT NULL,
    peak_demand INTEGER NOT NULL,
    peak_over   INTEGER NOT NULL,
    last_in_use INTEGER NOT NULL,
    last_demand INTEGER NOT NULL,
    PRIMARY KEY (license_rk, day)
) WITHOUT ROWID;
