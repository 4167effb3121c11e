ALTER TABLE tokens DROP COLUMN sid;
ALTER TABLE tokens DROP COLUMN resource;
ALTER TABLE authorization_codes DROP COLUMN sid;
ALTER TABLE authorization_codes DROP COLUMN resource;
