-- seatkeeper database schema (SQLite).
--
-- This is the whole current schema (version 18, `migrate::CURRENT`), applied at start-up to a new
-- database. `PRAGMA user_version` holds the version; src/store/engine/migrate.rs upgrades older
-- databases in place. From version 16 on, one number names one change on both engines: its step
-- is src/store/engine/migrations/shared/vN.sqlite.sql beside vN.postgres.sql (v16: audit
-- retention marks). Before that each engine counted its own steps (here
-- src/store/engine/migrations/sqlite/: v2.sql: licenses and seats; v3.sql: the
-- notification outbox; v4.sql: seat figures on events, tenant admin tokens; v5.sql: waitlist
-- generations; v6.sql: console sessions in the database; v7.sql: time zones, weekly summaries,
-- per-license recipients, operator copies; v8.sql: product tokens; v9.sql: usage reports and
-- idle-seat reclaim; v10.sql: webhooks; v11.sql: the audit hash chain, console session actors; v12.sql: the circuit breaker's holds, capacity planning; v13.sql: reservations and ceilings per group; v14.sql: failing requests and refused tokens counted in the database; v15.sql: console sessions bound to their credential, keyed audit entries). Every row belongs to a tenant: each
-- table carries `tenant` (the tenant's internal key) and every query is scoped by it.
-- Resources keep their SCIM body as JSON in `doc`; the columns beside it are the indexed copies
-- that filters and the seat allocator read.

CREATE TABLE tenants (
    rk          INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,                 -- public id (UUID)
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    notify      TEXT NOT NULL DEFAULT '[]',           -- JSON list of notification recipients
    created     TEXT NOT NULL,
    expected_sync_seconds INTEGER NOT NULL DEFAULT 7200,  -- silence threshold
    pending_window_seconds INTEGER NOT NULL DEFAULT 259200, -- how long pending references wait
    last_provider_call TEXT,
    last_reconcile TEXT,                              -- JSON report of the last pass
    silence_notified INTEGER NOT NULL DEFAULT 0,      -- 1 once a silence was notified, until the next call
    time_zone   TEXT NOT NULL DEFAULT 'UTC',          -- IANA name: the times in its emails
    weekly_summary TEXT,                              -- JSON {day, hour}; NULL: no weekly summary
    weekly_sent INTEGER NOT NULL DEFAULT 0,           -- the last weekly slot (ms) summarized or skipped
    hold_threshold_percent INTEGER NOT NULL DEFAULT 20, -- circuit breaker: losses above this share are held (100: off)
    hold_min_seats INTEGER NOT NULL DEFAULT 10,       -- ... and only from this many losses on
    hold_window_seconds INTEGER NOT NULL DEFAULT 3600, -- ... counted in a window this long from its first loss
    forecast_horizon_days INTEGER NOT NULL DEFAULT 14, -- a forecast run-out within this many days is emailed
    group_names_unique INTEGER NOT NULL DEFAULT 1,    -- 1: a group's displayName is unique in the tenant (case-insensitively)
    closed_at   INTEGER,                              -- ms: offboarded (every credential refused), kept until purge_at
    purge_at    INTEGER,                              -- ms: when its rows are purged
    idp_failure_warn_percent INTEGER NOT NULL DEFAULT 10 -- warn past this share of the provider's requests failing (7 days, 100 failures at least)
);

-- SCIM bearer tokens: only a SHA-256 hash of the token is kept.
CREATE TABLE scim_tokens (
    id          TEXT PRIMARY KEY,                     -- public token id, also part of the token
    tenant      INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    created     TEXT NOT NULL,
    expires     TEXT,
    revoked     TEXT
);
CREATE INDEX scim_tokens_tenant ON scim_tokens(tenant);

-- Console sessions, shared by every process on the database: the SHA-256 of the cookie's random
-- id (the id itself is never stored), the scope (NULL: the operator; else one tenant), the
-- form token, and when it was made and last used (ms).
CREATE TABLE console_sessions (
    id_hash     BLOB PRIMARY KEY,
    tenant      INTEGER REFERENCES tenants(rk) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created     INTEGER NOT NULL,
    seen        INTEGER NOT NULL,
    actor       TEXT,                                 -- who signed in: 'operator' | 'tenant-admin:<id>'
    bound       BLOB                                  -- HMAC-SHA-256 of the credential that signed in, keyed by the session id
) WITHOUT ROWID;
CREATE INDEX console_sessions_tenant ON console_sessions(tenant);

-- Tenant admin tokens (`ska_<id>_<secret>`): the admin API and console, for one tenant only.
CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    tenant      INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    created     TEXT NOT NULL,
    revoked     TEXT
);
CREATE INDEX admin_tokens_tenant ON admin_tokens(tenant);

-- Product tokens (`skp_...`): read and report only. `tenant` NULL: the operator's, for every
-- tenant. Only a SHA-256 hash of the token is kept.
CREATE TABLE product_tokens (
    id          TEXT PRIMARY KEY,
    tenant      INTEGER REFERENCES tenants(rk) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    created     TEXT NOT NULL,
    revoked     TEXT
);
CREATE INDEX product_tokens_tenant ON product_tokens(tenant);

CREATE TABLE users (
    rk              INTEGER PRIMARY KEY,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    id              TEXT NOT NULL,                    -- SCIM id (UUID, server-assigned)
    user_name       TEXT NOT NULL,
    user_name_key   TEXT NOT NULL,                    -- lowercased: unique per tenant
    external_id     TEXT,
    display_name_key TEXT,
    active          INTEGER NOT NULL,
    doc             TEXT NOT NULL,
    created         TEXT NOT NULL,
    last_modified   TEXT NOT NULL,
    version         INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_id ON users(tenant, id);
CREATE UNIQUE INDEX users_user_name ON users(tenant, user_name_key);
CREATE INDEX users_external_id ON users(tenant, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_display_name ON users(tenant, display_name_key) WHERE display_name_key IS NOT NULL;

CREATE TABLE user_emails (
    user_rk     INTEGER NOT NULL REFERENCES users(rk) ON DELETE CASCADE,
    tenant      INTEGER NOT NULL,
    value_key   TEXT NOT NULL,                        -- lowercased email value
    PRIMARY KEY (user_rk, value_key)
) WITHOUT ROWID;
CREATE INDEX user_emails_value ON user_emails(tenant, value_key);

CREATE TABLE groups (
    rk              INTEGER PRIMARY KEY,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    external_id     TEXT,
    doc             TEXT NOT NULL,
    created         TEXT NOT NULL,
    last_modified   TEXT NOT NULL,
    version         INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_id ON groups(tenant, id);
CREATE INDEX groups_display_name ON groups(tenant, display_name_key);
CREATE INDEX groups_external_id ON groups(tenant, external_id) WHERE external_id IS NOT NULL;

-- Group membership as the provider sent it. `member_id` is the SCIM id of a User or Group and
-- may name one not provisioned yet (a pending reference, resolved when it arrives).
CREATE TABLE group_members (
    group_rk    INTEGER NOT NULL REFERENCES groups(rk) ON DELETE CASCADE,
    tenant      INTEGER NOT NULL,
    member_id   TEXT NOT NULL,
    member_type TEXT,
    display     TEXT,
    added       TEXT NOT NULL,
    PRIMARY KEY (group_rk, member_id)
) WITHOUT ROWID;
CREATE INDEX group_members_member ON group_members(tenant, member_id);

-- Licenses, selection, overrides, seats, the seat-event feed and the audit log.

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
    updated         TEXT NOT NULL,
    alert_level     INTEGER NOT NULL DEFAULT 0,          -- last capacity threshold notified: 0, 90 or 100
    waitlist_gen    INTEGER NOT NULL DEFAULT 0,          -- bumped by every seat write that changes the waitlist
    notify          TEXT NOT NULL DEFAULT '[]',          -- JSON recipients of this license's events, besides the tenant's
    reclaim_idle_days INTEGER NOT NULL DEFAULT 0,        -- a granted seat unused this long is reclaimed (0: never)
    reclaim_notice_days INTEGER NOT NULL DEFAULT 3,      -- the recipients are told this long before
    loss_since      INTEGER,                             -- ms: the current window of directory-made seat losses opened
    loss_base       INTEGER NOT NULL DEFAULT 0,          -- granted seats as it opened
    losses          INTEGER NOT NULL DEFAULT 0,          -- losses it let through (the circuit breaker holds the rest)
    overage         INTEGER NOT NULL DEFAULT 0,          -- agreed extra seats (or:)
    overage_percent INTEGER NOT NULL DEFAULT 0,          -- ... extra seats as a share of `seats`
    overage_notified INTEGER NOT NULL DEFAULT 0,         -- 1 once use above `seats` was notified, until it falls back
    runout_notified INTEGER NOT NULL DEFAULT 0,          -- 1 once a run-out inside the horizon was notified, until it is not
    mode            TEXT NOT NULL DEFAULT 'enforce'      -- 'enforce' | 'observe' (shadow mode: nothing enforced outward)
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
    position        INTEGER NOT NULL DEFAULT 0,          -- the selector's place in the license's `groups`
    reserve         INTEGER NOT NULL DEFAULT 0,          -- seats kept for this group's members
    max_seats       INTEGER,                             -- at most this many seats for them (NULL: no ceiling)
    PRIMARY KEY (license_rk, selector, value)
) WITHOUT ROWID;
CREATE INDEX license_groups_group ON license_groups(tenant, group_id);

CREATE TABLE overrides (
    license_rk      INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,                       -- 'pin' | 'exclude' | 'idle'
    created         TEXT NOT NULL,
    set_by          TEXT,                                -- the actor who set it (NULL: before v15)
    PRIMARY KEY (license_rk, user_id)
) WITHOUT ROWID;

-- The people who held a seat before the license was enforced (shadow mode's cut-over), in the
-- order the admin gave them: served first when the license switches to enforce, then deleted.
CREATE TABLE carried_holders (
    license_rk      INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant          INTEGER NOT NULL,
    user_id         TEXT NOT NULL,
    position        INTEGER NOT NULL,                    -- 1, 2, ...: the order given
    PRIMARY KEY (license_rk, user_id)
) WITHOUT ROWID;
CREATE INDEX carried_holders_order ON carried_holders(license_rk, position);

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
    last_used       INTEGER,                             -- ms: the product's last reported use (POST /product/v1/.../usage)
    reclaim_noticed INTEGER,                             -- ms: when the coming idle reclaim was notified (cleared by a use)
    hold            INTEGER,                             -- holds.rk: the user lost the entitlement, the breaker holds the loss
    hold_loss       TEXT,                                -- what took it: 'deactivated', 'deleted', 'removed:<group>', ...
    pool            TEXT,                                -- the selected group the seat counts against (licenses with limits)
    PRIMARY KEY (license_rk, user_id)
) WITHOUT ROWID;
CREATE INDEX seats_order ON seats(license_rk, state, pinned DESC, entitled_at, user_id);
CREATE INDEX seats_user ON seats(tenant, user_id);
CREATE INDEX seats_release ON seats(license_rk, release_at) WHERE release_at IS NOT NULL;
CREATE INDEX seats_held ON seats(license_rk, hold) WHERE hold IS NOT NULL;
CREATE INDEX seats_pool ON seats(license_rk, pool, state, pinned DESC, entitled_at, user_id) WHERE pool IS NOT NULL;

-- Circuit-breaker holds: directory-made seat losses of a license held back until an admin
-- approves or rejects them (or the directory undoes them). One open hold per license.
CREATE TABLE holds (
    rk          INTEGER PRIMARY KEY,                     -- also the public id
    tenant      INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    license_rk  INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    state       TEXT NOT NULL,                           -- 'open' | 'approved' | 'rejected' | 'dissolved'
    created     INTEGER NOT NULL,                        -- ms
    held        INTEGER NOT NULL DEFAULT 0,              -- seats it holds now
    total       INTEGER NOT NULL DEFAULT 0,              -- losses it ever held
    changes     TEXT NOT NULL DEFAULT '{}',              -- JSON {loss: count}: the changes that caused it
    decided     INTEGER,                                 -- ms
    decided_by  TEXT,                                    -- the audit actor who decided
    window_since INTEGER                                 -- ms: the window of directory-made losses it tripped in opened
);
CREATE INDEX holds_tenant ON holds(tenant, rk);
CREATE UNIQUE INDEX holds_open ON holds(license_rk) WHERE state = 'open';

-- A license's daily history (UTC days since the epoch): the true-up and the forecast read it.
-- One row per license and day with a seat change or a setting change; a day without one
-- repeats the end of the day before. Written by the allocator's flush, so it costs one upsert
-- per license per write job.
CREATE TABLE license_days (
    license_rk  INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant      INTEGER NOT NULL,
    day         INTEGER NOT NULL,                        -- days since 1970-01-01 (UTC)
    seats       INTEGER NOT NULL,                        -- at the day's end
    overage     INTEGER NOT NULL,                        -- extra seats allowed at the day's end
    peak_in_use INTEGER NOT NULL,
    peak_demand INTEGER NOT NULL,                        -- in use + waiting
    peak_over   INTEGER NOT NULL,                        -- most seats in use above `seats` at any moment
    last_in_use INTEGER NOT NULL,
    last_demand INTEGER NOT NULL,
    PRIMARY KEY (license_rk, day)
) WITHOUT ROWID;

-- The ordered feed of seat changes; `seq` is the cursor.
CREATE TABLE seat_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          INTEGER NOT NULL,
    license_rk      INTEGER NOT NULL,
    license_id      TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    user_name       TEXT,
    event           TEXT NOT NULL,
    at              INTEGER NOT NULL,
    in_use          INTEGER,                             -- the license's granted + releasing right after
    waiting         INTEGER,                             -- and its blocked count (the usage chart)
    cause           TEXT                                 -- why, when not the directory or an admin: 'idle' (reclaimed)
);
CREATE INDEX seat_events_tenant ON seat_events(tenant, seq);
CREATE INDEX seat_events_license ON seat_events(license_rk, seq);

CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          INTEGER NOT NULL,
    at              INTEGER NOT NULL,                    -- ms since epoch
    actor           TEXT NOT NULL,                       -- 'operator' | 'tenant-admin:<id>' | 'console:...' | 'cli:<user>' | 'reconciler'
    action          TEXT NOT NULL,
    detail          TEXT NOT NULL,                       -- JSON
    prev_hash       TEXT,                                -- the tenant's previous entry's hash (store/audit.rs)
    hash            TEXT,                                -- SHA-256 (or HMAC-SHA-256, see key_id) of this entry and prev_hash
    key_id          TEXT                                 -- NULL: SHA-256; else the fingerprint of the audit key
);
CREATE INDEX audit_tenant ON audit(tenant, seq);

-- What of each audit chain was exported and pruned (audit_retention_days); pruned_hash is the
-- hash the next kept entry links to.
CREATE TABLE audit_retention (
    tenant           INTEGER PRIMARY KEY,                -- a tenant's rk, or the operator's chain
    exported_through INTEGER NOT NULL DEFAULT 0,         -- the newest entry a whole export held
    exported_at      INTEGER,                            -- ms since epoch
    pruned_through   INTEGER NOT NULL DEFAULT 0,         -- the newest entry pruned
    pruned_hash      TEXT                                -- its hash: the next entry's prev_hash
);

-- The notification outbox. Events are written here in the transaction of the change that caused
-- them. Events of one kind for one tenant (and license) collect into one open digest
-- (state 'collecting', `due` = end of the digest window); the sender then closes it ('closing'),
-- renders the message once ('pending', `due` = next attempt) and sends it ('sent', 'failed', or
-- 'skipped' when the tenant has no recipients). `message` is the exact RFC 5322 message, so a
-- retry sends the same bytes with the same Message-ID.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    kind            TEXT NOT NULL,                       -- blocked | threshold | capacity_lowered | ...
    license_rk      INTEGER NOT NULL DEFAULT 0,          -- 0: not about one license
    license_name    TEXT,
    state           TEXT NOT NULL,                       -- collecting | closing | pending | sent | failed | skipped
    created         INTEGER NOT NULL,                    -- ms since epoch
    due             INTEGER NOT NULL,                    -- window end, then next attempt (ms)
    items           INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    recipients      TEXT,                                -- JSON list, fixed when the digest closes
    subject         TEXT,
    message_id      TEXT NOT NULL,
    message         BLOB,
    sent            INTEGER,
    copy_of         INTEGER                              -- the operator's copy of this row (NULL: the tenant's message)
);
CREATE UNIQUE INDEX outbox_open ON outbox(tenant, kind, license_rk) WHERE state = 'collecting';
CREATE INDEX outbox_due ON outbox(state, due);
CREATE INDEX outbox_tenant ON outbox(tenant, id);

