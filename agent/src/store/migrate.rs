//! Numbered schema migrations and the checks made before applying them.
//!
//! The schema version lives inside the database (`PRAGMA user_version`, as
//! rusqlite_migration keeps it) so a database carries its own version wherever
//! it is copied. `PRAGMA application_id` marks the file as ours, so an agent
//! pointed at some other program's SQLite file refuses it instead of
//! "migrating" it.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::StoreError;

/// "DVAG" in ASCII: the SQLite application_id of an agent database.
pub const APPLICATION_ID: i64 = 0x4456_4147;

/// The SQL of every migration, in order. Index i holds schema version i + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schema/0001_initial.sql"),
    include_str!("../../schema/0002_dhcp_leases.sql"),
    include_str!("../../schema/0003_boot.sql"),
    include_str!("../../schema/0004_dns.sql"),
    include_str!("../../schema/0005_dhcp_lease_drop_mac_index.sql"),
    include_str!("../../schema/0006_inventory.sql"),
    include_str!("../../schema/0007_task_steps.sql"),
    include_str!("../../schema/0008_talos_secrets.sql"),
    include_str!("../../schema/0009_bmc_cert_pin.sql"),
    include_str!("../../schema/0010_boot_state_wipe.sql"),
    include_str!("../../schema/0011_commands.sql"),
    include_str!("../../schema/0012_networks.sql"),
    include_str!("../../schema/0013_switch_state.sql"),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Refuses foreign and too-new databases, then applies every missing migration
/// in one transaction. Applying to an up-to-date database changes nothing.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let fresh = found == 0 && app_id == 0;
    if !fresh && app_id != APPLICATION_ID {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
            found: app_id,
        });
    }
    if found > latest_version() {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: latest_version(),
        });
    }
    if found == latest_version() {
        return Ok(());
    }
    migrations()
        .to_latest(conn)
        .map_err(|e| StoreError::Migrate {
            path: path.to_owned(),
            target: latest_version(),
            source: Arc::new(e),
        })?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    tracing::info!(
        path = %path.display(),
        from = found,
        to = latest_version(),
        "migrated agent database"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn applying_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let schema = |c: &Connection| -> Vec<String> {
            let mut st = c
                .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = schema(&conn);
        migrate(&mut conn, &path).unwrap();
        assert_eq!(schema(&conn), before);
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_version());
    }

    #[test]
    fn the_wipe_state_migration_keeps_every_boot_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        Migrations::new(MIGRATIONS[..9].iter().map(|sql| M::up(sql)).collect())
            .to_latest(&mut conn)
            .unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute(
            "INSERT INTO machine_boot (mac, state, hostname, kernel, last_stage, updated_at)
             VALUES ('52:54:00:00:00:01', 'install', 'n1', 'talos/vmlinuz', 'installed', 7)",
            [],
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        let row: (String, String, String, i64) = conn
            .query_row(
                "SELECT state, hostname, last_stage, updated_at FROM machine_boot",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("install".into(), "n1".into(), "installed".into(), 7));
        conn.execute(
            "UPDATE machine_boot SET state = 'wipe' WHERE mac = '52:54:00:00:00:01'",
            [],
        )
        .unwrap();
        assert!(
            conn.execute("UPDATE machine_boot SET state = 'bogus'", [])
                .is_err()
        );
    }

    #[test]
    fn refuses_a_newer_schema_with_both_versions_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 3)
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{msg}");
        assert!(
            msg.contains(&format!("schema version {}", latest_version() + 3)),
            "{msg}"
        );
        assert!(msg.contains("newer dv-agent"), "{msg}");
    }

    #[test]
    fn refuses_someone_elses_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x); PRAGMA user_version = 7;")
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err}");
    }
}
