-- Identifier and username columns get NO PAD binary collations. The binary collations of the
-- initial schema are PAD SPACE, under which 'pad' = 'pad ' (trailing spaces ignored in
-- comparisons and unique keys), while SQLite compares the bytes. InnoDB refuses to change the
-- collation of a column a foreign key uses, so the keys are dropped and re-created around it.
-- The username first: it is no foreign key, and if it fails (down: two names differing only
-- in trailing spaces) nothing else has changed.
ALTER TABLE users MODIFY username VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE sessions DROP FOREIGN KEY fk_sessions_user;
ALTER TABLE authorization_codes DROP FOREIGN KEY fk_codes_client;
ALTER TABLE authorization_codes DROP FOREIGN KEY fk_codes_user;
ALTER TABLE tokens DROP FOREIGN KEY fk_tokens_client;
ALTER TABLE tokens DROP FOREIGN KEY fk_tokens_user;
ALTER TABLE consents DROP FOREIGN KEY fk_consents_user;
ALTER TABLE consents DROP FOREIGN KEY fk_consents_client;
ALTER TABLE users
    MODIFY id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL;
ALTER TABLE clients
    MODIFY client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL;
ALTER TABLE sessions
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL;
ALTER TABLE authorization_codes
    MODIFY client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY family_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL;
ALTER TABLE tokens
    MODIFY kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
    MODIFY family_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL;
ALTER TABLE consents
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL;
ALTER TABLE throttle_events
    MODIFY subject VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE authorization_codes ADD CONSTRAINT fk_codes_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE;
ALTER TABLE authorization_codes ADD CONSTRAINT fk_codes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE tokens ADD CONSTRAINT fk_tokens_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE;
ALTER TABLE tokens ADD CONSTRAINT fk_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE consents ADD CONSTRAINT fk_consents_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE consents ADD CONSTRAINT fk_consents_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE;
