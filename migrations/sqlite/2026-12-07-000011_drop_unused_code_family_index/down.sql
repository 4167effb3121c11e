CREATE INDEX ix_codes_family_id ON authorization_codes (family_id);
