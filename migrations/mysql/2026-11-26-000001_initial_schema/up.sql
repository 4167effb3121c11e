-- Initial schema. Times are unix seconds (BIGINT); secrets are SHA-256 digests (BINARY(32)).
-- Identifiers use ascii_bin / utf8mb4_bin so lookups are case-sensitive, as on SQLite.

CREATE TABLE users (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username VARCHAR(191) COLLATE utf8mb4_bin NOT NULL,
    password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    CONSTRAINT pk_users PRIMARY KEY (id),
    CONSTRAINT uq_users_username UNIQUE (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE clients (
    client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    secret_hash BINARY(32) NULL,
    name VARCHAR(255) NOT NULL,
    redirect_uris TEXT NOT NULL,
    grant_types VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope TEXT NOT NULL,
    token_endpoint_auth_method VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    registration_access_token_hash BINARY(32) NULL,
    access_token_ttl BIGINT NULL,
    refresh_token_ttl BIGINT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT pk_clients PRIMARY KEY (client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id_hash BINARY(32) NOT NULL,
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    csrf_secret BINARY(32) NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT pk_sessions PRIMARY KEY (id_hash),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    INDEX ix_sessions_expires_at (expires_at),
    INDEX ix_sessions_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE authorization_codes (
    code_hash BINARY(32) NOT NULL,
    client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_explicit BOOLEAN NOT NULL,
    scope TEXT NOT NULL,
    code_challenge VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
    code_challenge_method VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NULL,
    nonce VARCHAR(255) NULL,
    family_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    CONSTRAINT pk_authorization_codes PRIMARY KEY (code_hash),
    CONSTRAINT fk_codes_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE,
    CONSTRAINT fk_codes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    INDEX ix_codes_expires_at (expires_at),
    INDEX ix_codes_family_id (family_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tokens (
    token_hash BINARY(32) NOT NULL,
    kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    scope TEXT NOT NULL,
    family_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    revoked_at BIGINT NULL,
    CONSTRAINT pk_tokens PRIMARY KEY (token_hash),
    CONSTRAINT fk_tokens_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE,
    CONSTRAINT fk_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    INDEX ix_tokens_expires_at (expires_at),
    INDEX ix_tokens_family_id (family_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE consents (
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    client_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    CONSTRAINT pk_consents PRIMARY KEY (user_id, client_id),
    CONSTRAINT fk_consents_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_consents_client FOREIGN KEY (client_id) REFERENCES clients (client_id) ON DELETE CASCADE,
    INDEX ix_consents_client_id (client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE throttle_events (
    id BIGINT NOT NULL AUTO_INCREMENT,
    subject VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    occurred_at BIGINT NOT NULL,
    CONSTRAINT pk_throttle_events PRIMARY KEY (id),
    INDEX ix_throttle_events_subject (subject, occurred_at),
    INDEX ix_throttle_events_occurred_at (occurred_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
