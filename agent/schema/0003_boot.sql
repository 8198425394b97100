-- 0003: machine boot state (the boot work).
--
-- What each machine (by the MAC it network-boots from) boots into next:
-- the HTTP boot service renders /boot/<mac>.ipxe from this row; a MAC with no
-- row gets boot.default_state. Changes write their event to the outbox in the
-- same transaction (store/boot.rs).
CREATE TABLE machine_boot (
    mac             TEXT PRIMARY KEY NOT NULL,  -- lower-case aa:bb:cc:dd:ee:ff
    state           TEXT NOT NULL
                    CHECK (state IN ('discover', 'install', 'local', 'rescue')),
    hostname        TEXT,
    kernel          TEXT,       -- artifact path, for install (and rescue)
    initrd          TEXT,
    cmdline         TEXT,
    last_stage      TEXT,       -- the last stage the machine reported
    last_report_at  INTEGER,    -- unix nanoseconds of that report
    updated_at      INTEGER NOT NULL
) STRICT;
