-- v16 (both engines): what of each audit chain was exported and pruned (audit_retention_days).
CREATE TABLE audit_retention (
    tenant           INTEGER PRIMARY KEY,                -- a tenant's rk, or the operator's chain
    exported_through INTEGER NOT NULL DEFAULT 0,         -- the newest entry a whole export held
    exported_at      INTEGER,                            -- ms since epoch
    pruned_through   INTEGER NOT NULL DEFAULT 0,         -- the newest entry pruned
    pruned_hash      TEXT                                -- its hash: the next entry's prev_hash
);
