-- The old code reads a per-session secret that no longer exists: the sessions end (everyone
-- signs in again) rather than get a guessable one.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN csrf_secret BINARY(32) NOT NULL AFTER user_id;
