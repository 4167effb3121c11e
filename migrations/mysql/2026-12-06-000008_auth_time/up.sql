-- When the user signed in for the session that approved the grant: the id_token's auth_time
-- (OpenID Connect Core 1.0 §2), kept with the code and, for the refreshed id_tokens of
-- §12.2, with every token of its family. NULL where it was not recorded (client
-- credentials, rows from before).
ALTER TABLE authorization_codes ADD COLUMN auth_time BIGINT NULL;
ALTER TABLE tokens ADD COLUMN auth_time BIGINT NULL;
