-- v18 (both engines): a license observes (shadow mode) or enforces; the people who held a seat
-- before the license was enforced, carried over in the order the admin gave them; a hold's window
-- of directory-made losses (the people released in it before the breaker tripped).
ALTER TABLE licenses ADD COLUMN mode TEXT NOT NULL DEFAULT 'enforce';
CREATE TABLE carried_holders (
    license_rk  INTEGER NOT NULL REFERENCES licenses(rk) ON DELETE CASCADE,
    tenant      INTEGER NOT NULL,
    user_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,                     -- 1, 2, ...: the order given
    PRIMARY KEY (license_rk, user_id)
) WITHOUT ROWID;
CREATE INDEX carried_holders_order ON carried_holders(license_rk, position);
ALTER TABLE holds ADD COLUMN window_since INTEGER;
