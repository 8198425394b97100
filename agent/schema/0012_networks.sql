-- 0012: network intent and IPAM (issue 8, first slice).
--
-- The database itself forbids two owners for one address: allocation has
-- UNIQUE (prefix_id, address), and prefixes never overlap (checked before
-- insert), so an address has at most one row anywhere. Addresses are stored
-- as text in canonical form (Rust's IpAddr Display); ordering is done in
-- Rust, not by SQL text comparison.
CREATE TABLE network (
    id          TEXT PRIMARY KEY,            -- NetworkId
    name        TEXT NOT NULL UNIQUE,        -- NetworkName, unique per site
    vlan        INTEGER NOT NULL UNIQUE CHECK (vlan BETWEEN 1 AND 4094),
    purpose     TEXT NOT NULL,               -- NetworkPurpose, snake_case
    dhcp        INTEGER NOT NULL CHECK (dhcp IN (0, 1)),
    created_at  INTEGER NOT NULL             -- unix nanoseconds
) STRICT;

CREATE TABLE prefix (
    id          TEXT PRIMARY KEY,            -- PrefixId
    network_id  TEXT NOT NULL REFERENCES network (id) ON DELETE CASCADE,
    cidr        TEXT NOT NULL UNIQUE,        -- no host bits set
    gateway     TEXT                         -- inside cidr; never allocated
) STRICT;
CREATE INDEX prefix_network ON prefix (network_id);

-- Inclusive ranges IPAM never hands out.
CREATE TABLE reserved_range (
    prefix_id   TEXT NOT NULL REFERENCES prefix (id) ON DELETE CASCADE,
    first       TEXT NOT NULL,
    last        TEXT NOT NULL,
    PRIMARY KEY (prefix_id, first)
) STRICT;

CREATE TABLE allocation (
    id          TEXT PRIMARY KEY,            -- AllocationId
    prefix_id   TEXT NOT NULL REFERENCES prefix (id),  -- no cascade: a network
                                             -- with allocations is not deleted
    address     TEXT NOT NULL,
    owner       TEXT,
    hostname    TEXT UNIQUE,                 -- label in the site zone
    mac         TEXT UNIQUE,                 -- one reservation per NIC
    dns_record_id TEXT,                      -- DnsRecordId of its A record
    created_at  INTEGER NOT NULL,
    UNIQUE (prefix_id, address)
) STRICT;

-- The DHCP reservation an allocation with a MAC carries (MAC -> IP,
-- hostname); it lives and dies with its allocation.
CREATE TABLE dhcp_reservation (
    allocation_id TEXT PRIMARY KEY REFERENCES allocation (id) ON DELETE CASCADE,
    mac         TEXT NOT NULL UNIQUE,
    ip          TEXT NOT NULL UNIQUE,
    hostname    TEXT
) STRICT;

-- Switch-port intent (no driver applies it yet).
CREATE TABLE port_profile (
    name        TEXT PRIMARY KEY,            -- PortProfileName
    mode        TEXT NOT NULL                -- PortMode as JSON
) STRICT;

CREATE TABLE lag (
    switch      TEXT NOT NULL,
    name        TEXT NOT NULL,
    profile     TEXT NOT NULL REFERENCES port_profile (name),
    PRIMARY KEY (switch, name)
) STRICT;

-- A port carries one profile: directly (profile set, lag NULL) or as a LAG
-- member (lag set, profile NULL); the primary key keeps it to one row.
CREATE TABLE port_assignment (
    switch      TEXT NOT NULL,
    port        TEXT NOT NULL,
    profile     TEXT REFERENCES port_profile (name),
    lag         TEXT,
    machine_id  TEXT,
    nic         TEXT,
    PRIMARY KEY (switch, port),
    FOREIGN KEY (switch, lag) REFERENCES lag (switch, name),
    CHECK ((profile IS NULL) <> (lag IS NULL))
) STRICT;
