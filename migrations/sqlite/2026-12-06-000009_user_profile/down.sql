ALTER TABLE users DROP COLUMN updated_at;
ALTER TABLE users DROP COLUMN preferred_username;
ALTER TABLE users DROP COLUMN family_name;
ALTER TABLE users DROP COLUMN given_name;
ALTER TABLE users DROP COLUMN name;
ALTER TABLE users DROP COLUMN email_verified;
ALTER TABLE users DROP COLUMN email;
