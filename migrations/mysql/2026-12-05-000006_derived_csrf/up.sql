-- Issue 12, point 9: a session's CSRF token is derived from its cookie (HMAC-SHA256 keyed by the
-- cookie's secret, oauth::login), so the database no longer holds anything it can be
-- computed from.
ALTER TABLE sessions DROP COLUMN csrf_secret;
