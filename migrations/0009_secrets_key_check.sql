-- Which data key encrypted this database's secrets. heph refuses to start with a different key instead of
-- failing later on every secret (or, worse, creating a fresh key next to values it can no longer read).
CREATE TABLE secrets_key (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  key_id      TEXT NOT NULL,                            -- public id of the key (a hash prefix), never the key
  check_value TEXT NOT NULL,                            -- a known plaintext encrypted with it: proves the key, not just its id
  created_at  INTEGER NOT NULL
) STRICT;
