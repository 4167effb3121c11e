-- What the profile and email scopes release (OpenID Connect Core 1.0 §5.1, §5.4). NULL is
-- "not set"; preferred_username NULL means the username. updated_at starts as the creation
-- time. Lengths are checked by the server before they reach here (accounts::Profile).
ALTER TABLE users ADD COLUMN email TEXT NULL;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN name TEXT NULL;
ALTER TABLE users ADD COLUMN given_name TEXT NULL;
ALTER TABLE users ADD COLUMN family_name TEXT NULL;
ALTER TABLE users ADD COLUMN preferred_username TEXT NULL;
ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE users SET updated_at = created_at;
