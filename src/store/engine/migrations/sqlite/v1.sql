-- Schema version 1 as it shipped: kept to test the migration to the current schema.
CREATE TABLE tenants (
    rk          INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,                 -- public id (UUID)
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    notify      TEXT NOT NULL DEFAULT '[]',           -- JSON list of notification recipients
    created     TEXT NOT NULL
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
