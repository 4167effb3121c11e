DROP TABLE throttle_events;
DROP TABLE consents;
DROP TABLE tokens;
DROP TABLE authorization_codes;
DROP TABLE sessions;
DROP TABLE clients;
DROP TABLE users;
