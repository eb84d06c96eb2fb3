-- Indexes for statements that run on every boot (found with EXPLAIN QUERY PLAN over a 1000-machine storm).

-- Minting a boot token also purges the expired ones (expires_at < now). Without an index on expires_at the whole
-- OR could not use an index at all: every mint scanned every token, so a storm's cost grew with its square.
CREATE INDEX boot_tokens_expires ON boot_tokens (expires_at);

-- "The machine last seen at this address" (each /ipxe, config fetch and Talos event) reads the newest row for an
-- IP straight from the index instead of sorting the matches.
DROP INDEX machines_last_ip;
CREATE INDEX machines_last_ip ON machines (last_ip, last_seen);

-- A machine is read with its MACs in the order they were first seen: from the index, already in that order.
DROP INDEX nics_machine;
CREATE INDEX nics_machine ON nics (machine_id, first_seen, mac);
