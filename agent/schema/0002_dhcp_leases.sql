-- 0002: DHCP leases.
--
-- One row per address: its current (or last) holder and state. A renewal
-- updates the row in place and keeps its lease id; a new client on the same
-- address gets a new id. Offers are never stored (they live in memory for
-- a few seconds). The agent loads every row into its in-memory index at
-- start, so the hot path never queries this table.
CREATE TABLE dhcp_lease (
    ip               TEXT PRIMARY KEY NOT NULL,  -- dotted quad
    id               TEXT NOT NULL,              -- LeaseId (UUIDv7)
    prefix           TEXT NOT NULL,              -- the subnet, e.g. 10.77.0.0/24
    mac              TEXT NOT NULL,              -- chaddr, 52:54:00:...
    client_id        BLOB,                       -- option 61 as sent
    hostname         TEXT,
    state            TEXT NOT NULL,              -- bound, released, declined, expired
    starts           INTEGER NOT NULL,           -- unix nanoseconds
    expires          INTEGER NOT NULL,           -- unix nanoseconds; for declined: end of quarantine
    relay_agent_info BLOB,                       -- option 82 sub-options as the relay sent them
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX dhcp_lease_by_mac ON dhcp_lease (mac);
