-- Initial schema. Times are unix seconds; secrets are SHA-256 digests (32-byte BLOBs).

CREATE TABLE users (
    id TEXT NOT NULL,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CONSTRAINT pk_users PRIMARY KEY (id),
    CONSTRAINT uq_users_username UNIQUE (username)
);

CREATE TABLE clients (
    client_id TEXT NOT NULL,
    secret_hash BLOB NULL,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    registration_access_token_hash BLOB NULL,
    access_token_ttl BIGINT NULL,
    refresh_token_ttl BIGINT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT pk_clients PRIMARY KEY (client_id)
);

CREATE TABLE sessions (
    id_hash BLOB NOT NULL,
    user_id TEXT NOT NULL,
    csrf_secret BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT pk_sessions PRIMARY KEY (id_hash),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_sessions_expires_at ON sessions (expires_at);
CREATE INDEX ix_sessions_user_id ON sessions (user_id);

CREATE TABLE authorization_codes (
    code_hash BLOB NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_explicit BOOLEAN NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT NULL,
    code_challenge_method TEXT NULL,
    nonce TEXT NULL,
    family_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    CONSTRAINT pk_authorization_codes PRIMARY KEY (code_hash),
    CONSTRAINT fk_codes_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE,
    CONSTRAINT fk_codes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_codes_expires_at ON authorization_codes (expires_at);
CREATE INDEX ix_codes_family_id ON authorization_codes (family_id);

CREATE TABLE tokens (
    token_hash BLOB NOT NULL,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NULL,
    scope TEXT NOT NULL,
    family_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    revoked_at BIGINT NULL,
    CONSTRAINT pk_tokens PRIMARY KEY (token_hash),
    CONSTRAINT fk_tokens_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE,
    CONSTRAINT fk_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_tokens_expires_at ON tokens (expires_at);
CREATE INDEX ix_tokens_family_id ON tokens (family_id);

CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    CONSTRAINT pk_consents PRIMARY KEY (user_id, client_id),
    CONSTRAINT fk_consents_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_consents_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE
);
CREATE INDEX ix_consents_client_id ON consents (client_id);

CREATE TABLE throttle_events (
    id INTEGER NOT NULL,
    subject TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    CONSTRAINT pk_throttle_events PRIMARY KEY (id)
);
CREATE INDEX ix_throttle_events_subject ON throttle_events (subject, occurred_at);
CREATE INDEX ix_throttle_events_occurred_at ON throttle_events (occurred_at);
