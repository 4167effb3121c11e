-- Keep what parent_hash recorded: a code or refresh token with a successor is marked used.
UPDATE authorization_codes
    SET consumed_at = (SELECT t.created_at FROM tokens t WHERE t.parent_hash = authorization_codes.code_hash)
    WHERE consumed_at IS NULL
      AND EXISTS (SELECT 1 FROM tokens t WHERE t.parent_hash = authorization_codes.code_hash);
UPDATE tokens
    SET consumed_at = (SELECT t.created_at FROM tokens t WHERE t.parent_hash = tokens.token_hash)
    WHERE consumed_at IS NULL
      AND EXISTS (SELECT 1 FROM tokens t WHERE t.parent_hash = tokens.token_hash);
DROP INDEX ux_tokens_parent_hash;
ALTER TABLE tokens DROP COLUMN parent_hash;
