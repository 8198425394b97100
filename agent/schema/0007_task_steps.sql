-- 0007: the steps of workflow tasks, with their times and outcomes, so an
-- operator sees where a task is and how long each step took.
CREATE TABLE task_step (
    task_id     TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,           -- 1, 2, ... in the order run (a resumed step runs again)
    step        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,           -- unix nanoseconds
    finished_at INTEGER,                    -- NULL while running (or if the agent died mid-step)
    outcome     TEXT,                       -- done, failed, blocked
    detail      TEXT,
    PRIMARY KEY (task_id, seq)
) STRICT;
