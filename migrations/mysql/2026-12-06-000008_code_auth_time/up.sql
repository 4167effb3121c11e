-- When the user signed in for the session that approved the code: the id_token's auth_time
-- (OpenID Connect Core 1.0 §2), so it survives the session. NULL for codes from before.
ALTER TABLE authorization_codes ADD COLUMN auth_time BIGINT NULL;
