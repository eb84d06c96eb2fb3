-- What Talos machines report back: gRPC sink events and kernel log lines. Both tables are bounded per machine by
-- the events service (grpc.keepPerMachine, kmsg.keepPerMachine). Rows from an IP no machine is known at keep
-- machine_id NULL and are shown with their IP.

CREATE TABLE talos_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id    TEXT UNIQUE,                               -- Talos's rs/xid; a replay after reconnect repeats it
  machine_id  TEXT REFERENCES machines (id) ON DELETE CASCADE,
  ip          TEXT NOT NULL,                             -- TCP peer of the gRPC call: the only node identity Talos sends
  at          INTEGER NOT NULL,                          -- when heph received it
  type        TEXT NOT NULL,                             -- e.g. machine.SequenceEvent; unknown types are kept too
  actor_id    TEXT NOT NULL DEFAULT '',
  data        TEXT NOT NULL DEFAULT '{}'                 -- the decoded payload as JSON ({} for unknown types)
) STRICT;
CREATE INDEX talos_events_machine ON talos_events (machine_id, id);
CREATE INDEX talos_events_ip ON talos_events (ip, id);

CREATE TABLE kmsg (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  machine_id  TEXT REFERENCES machines (id) ON DELETE CASCADE,
  ip          TEXT NOT NULL,
  at          INTEGER NOT NULL,                          -- when heph received it
  seq         INTEGER,                                   -- kmsg sequence number
  clock       INTEGER,                                   -- microseconds since the machine booted
  facility    TEXT,
  priority    TEXT,
  talos_time  TEXT,                                      -- RFC 3339 time stamped by Talos
  service     TEXT,                                      -- talos-service, when a service log is sent here
  msg         TEXT NOT NULL
) STRICT;
CREATE INDEX kmsg_machine ON kmsg (machine_id, id);
CREATE INDEX kmsg_ip ON kmsg (ip, id);
