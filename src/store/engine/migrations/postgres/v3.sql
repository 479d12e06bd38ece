-- Version 3: product tokens (`skp_...`), read and report only; `tenant` NULL: the operator's.
CREATE TABLE product_tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    tenant      BIGINT REFERENCES tenants(rk) ON DELETE CASCADE,
    hash        BYTEA NOT NULL,
    created     TEXT COLLATE "C" NOT NULL,
    revoked     TEXT COLLATE "C"
);
CREATE INDEX product_tokens_tenant ON product_tokens(tenant);
