//! Durable tasks: each row is a `dv_protocol::Task`, and every creation or
//! state change writes its event to the outbox in the same transaction.
//!
//! All functions take the writer's (or a reader's) connection, so they compose
//! inside one [`Store::write`](super::Store::write): a workflow step can change
//! a machine and its task atomically.

use dv_protocol::envelope::{Actor, Envelope};
use dv_protocol::{Event, EventBody, Message, Task, TaskId, TaskState};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, outbox};

/// Stores a new task and its `task.evt.created` event. Returns the event
/// message as recorded in the outbox.
pub fn create(conn: &Connection, task: &Task, actor: &Actor) -> Result<Message<Event>, StoreError> {
    create_caused(conn, task, actor, None)
}

/// [`create`], the event caused by `cause` (the command that asked for the
/// task): it carries the command's id as causation and its correlation id.
pub fn create_caused(
    conn: &Connection,
    task: &Task,
    actor: &Actor,
    cause: Option<&Envelope>,
) -> Result<Message<Event>, StoreError> {
    let now = super::now_nanos();
    conn.prepare_cached(
        "INSERT INTO task (id, kind, state, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        task.id.to_string(),
        task.kind.name(),
        task.state.name(),
        to_json(task)?,
        now
    ])?;
    let mut message = Message::from_event(
        task.site.clone(),
        actor.clone(),
        Event::new(EventBody::TaskCreated { task: task.clone() }),
    );
    if let Some(cause) = cause {
        message = message.caused_by(cause);
    }
    outbox::record(conn, &message)?;
    Ok(message)
}

/// Moves a task to `to` and records `task.evt.state-changed`. Returns the task
/// as stored, or `None` if there is no such task.
pub fn set_state(
    conn: &Connection,
    id: TaskId,
    to: TaskState,
    actor: &Actor,
) -> Result<Option<Task>, StoreError> {
    let Some(mut task) = get(conn, id)? else {
        return Ok(None);
    };
    let from = std::mem::replace(&mut task.state, to.clone());
    task.updated_at = time::OffsetDateTime::now_utc();
    conn.prepare_cached("UPDATE task SET state = ?2, body = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![
            id.to_string(),
            task.state.name(),
            to_json(&task)?,
            super::now_nanos()
        ])?;
    let message = Message::from_event(
        task.site.clone(),
        actor.clone(),
        Event::new(EventBody::TaskStateChanged { task: id, from, to }),
    );
    outbox::record(conn, &message)?;
    Ok(Some(task))
}

/// The task with this id.
pub fn get(conn: &Connection, id: TaskId) -> Result<Option<Task>, StoreError> {
    let key = id.to_string();
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM task WHERE id = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    body.map(|b| from_json(&key, &b)).transpose()
}

/// Tasks in creation order, optionally only those in state `state`
/// (`pending`, `running`, ...), at most `limit`.
pub fn list(conn: &Connection, state: Option<&str>, limit: usize) -> Result<Vec<Task>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(
        "SELECT id, body FROM task WHERE (?1 IS NULL OR state = ?1) ORDER BY id LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![state, limit], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.iter()
        .map(|(key, body)| from_json(key, body))
        .collect()
}

fn to_json(task: &Task) -> Result<String, StoreError> {
    serde_json::to_string(task).map_err(|e| StoreError::Corrupt {
        what: "task",
        key: task.id.to_string(),
        detail: e.to_string(),
    })
}

fn from_json(key: &str, body: &str) -> Result<Task, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        what: "task",
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;
    use dv_protocol::{DependencyKind, MachineId, SiteName, TaskKind, codec};

    fn lab() -> SiteName {
        SiteName::new("lab").unwrap()
    }

    #[tokio::test]
    async fn a_task_and_its_events_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let actor = Actor::agent(&lab());
        let task = Task::new(
            lab(),
            TaskKind::ProvisionMachine {
                machine: MachineId::new(),
            },
        );
        let id = task.id;
        let (a, t) = (actor.clone(), task.clone());
        store.write(move |c| create(c, &t, &a)).await.unwrap();
        let blocked = TaskState::Blocked {
            dependency: "bmc:10.77.0.50".into(),
            kind: DependencyKind::Hard,
        };
        let b = blocked.clone();
        store
            .write(move |c| set_state(c, id, b, &actor))
            .await
            .unwrap()
            .unwrap();

        let (stored, events) = store
            .read(move |c| Ok((get(c, id)?, outbox::pending(c, 10)?)))
            .await
            .unwrap();
        assert_eq!(stored.unwrap().state, blocked);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].subject, "dv.lab.task.evt.created");
        assert_eq!(events[1].subject, "dv.lab.task.evt.state-changed");
        let msg: Message<Event> = codec::decode(&events[1].payload).unwrap();
        assert!(matches!(msg.body.body, EventBody::TaskStateChanged { to, .. } if to == blocked));

        let listed = store.read(|c| list(c, Some("blocked"), 10)).await.unwrap();
        assert_eq!(listed.len(), 1);
        store.close().await;
    }

    #[tokio::test]
    async fn a_failed_write_leaves_neither_row_nor_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let actor = Actor::agent(&lab());
        let task = Task::new(
            lab(),
            TaskKind::ProvisionMachine {
                machine: MachineId::new(),
            },
        );
        let (a, t) = (actor.clone(), task.clone());
        let err = store
            .write(move |c| {
                create(c, &t, &a)?;
                // Fails after the row and the event were written: both must go.
                create(c, &t, &a)
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Sql(_)), "{err}");
        let (row, n) = store
            .read(move |c| Ok((get(c, task.id)?, outbox::pending_count(c)?)))
            .await
            .unwrap();
        assert!(row.is_none());
        assert_eq!(n, 0);
        store.close().await;
    }
}
