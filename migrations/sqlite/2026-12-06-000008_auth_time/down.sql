ALTER TABLE tokens DROP COLUMN auth_time;
ALTER TABLE authorization_codes DROP COLUMN auth_time;
