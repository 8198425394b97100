-- 0013: what the agent knows of each configured switch (issue 8).
--
-- `apply` is written 'pending' in its own transaction before the first
-- change reaches the switch, and 'applied' or 'failed' after the last: an
-- agent killed in between finds 'pending' when it starts and applies again
-- (each step is atomic on the switch, so a new plan from what is there
-- converges). `realized` is the switch's ports as last read back, after an
-- apply or a drift check; `drift` is what that check found.
CREATE TABLE switch_state (
    switch      TEXT PRIMARY KEY,            -- SwitchName
    apply       TEXT NOT NULL CHECK (apply IN ('pending', 'applied', 'failed')),
    started_at  INTEGER NOT NULL,            -- unix nanoseconds
    finished_at INTEGER,
    error       TEXT,
    realized    TEXT NOT NULL DEFAULT '[]',  -- JSON [RealizedPort]
    drift       TEXT NOT NULL DEFAULT '[]',  -- JSON [String]
    checked_at  INTEGER
) STRICT;
