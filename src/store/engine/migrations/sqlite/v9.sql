-- Version 9: the product's usage reports and idle-seat reclaim: when a seat was last used (ms),
-- when its coming reclaim was notified, each license's reclaim settings, and why a seat event
-- happened when it was not the directory or an admin ('idle').
ALTER TABLE seats ADD COLUMN last_used INTEGER;
ALTER TABLE seats ADD COLUMN reclaim_noticed INTEGER;
ALTER TABLE licenses ADD COLUMN reclaim_idle_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN reclaim_notice_days INTEGER NOT NULL DEFAULT 3;
ALTER TABLE seat_events ADD COLUMN cause TEXT;
