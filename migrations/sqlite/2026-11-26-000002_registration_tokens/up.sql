-- Initial access tokens for dynamic client registration (RFC 7591 §3), stored as SHA-256.
CREATE TABLE registration_tokens (
    token_hash BLOB NOT NULL,
    uses_left BIGINT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    CONSTRAINT pk_registration_tokens PRIMARY KEY (token_hash)
);
CREATE INDEX ix_registration_tokens_expires_at ON registration_tokens (expires_at);
