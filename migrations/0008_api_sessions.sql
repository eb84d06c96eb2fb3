-- Web-page logins. A session is bought with an API token and carries that token's scope; revoking the token
-- ends its sessions. Only hashes of the cookie value are stored.

CREATE TABLE api_sessions (
  hash        TEXT PRIMARY KEY,                       -- sha256 hex of the session cookie value
  token_id    TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
  csrf        TEXT NOT NULL,                          -- synchronizer token the page echoes in X-CSRF-Token
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX api_sessions_expires ON api_sessions (expires_at);

-- Paging and filtering the machine table with 10k rows.
CREATE INDEX machines_first_seen ON machines (first_seen, id);
CREATE INDEX machines_last_seen ON machines (last_seen, id);
CREATE INDEX machines_profile ON machines (profile);
CREATE INDEX machines_hostname ON machines (hostname);
