-- RFC 8707 resource indicators and the OpenID Connect session id, kept with the code and, for
-- refreshed tokens, with every token of its family (like auth_time in 0008).
-- `resource`: the one resource server a grant is for (an identifier from `[[resources]]`
-- in the settings, so bounded there); NULL: none was asked for.
-- `sid`: the id_token's `sid` (Front-Channel Logout 1.0 §3, Back-Channel Logout 1.0 §2.4),
-- derived from the session that approved the grant; NULL for client credentials and rows
-- from before.
ALTER TABLE authorization_codes ADD COLUMN resource TEXT NULL;
ALTER TABLE authorization_codes ADD COLUMN sid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL;
ALTER TABLE tokens ADD COLUMN resource TEXT NULL;
ALTER TABLE tokens ADD COLUMN sid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL;
