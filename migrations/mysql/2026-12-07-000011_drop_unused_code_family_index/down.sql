ALTER TABLE authorization_codes ADD INDEX ix_codes_family_id (family_id);
