-- v16 (both engines): what of each audit chain was exported and pruned (audit_retention_days).
CREATE TABLE audit_retention (
    tenant           BIGINT PRIMARY KEY,
    exported_through BIGINT NOT NULL DEFAULT 0,
    exported_at      BIGINT,
    pruned_through   BIGINT NOT NULL DEFAULT 0,
    pruned_hash      TEXT
);
