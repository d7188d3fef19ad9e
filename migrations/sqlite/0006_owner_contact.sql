-- How to reach the agency system that owns a fact, recorded when it is published, so an
-- indicator always carries a contact route even when the owner has no involvement with
-- the persons the fact names.
ALTER TABLE record ADD COLUMN owner_contact TEXT NOT NULL DEFAULT '';
