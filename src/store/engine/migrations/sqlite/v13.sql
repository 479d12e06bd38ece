-- Version 13: reservations and ceilings per selected group. A license's selectors keep their
-- order (the first selector whose group contains a user is the group the user counts against)
-- and may carry a reserve and a ceiling; a seat of a license with limits names its pool.
ALTER TABLE license_groups ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE license_groups ADD COLUMN reserve INTEGER NOT NULL DEFAULT 0;
ALTER TABLE license_groups ADD COLUMN max_seats INTEGER;
ALTER TABLE seats ADD COLUMN pool TEXT;
CREATE INDEX seats_pool ON seats(license_rk, pool, state, pinned DESC, entitled_at, user_id) WHERE pool IS NOT NULL;
