-- Keep what parent_hash recorded: a code or refresh token with a successor is marked used.
UPDATE authorization_codes c
    JOIN tokens t ON t.parent_hash = c.code_hash
    SET c.consumed_at = t.created_at
    WHERE c.consumed_at IS NULL;
UPDATE tokens p
    JOIN tokens t ON t.parent_hash = p.token_hash
    SET p.consumed_at = t.created_at
    WHERE p.consumed_at IS NULL;
ALTER TABLE tokens
    DROP INDEX ux_tokens_parent_hash,
    DROP COLUMN parent_hash;
