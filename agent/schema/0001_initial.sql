-- 0001: the agent's first schema.
--
-- Migrations are numbered, applied in order at start and recorded in
-- PRAGMA user_version (rusqlite_migration). A committed migration is never
-- edited: a change is a new numbered file.

-- The site this database belongs to. One row: an agent serves one site, and a
-- database copied to the wrong site's host is refused at start.
CREATE TABLE site (
    name        TEXT PRIMARY KEY NOT NULL,
    domain      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,   -- unix nanoseconds
    updated_at  INTEGER NOT NULL
) STRICT;

-- Durable tasks (provisioning and other long operations). `state` is the
-- state's name for filtering; `body` is the whole dv_protocol::Task, JSON.
CREATE TABLE task (
    id          TEXT PRIMARY KEY NOT NULL,  -- UUIDv7, sorts by creation
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX task_by_state ON task (state, id);

-- The transactional outbox: every state change writes its event here in the
-- same transaction as the change. The federation publisher drains unsent rows
-- in `seq` order and sets `sent_at` only after the NATS server acknowledged.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,       -- event id, also Nats-Msg-Id
    subject     TEXT NOT NULL,
    payload     BLOB NOT NULL,              -- dv_protocol codec bytes
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER
) STRICT;
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
