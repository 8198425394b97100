-- 0006: inventory. Racks and machines as the site kit's inventory file
-- (or an operator) declares them; the protocol's Machine record is kept
-- whole in `body` (JSON), with the columns that are looked up or must be
-- unique beside it. BMC passwords are sealed under the site key
-- (agent/src/inventory/site_key.rs); this file never holds them in clear.
CREATE TABLE rack (
    name     TEXT PRIMARY KEY NOT NULL,  -- label on the floor, r01
    id       TEXT NOT NULL UNIQUE,       -- RackId
    location TEXT
) STRICT;

CREATE TABLE machine (
    id         TEXT PRIMARY KEY NOT NULL,  -- MachineId
    serial     TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL,
    body       TEXT NOT NULL,              -- dv_protocol::Machine as JSON
    facts      TEXT,                       -- last discovery report, JSON object of strings
    last_stage    TEXT,                    -- the last boot callback stage from one of its MACs
    last_stage_at INTEGER,                 -- when (unix nanoseconds)
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE machine_mac (
    mac        TEXT PRIMARY KEY NOT NULL,  -- one machine per MAC, ever
    machine_id TEXT NOT NULL REFERENCES machine (id) ON DELETE CASCADE
) STRICT;
CREATE INDEX machine_mac_by_machine ON machine_mac (machine_id);

CREATE TABLE bmc (
    id              TEXT PRIMARY KEY NOT NULL,  -- BmcId
    machine_id      TEXT NOT NULL UNIQUE REFERENCES machine (id) ON DELETE CASCADE,
    credential      TEXT NOT NULL UNIQUE,       -- the CredentialRef in the machine's BmcEndpoint
    scheme          TEXT NOT NULL DEFAULT 'https', -- Redfish: https, or http for emulators and labs
    user            TEXT NOT NULL,
    sealed_password BLOB,                       -- NULL: none given yet
    updated_at      INTEGER NOT NULL
) STRICT;
