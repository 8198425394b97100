//! Commands already acted on, by command id: what makes the federation
//! command consumer idempotent. [`record`] runs in the transaction that acts
//! on the command, so a command is either acted on and recorded, or neither.

use dv_protocol::{MessageId, TaskId};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// What an already-seen command did: `Some(Some(task))` it created `task`,
/// `Some(None)` it was recorded without a task, `None` it is new.
pub fn seen(conn: &Connection, id: MessageId) -> Result<Option<Option<TaskId>>, StoreError> {
    let row: Option<Option<String>> = conn
        .prepare_cached("SELECT task_id FROM command WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(row.map(|task| task.and_then(|t| t.parse().ok())))
}

/// Records that command `id` (of `kind`) was acted on, creating `task`.
pub fn record(
    conn: &Connection,
    id: MessageId,
    kind: &str,
    task: Option<TaskId>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO command (id, kind, task_id, received_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        id.to_string(),
        kind,
        task.map(|t| t.to_string()),
        super::now_nanos()
    ])?;
    Ok(())
}

/// How many commands have been recorded.
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM command")?
        .query_row([], |r| r.get(0))?)
}
