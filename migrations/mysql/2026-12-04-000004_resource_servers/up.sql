-- Only clients an operator marks as resource servers may call the introspection endpoint
-- (RFC 7662 §4, RFC 9700 §2.3): an introspection answer names the user, and any client able to
-- register itself could otherwise read it for any token it got hold of.
ALTER TABLE clients ADD COLUMN resource_server BOOLEAN NOT NULL DEFAULT FALSE;
