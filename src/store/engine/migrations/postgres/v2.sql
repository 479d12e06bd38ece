-- Version 2: emails for their recipients. A tenant's time zone and weekly summary, a license's
-- own recipients, and the operator's copies of digests (`operator_notify`).
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE tenants ADD COLUMN weekly_summary TEXT;
ALTER TABLE tenants ADD COLUMN weekly_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN notify TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN copy_of BIGINT;
