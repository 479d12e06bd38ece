-- Version 4: when the product last reported a seat used (ms), for idle-seat reclaim.
ALTER TABLE seats ADD COLUMN last_used BIGINT;
