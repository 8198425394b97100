-- 0004: DNS service placements and the zone serial.

-- A service moved by the API (`PUT /v1/dns/services/{name}`) to a host other
-- than the one in agent.toml. The config names the service; this row says
-- where it points now. `record_id` is the DnsRecordId its events carry, kept
-- so every move of one service reports the same record.
CREATE TABLE dns_placement (
    service     TEXT PRIMARY KEY NOT NULL,
    host        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    updated_at  INTEGER NOT NULL    -- unix nanoseconds
) STRICT;

-- One row: the serial every served zone carries and a digest of the records
-- it was issued for. A restart with the same records keeps the serial; any
-- change moves it forward (never back).
CREATE TABLE dns_zone_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    serial        INTEGER NOT NULL,
    content_hash  TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
