-- Version 5: a generation number per license, bumped by every seat write that changes its
-- waitlist, so waitlist positions can be served from a copy of the order taken at a generation.
ALTER TABLE licenses ADD COLUMN waitlist_gen INTEGER NOT NULL DEFAULT 0;
