ALTER TABLE users
    DROP COLUMN updated_at,
    DROP COLUMN preferred_username,
    DROP COLUMN family_name,
    DROP COLUMN given_name,
    DROP COLUMN name,
    DROP COLUMN email_verified,
    DROP COLUMN email;
