-- 0011: commands received from the hub, by command id (the envelope id), so a
-- redelivered command does not act twice. Written in the transaction that
-- acts on the command (e.g. creates its task).
CREATE TABLE command (
    id          TEXT PRIMARY KEY,           -- command id (envelope id, Nats-Msg-Id)
    kind        TEXT NOT NULL,              -- subject action, e.g. provision
    task_id     TEXT REFERENCES task (id),  -- the task it created, if any
    received_at INTEGER NOT NULL            -- unix nanoseconds
) STRICT;
