-- Version 4: the product's usage reports and idle-seat reclaim: when a seat was last used (ms),
-- when its coming reclaim was notified, each license's reclaim settings, and why a seat event
-- happened when it was not the directory or an admin ('idle').
ALTER TABLE seats ADD COLUMN last_used BIGINT;
ALTER TABLE seats ADD COLUMN reclaim_noticed BIGINT;
ALTER TABLE licenses ADD COLUMN reclaim_idle_days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN reclaim_notice_days BIGINT NOT NULL DEFAULT 3;
ALTER TABLE seat_events ADD COLUMN cause TEXT;