-- What a digest lists: one row per event (a blocked user, a crossing, an expired reference...).
CREATE TABLE outbox_items (
    outbox_id       INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    detail          TEXT NOT NULL,                       -- JSON
    PRIMARY KEY (outbox_id, seq)
) WITHOUT ROWID;

-- Webhook endpoints (Standard Webhooks). `tenant` NULL: the operator's, for every tenant. The
-- secret is kept as given out (signing needs the key); after a rotation the old one keeps
-- signing beside the new one until `old_until` (ms). `events`: JSON list of subscribed types.
-- `failing_since`: the first failure since the last success; `retry_at`: no attempt before.
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

-- The webhook outbox: one row per event, its body fixed in the transaction of the change.
CREATE TABLE webhook_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    msg_id          TEXT NOT NULL,                       -- webhook-id: the same on every attempt
    type            TEXT NOT NULL,
    at              INTEGER NOT NULL,
    body            TEXT NOT NULL
);
-- One delivery per endpoint and event: 'pending' (next attempt at `due`), 'delivered' or
-- 'failed' (refused for good; can be redelivered). Deliveries of one `subject` (a user's id,
-- or a license's) to one endpoint go in event order.
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

-- Failed SCIM requests of each tenant within the alert window (`scim_failure_window_seconds`),
-- counted here rather than in a node's memory so that every node's share adds up
-- (`store::alerts`).
CREATE TABLE scim_failures (
    id          INTEGER PRIMARY KEY,
    tenant_rk   INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    at          INTEGER NOT NULL,                     -- ms
    label       TEXT NOT NULL                         -- status, error type and route
);
CREATE INDEX scim_failures_tenant ON scim_failures(tenant_rk, at);
-- The identity provider's failing requests (4xx but a 404 on a read, every 5xx), one row per
-- kind of failure (method, route, status, scimType, detail) with how often it repeated, kept a
-- week; its requests and failures per hour (the failure rate its quarantine rule judges).
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
-- When a tenant's alert of one kind was last recorded, and how many events since are in no
-- notification yet: `failures` (failing requests) or `refused <token id>` (a token's refusals).
CREATE TABLE alert_marks (
    tenant_rk   INTEGER NOT NULL REFERENCES tenants(rk) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    at          INTEGER NOT NULL,                     -- ms, when last recorded
    unrecorded  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_rk, name)
);
