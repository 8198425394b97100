//! The step log of workflow tasks (schema 0007): one row per step run, with
//! its start, end and outcome.

use dv_protocol::TaskId;
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, now_nanos};

/// One step run: the API's shared body (`GET /v1/tasks/{id}` lists them).
pub use dv_protocol::api::StepRun;

/// Records that `step` of `task` starts now; returns its sequence number.
pub fn start(conn: &Connection, task: TaskId, step: &str) -> Result<i64, StoreError> {
    let seq: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM task_step WHERE task_id = ?1")?
        .query_row([task.to_string()], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO task_step (task_id, seq, step, started_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![task.to_string(), seq, step, now_nanos()])?;
    Ok(seq)
}

/// Records how step run `seq` of `task` ended.
pub fn finish(
    conn: &Connection,
    task: TaskId,
    seq: i64,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE task_step SET finished_at = ?3, outcome = ?4, detail = ?5
         WHERE task_id = ?1 AND seq = ?2",
    )?
    .execute(params![task.to_string(), seq, now_nanos(), outcome, detail])?;
    Ok(())
}

/// When step run `seq` of `task` started (unix nanoseconds).
pub fn started_at(conn: &Connection, task: TaskId, seq: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT started_at FROM task_step WHERE task_id = ?1 AND seq = ?2")?
        .query_row(params![task.to_string(), seq], |r| r.get(0))
        .optional()?)
}

/// The step the task ran last, if any.
pub fn last(conn: &Connection, task: TaskId) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT step FROM task_step WHERE task_id = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([task.to_string()], |r| r.get(0))
        .optional()?)
}

/// Every step run of `task`, in order.
pub fn list(conn: &Connection, task: TaskId) -> Result<Vec<StepRun>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT seq, step, started_at, finished_at, outcome, detail FROM task_step
         WHERE task_id = ?1 ORDER BY seq",
    )?;
    let rows = st
        .query_map([task.to_string()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(seq, step, started, finished, outcome, detail)| StepRun {
            seq,
            step,
            started_at: rfc3339(started),
            finished_at: finished.map(rfc3339),
            outcome,
            detail,
        })
        .collect())
}

fn rfc3339(nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
