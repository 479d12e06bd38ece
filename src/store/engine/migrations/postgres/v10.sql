-- Version 10: each user's group references kept on the user's row, by triggers.
ALTER TABLE users ADD COLUMN group_refs TEXT[] NOT NULL DEFAULT '{}';
-- Room on each page for HOT updates of group_refs (pages written from now on).
ALTER TABLE users SET (fillfactor = 80);
-- Each user's group references ("{group id} {display name}", as a user is answered) kept on its
-- row in `users.group_refs`, so that the hot reads (a user by id, a `userName eq` filter) are one
-- index lookup instead of a join over the memberships. These triggers keep the column whichever
-- node, release or statement changes a membership (added, removed, a group or user deleted) or
-- renames a group; the store never writes it.
CREATE FUNCTION group_refs_of(t BIGINT, member TEXT) RETURNS TEXT[] LANGUAGE sql STABLE AS $$
    SELECT ARRAY(SELECT g.id || ' ' || g.display_name FROM group_members m JOIN groups g ON g.rk = m.group_rk
                 WHERE m.tenant = t AND m.member_id = member)
$$;
CREATE FUNCTION refresh_group_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users r SET group_refs = group_refs_of(r.tenant, r.id)
    FROM (SELECT DISTINCT tenant, member_id FROM changed) c
    WHERE r.tenant = c.tenant AND r.id = c.member_id;
    RETURN NULL;
END $$;
CREATE TRIGGER group_members_added AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION refresh_group_refs();
CREATE TRIGGER group_members_removed AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION refresh_group_refs();
CREATE FUNCTION refresh_group_refs_of_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users r SET group_refs = group_refs_of(r.tenant, r.id)
    FROM group_members c
    WHERE c.group_rk = NEW.rk AND r.tenant = c.tenant AND r.id = c.member_id;
    RETURN NULL;
END $$;
CREATE TRIGGER groups_renamed AFTER UPDATE OF display_name ON groups FOR EACH ROW
    WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name) EXECUTE FUNCTION refresh_group_refs_of_renamed();
UPDATE users r SET group_refs = group_refs_of(r.tenant, r.id)
WHERE EXISTS (SELECT 1 FROM group_members m WHERE m.tenant = r.tenant AND m.member_id = r.id);
