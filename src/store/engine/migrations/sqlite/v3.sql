-- Version 3: the notification outbox.
ALTER TABLE tenants ADD COLUMN silence_notified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN alert_level INTEGER NOT NULL DEFAULT 0;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    license_rk      INTEGER NOT NULL DEFAULT 0,
    license_name    TEXT,
    state           TEXT NOT NULL,
    created         INTEGER NOT NULL,
    due             INTEGER NOT NULL,
    items           INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    recipients      TEXT,
    subject         TEXT,
    message_id      TEXT NOT NULL,
    message         BLOB,
    sent            INTEGER
);
CREATE UNIQUE INDEX outbox_open ON outbox(tenant, kind, license_rk) WHERE state = 'collecting';
CREATE INDEX outbox_due ON outbox(state, due);
CREATE INDEX outbox_tenant ON outbox(tenant, id);

CREATE TABLE outbox_items (
    outbox_id       INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    detail          TEXT NOT NULL,
    PRIMARY KEY (outbox_id, seq)
) WITHOUT ROWID;
