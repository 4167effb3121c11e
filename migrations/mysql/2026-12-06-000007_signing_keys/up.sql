-- Signing keys for id_tokens and JWT access tokens (issue 11), shared by every node. The
-- private key is a PKCS#8 document sealed with AES-256-GCM under keys.encryption_key: the
-- column holds the 12-byte nonce, then the ciphertext and its tag. The lifecycle is in the
-- times: published from created_at, signing from activates_at until a newer key of the same
-- algorithm activates or retired_at, published for keys.retired_publish_secs after that.
CREATE TABLE signing_keys (
    kid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    alg VARCHAR(16) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at BIGINT NULL,
    CONSTRAINT pk_signing_keys PRIMARY KEY (kid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
