-- The old code reads a per-session secret that no longer exists: the sessions end (everyone
-- signs in again) rather than get a guessable one. SQLite needs a default for a NOT NULL
-- column added to a table; the table is empty.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN csrf_secret BLOB NOT NULL DEFAULT x'';
