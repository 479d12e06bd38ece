-- Version 8: reservations and ceilings per selected group. A license's selectors keep their
-- order (the first selector whose group contains a user is the group the user counts against)
-- and may carry a reserve and a ceiling; a seat of a license with limits names its pool.
ALTER TABLE license_groups ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
ALTER TABLE license_groups ADD COLUMN reserve BIGINT NOT NULL DEFAULT 0;
ALTER TABLE license_groups ADD COLUMN max_seats BIGINT;
ALTER TABLE seats ADD COLUMN pool TEXT COLLATE "C";
CREATE INDEX seats_pool ON seats(license_rk, pool, state, pinned DESC, entitled_at, user_id) WHERE pool IS NOT NULL;
