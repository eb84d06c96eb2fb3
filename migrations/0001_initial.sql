-- The first inventory schema. Times are integer milliseconds since the epoch (UTC); JSON columns hold objects.

CREATE TABLE machines (
  id            TEXT PRIMARY KEY,                      -- heph's own id, e.g. m-3fk2x9q1; identifiers below are claims, never keys
  uuid          TEXT UNIQUE,                           -- SMBIOS UUID, canonical lowercase (as iPXE prints ${uuid})
  serial        TEXT,
  hostname      TEXT,
  arch          TEXT,                                  -- x86_64, arm64, … (iPXE ${buildarch} or from DHCP option 93)
  platform      TEXT,                                  -- pcbios, efi
  manufacturer  TEXT,
  product       TEXT,
  vendor_class  TEXT,                                  -- DHCP option 60 as last seen
  state         TEXT NOT NULL DEFAULT 'discovered',    -- lifecycle state (src/boot)
  state_reason  TEXT,
  acceptance    TEXT NOT NULL DEFAULT 'pending' CHECK (acceptance IN ('pending', 'accepted', 'rejected')),
  profile       TEXT,                                  -- explicit assignment; wins over selectors
  labels        TEXT NOT NULL DEFAULT '{}',
  reprovision   INTEGER NOT NULL DEFAULT 0,
  last_ip       TEXT,
  first_seen    INTEGER NOT NULL,
  last_seen     INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX machines_state ON machines (state);
CREATE INDEX machines_last_ip ON machines (last_ip);
CREATE INDEX machines_serial ON machines (serial);

CREATE TABLE nics (
  mac         TEXT PRIMARY KEY,                         -- lowercase aa:bb:cc:dd:ee:ff
  machine_id  TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  last_ip     TEXT,
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL
) STRICT;
CREATE INDEX nics_machine ON nics (machine_id);

CREATE TABLE profiles (
  name        TEXT PRIMARY KEY,
  spec        TEXT NOT NULL,                            -- JSON of the validated profile
  source      TEXT NOT NULL DEFAULT 'api',              -- 'api' or the YAML file it was read from
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE selectors (
  name         TEXT PRIMARY KEY,
  profile      TEXT NOT NULL,
  match        TEXT NOT NULL DEFAULT '{}',              -- JSON: mac, uuid, serial, arch, hostname, labels
  auto_accept  INTEGER NOT NULL DEFAULT 0,
  source       TEXT NOT NULL DEFAULT 'api',
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE timeline (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  machine_id  TEXT REFERENCES machines (id) ON DELETE CASCADE,
  at          INTEGER NOT NULL,
  kind        TEXT NOT NULL,                            -- dhcp.discover, tftp.done, ipxe.script, asset.kernel, config.served, talos.phase, …
  source      TEXT NOT NULL,                            -- dhcp, tftp, http, events, api, cli
  ip          TEXT,
  message     TEXT NOT NULL,
  data        TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX timeline_machine_at ON timeline (machine_id, at);

CREATE TABLE boot_tokens (
  hash           TEXT PRIMARY KEY,                      -- sha256 hex of the token; the token itself is never stored
  machine_id     TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  ip             TEXT NOT NULL,                         -- the IP that fetched the script the token was minted in
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  first_used_at  INTEGER,
  uses           INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX boot_tokens_machine ON boot_tokens (machine_id);

-- Audit rows outlive the machines they mention, so no foreign key.
CREATE TABLE audit (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  actor       TEXT NOT NULL,                            -- machine:<id>, token:<id>, cli, system
  action      TEXT NOT NULL,
  machine_id  TEXT,
  ip          TEXT,
  detail      TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_at ON audit (at);

CREATE TABLE assets (
  id          TEXT PRIMARY KEY,                         -- sha512 hex: content-addressed
  name        TEXT NOT NULL,                            -- e.g. vmlinuz-amd64
  version     TEXT NOT NULL DEFAULT '',                 -- e.g. v1.13.9
  arch        TEXT NOT NULL DEFAULT '',
  kind        TEXT NOT NULL DEFAULT 'other',            -- kernel, initramfs, other
  size        INTEGER NOT NULL,
  path        TEXT NOT NULL,                            -- relative to the data directory
  imported_at INTEGER NOT NULL,
  UNIQUE (version, arch, name)
) STRICT;

CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  hash         TEXT NOT NULL UNIQUE,
  scope        TEXT NOT NULL CHECK (scope IN ('read', 'operator', 'admin')),
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at   INTEGER
) STRICT;
