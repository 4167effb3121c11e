-- A code or refresh token is used once. Instead of marking it used (an UPDATE inside a
-- transaction with the INSERT of what it issued), the token issued for it records its hash in
-- parent_hash; the unique index lets only one such row exist, so a redemption or rotation is
-- one INSERT statement. consumed_at stays for rows used before this migration.
ALTER TABLE tokens
    ADD COLUMN parent_hash BINARY(32) NULL,
    ADD CONSTRAINT ux_tokens_parent_hash UNIQUE (parent_hash);
