-- 0010: the `wipe` boot state (deprovisioning boots the wipe environment).
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt
-- (https://www.sqlite.org/lang_altertable.html, "other kinds of table schema
-- changes"): new table, copy, drop, rename, inside the migration's
-- transaction. No index, trigger or view refers to machine_boot.
CREATE TABLE machine_boot_new (
    mac             TEXT PRIMARY KEY NOT NULL,  -- lower-case aa:bb:cc:dd:ee:ff
    state           TEXT NOT NULL
                    CHECK (state IN ('discover', 'install', 'local', 'rescue', 'wipe')),
    hostname        TEXT,
    kernel          TEXT,       -- artifact path, for install, rescue and wipe
    initrd          TEXT,
    cmdline         TEXT,
    last_stage      TEXT,       -- the last stage the machine reported
    last_report_at  INTEGER,    -- unix nanoseconds of that report
    updated_at      INTEGER NOT NULL
) STRICT;
INSERT INTO machine_boot_new
    (mac, state, hostname, kernel, initrd, cmdline, last_stage, last_report_at, updated_at)
SELECT mac, state, hostname, kernel, initrd, cmdline, last_stage, last_report_at, updated_at
FROM machine_boot;
DROP TABLE machine_boot;
ALTER TABLE machine_boot_new RENAME TO machine_boot;
