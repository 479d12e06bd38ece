-- Version 8: product tokens (`skp_...`), read and report only; `tenant` NULL: the operator's.
CREATE TABLE product_tokens (
    id          TEXT PRIMARY KEY,
    tenant      INTEGER REFERENCES tenants(rk) ON DELETE CASCADE,
    hash        BLOB NOT NULL,
    created     TEXT NOT NULL,
    revoked     TEXT
);
CREATE INDEX product_tokens_tenant ON product_tokens(tenant);
