-- Version 10: signed webhooks. Endpoints (a tenant's, or the operator's for every tenant), the
-- events to send (the body fixed in the transaction of the change) and one delivery per
-- endpoint and event.
CREATE TABLE webhooks (
    rk              INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    tenant          INTEGER REFERENCES tenants(rk) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    secret          TEXT NOT NULL,
    old_secret      TEXT,
    old_until       INTEGER,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    failing_since   INTEGER,
    retry_at        INTEGER,
    created         INTEGER NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks(tenant);
CREATE TABLE webhook_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    msg_id          TEXT NOT NULL,
    type            TEXT NOT NULL,
    at              INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE TABLE webhook_deliveries (
    webhook         INTEGER NOT NULL REFERENCES webhooks(rk) ON DELETE CASCADE,
    event           INTEGER NOT NULL REFERENCES webhook_events(seq) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    subject         TEXT NOT NULL,
    state           TEXT NOT NULL,
    due             INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      TEXT,
    done            INTEGER,
    PRIMARY KEY (webhook, event)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, due);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(webhook, subject, event) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event);
