//! The replica's read model: SQLite tables derived from the hub's streams,
//! rebuilt from scratch at every start (the file is recreated) and kept
//! current by [`crate::ingest`].
//!
//! Applying is idempotent by event id: an event already in `event` changes
//! nothing, so a redelivery, a re-sourced copy or a replay after a
//! reconnect is harmless. The file is a cache, so it is written with
//! `synchronous = OFF`: losing it costs a rebuild, never data.

use std::path::Path;
use std::sync::{Arc, Mutex};

use dv_protocol::{Command, Event, EventBody, Machine, Message, SiteName, Task};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Why the read model failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadModelError {
    /// SQLite failed.
    #[error("read model: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not decode.
    #[error("read model row does not decode: {0}")]
    Json(#[from] serde_json::Error),
    /// The file could not be replaced.
    #[error("cannot recreate the read model at {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The worker thread went away.
    #[error("read model worker failed: {0}")]
    Join(String),
}

const SCHEMA: &str = "
CREATE TABLE event (
  stream_seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  site TEXT NOT NULL,
  subject TEXT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  causation_id TEXT,
  occurred_at TEXT NOT NULL,
  applied_at TEXT NOT NULL,
  tenant TEXT,
  project TEXT,
  body TEXT NOT NULL
);
CREATE INDEX event_site ON event (site, stream_seq);
CREATE TABLE machine (
  id TEXT PRIMARY KEY,
  site TEXT NOT NULL,
  state TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX machine_site ON machine (site);
CREATE TABLE task (
  id TEXT PRIMARY KEY,
  site TEXT NOT NULL,
  state TEXT NOT NULL,
  command_id TEXT,
  tenant TEXT,
  project TEXT,
  body TEXT NOT NULL
);
CREATE INDEX task_command ON task (command_id);
CREATE TABLE command (
  id TEXT PRIMARY KEY,
  stream_seq INTEGER NOT NULL,
  site TEXT NOT NULL,
  subject TEXT NOT NULL,
  actor TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  tenant TEXT,
  project TEXT,
  body TEXT NOT NULL
);
CREATE TABLE command_rejection (
  command_id TEXT PRIMARY KEY,
  reason TEXT NOT NULL
);
CREATE TABLE position (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);
";

/// One event as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    /// Position in the hub's event stream.
    pub stream_seq: u64,
    /// The event id.
    pub id: String,
    /// The site it happened at.
    pub site: String,
    /// Its subject.
    pub subject: String,
    /// The event kind (`task_created`, ...).
    pub kind: String,
    /// Who caused it.
    pub actor: String,
    /// The conversation it belongs to.
    pub correlation_id: String,
    /// The message that caused it.
    pub causation_id: Option<String>,
    /// When the site recorded it (RFC 3339).
    pub occurred_at: String,
    /// When this replica's read model applied it (RFC 3339): minus
    /// `occurred_at`, the event's journey from the site's commit.
    pub applied_at: String,
    /// The tenant it belongs to, if a tenant's request caused it.
    pub tenant: Option<String>,
    /// The project it belongs to, if a tenant's request caused it.
    pub project: Option<String>,
    /// The event body.
    pub body: serde_json::Value,
}

/// Whose a command, task or event is: the tenant and project of the
/// request that caused it (from the envelope; a task's later events
/// inherit its owner). Both `None` for platform work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The tenant.
    pub tenant: Option<String>,
    /// The project.
    pub project: Option<String>,
}

/// A command as the hub recorded it, with the task it started (the API's
/// shared body).
pub use dv_protocol::api::CommandRecord;

/// How far the read model is.
#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct Positions {
    /// Last applied sequence of the event stream.
    pub events: u64,
    /// Last applied sequence of the command stream.
    pub commands: u64,
    /// Events applied.
    pub event_count: u64,
}

/// The read model; cheap to clone.
#[derive(Debug, Clone)]
pub struct ReadModel {
    conn: Arc<Mutex<Connection>>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl ReadModel {
    /// Recreates the file at `path` (a rebuild from the streams follows).
    pub fn recreate(path: &Path) -> Result<Self, ReadModelError> {
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ReadModelError::Io { path: file, source }),
            }
        }
        Self::open(Connection::open(path)?)
    }

    /// An in-memory read model (tests).
    pub fn in_memory() -> Result<Self, ReadModelError> {
        Self::open(Connection::open_in_memory()?)
    }

    fn open(conn: Connection) -> Result<Self, ReadModelError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking thread.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ReadModelError> + Send + 'static,
    ) -> Result<T, ReadModelError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| ReadModelError::Join("poisoned lock".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| ReadModelError::Join(e.to_string()))?
    }
}

/// Applies a batch of events (with their event-stream sequence) in one
/// transaction. Returns how many were new.
pub fn apply_events(
    conn: &mut Connection,
    batch: &[(u64, Message<Event>)],
) -> Result<usize, ReadModelError> {
    let tx = conn.transaction()?;
    let mut new = 0;
    let mut last = None;
    for (seq, message) in batch {
        last = Some(*seq);
        if apply_event(&tx, *seq, message)? {
            new += 1;
        }
    }
    if let Some(seq) = last {
        set_position(&tx, "events", seq)?;
    }
    tx.commit()?;
    Ok(new)
}

/// Applies one event; false if its id was seen before.
fn apply_event(
    tx: &rusqlite::Transaction<'_>,
    seq: u64,
    message: &Message<Event>,
) -> Result<bool, ReadModelError> {
    let env = &message.envelope;
    let body = &message.body.body;
    let mut owner = Owner {
        tenant: env.tenant.as_ref().map(ToString::to_string),
        project: env.project.as_ref().map(ToString::to_string),
    };
    if owner.tenant.is_none()
        && let EventBody::TaskStateChanged { task, .. } = body
    {
        owner = owner_of(tx, "task", &task.to_string())?.unwrap_or_default();
    }
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO event (stream_seq, id, site, subject, kind, actor, correlation_id,
               causation_id, occurred_at, applied_at, body, tenant, project)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            seq as i64,
            message.body.id.to_string(),
            env.site.as_str(),
            message.body.subject(&env.site).as_str(),
            kind(body),
            env.actor.as_str(),
            env.correlation_id.to_string(),
            env.causation_id.map(|c| c.to_string()),
            rfc3339(env.occurred_at),
            rfc3339(time::OffsetDateTime::now_utc()),
            serde_json::to_string(body)?,
            owner.tenant,
            owner.project,
        ])?;
    if inserted == 0 {
        return Ok(false);
    }
    match body {
        EventBody::MachineDiscovered { machine } | EventBody::MachineUpdated { machine } => {
            put_machine(tx, machine)?;
        }
        EventBody::MachineStateChanged { machine, to, .. } => {
            let id = machine.to_string();
            if let Some(mut m) = get_json::<Machine>(tx, "machine", &id)? {
                m.state = *to;
                put_machine(tx, &m)?;
            }
        }
        EventBody::TaskCreated { task } => {
            tx.prepare_cached(
                "INSERT INTO task (id, site, state, command_id, body, tenant, project)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body",
            )?
            .execute(params![
                task.id.to_string(),
                task.site.as_str(),
                task.state.name(),
                env.causation_id.map(|c| c.to_string()),
                serde_json::to_string(task)?,
                owner.tenant,
                owner.project,
            ])?;
        }
        EventBody::TaskStateChanged { task, to, .. } => {
            let id = task.to_string();
            if let Some(mut t) = get_json::<Task>(tx, "task", &id)? {
                t.state = to.clone();
                t.updated_at = env.occurred_at;
                tx.prepare_cached("UPDATE task SET state = ?2, body = ?3 WHERE id = ?1")?
                    .execute(params![id, t.state.name(), serde_json::to_string(&t)?])?;
            }
        }
        EventBody::CommandRejected {
            command, reason, ..
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO command_rejection (command_id, reason) VALUES (?1, ?2)",
            )?
            .execute(params![command.to_string(), reason])?;
        }
        _ => {}
    }
    Ok(true)
}

fn put_machine(tx: &rusqlite::Transaction<'_>, m: &Machine) -> Result<(), ReadModelError> {
    tx.prepare_cached(
        "INSERT INTO machine (id, site, state, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET site = excluded.site, state = excluded.state,
           body = excluded.body",
    )?
    .execute(params![
        m.id.to_string(),
        m.site.as_str(),
        m.state.as_str(),
        serde_json::to_string(m)?
    ])?;
    Ok(())
}

/// The owner of row `id` of `table` (`task` or `command`); `None` when
/// there is no such row.
pub fn owner_of(conn: &Connection, table: &str, id: &str) -> Result<Option<Owner>, ReadModelError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT tenant, project FROM {table} WHERE id = ?1"
        ))?
        .query_row([id], |r| {
            Ok(Owner {
                tenant: r.get(0)?,
                project: r.get(1)?,
            })
        })
        .optional()?)
}

/// Every task with its owner, or one site's, newest first.
pub fn tasks_owned(
    conn: &Connection,
    site: Option<&SiteName>,
) -> Result<Vec<(Task, Owner)>, ReadModelError> {
    let mut stmt = conn.prepare_cached(
        "SELECT body, tenant, project FROM task WHERE (?1 IS NULL OR site = ?1) ORDER BY id DESC",
    )?;
    let rows = stmt.query_map(params![site.map(SiteName::as_str)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Owner {
                tenant: r.get(1)?,
                project: r.get(2)?,
            },
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (body, owner) = row?;
        out.push((serde_json::from_str(&body)?, owner));
    }
    Ok(out)
}

fn get_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    id: &str,
) -> Result<Option<T>, ReadModelError> {
    let body: Option<String> = conn
        .prepare_cached(&format!("SELECT body FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
}

/// The event's kind: its variant name in snake case.
fn kind(body: &EventBody) -> String {
    serde_json::to_value(body)
        .ok()
        .and_then(|v| match v {
            serde_json::Value::Object(m) => m.keys().next().cloned(),
            serde_json::Value::String(s) => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Records a command seen on the command stream.
pub fn apply_command(
    conn: &mut Connection,
    seq: u64,
    message: &Message<Command>,
) -> Result<(), ReadModelError> {
    let tx = conn.transaction()?;
    let env = &message.envelope;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO command (id, stream_seq, site, subject, actor, correlation_id,
           occurred_at, body, tenant, project) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        env.id.to_string(),
        seq as i64,
        env.site.as_str(),
        message.body.subject(&env.site).as_str(),
        env.actor.as_str(),
        env.correlation_id.to_string(),
        rfc3339(env.occurred_at),
        serde_json::to_string(&message.body)?,
        env.tenant.as_ref().map(ToString::to_string),
        env.project.as_ref().map(ToString::to_string),
    ])?;
    set_position(&tx, "commands", seq)?;
    tx.commit()?;
    Ok(())
}

fn set_position(
    tx: &rusqlite::Transaction<'_>,
    stream: &str,
    seq: u64,
) -> Result<(), ReadModelError> {
    tx.prepare_cached(
        "INSERT INTO position (stream, seq) VALUES (?1, ?2)
         ON CONFLICT (stream) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?
    .execute(params![stream, seq as i64])?;
    Ok(())
}

/// How far the model is.
pub fn positions(conn: &Connection) -> Result<Positions, ReadModelError> {
    let get = |stream: &str| -> Result<u64, ReadModelError> {
        let seq: Option<i64> = conn
            .prepare_cached("SELECT seq FROM position WHERE stream = ?1")?
            .query_row([stream], |r| r.get(0))
            .optional()?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    };
    let count: i64 = conn.query_row("SELECT count(*) FROM event", [], |r| r.get(0))?;
    Ok(Positions {
        events: get("events")?,
        commands: get("commands")?,
        event_count: count.max(0) as u64,
    })
}

fn bodies<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, ReadModelError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(serde_json::from_str(&row?)?);
    }
    Ok(out)
}

/// Every machine, or one site's, ordered by site and id.
pub fn machines(
    conn: &Connection,
    site: Option<&SiteName>,
) -> Result<Vec<Machine>, ReadModelError> {
    match site {
        Some(s) => bodies(
            conn,
            "SELECT body FROM machine WHERE site = ?1 ORDER BY id",
            [s.as_str()],
        ),
        None => bodies(conn, "SELECT body FROM machine ORDER BY site, id", []),
    }
}

/// Machines matching `key`: an id, a serial or a MAC.
pub fn machines_matching(conn: &Connection, key: &str) -> Result<Vec<Machine>, ReadModelError> {
    let mac = key.parse::<dv_protocol::MacAddr>().ok();
    Ok(machines(conn, None)?
        .into_iter()
        .filter(|m| {
            m.id.to_string() == key || m.serial == key || mac.is_some_and(|mac| m.has_mac(mac))
        })
        .collect())
}

/// Every task, or one site's, newest first.
pub fn tasks(conn: &Connection, site: Option<&SiteName>) -> Result<Vec<Task>, ReadModelError> {
    match site {
        Some(s) => bodies(
            conn,
            "SELECT body FROM task WHERE site = ?1 ORDER BY id DESC",
            [s.as_str()],
        ),
        None => bodies(conn, "SELECT body FROM task ORDER BY id DESC", []),
    }
}

/// One task.
pub fn task(conn: &Connection, id: &str) -> Result<Option<Task>, ReadModelError> {
    get_json(conn, "task", id)
}

/// One command and the task it started.
pub fn command(conn: &Connection, id: &str) -> Result<Option<CommandRecord>, ReadModelError> {
    let row = conn
        .prepare_cached(
            "SELECT id, site, subject, actor, correlation_id, occurred_at, body
             FROM command WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()?;
    let Some((id, site, subject, actor, correlation_id, issued_at, body)) = row else {
        return Ok(None);
    };
    let task: Option<Task> = bodies(
        conn,
        "SELECT body FROM task WHERE command_id = ?1 LIMIT 1",
        [id.as_str()],
    )?
    .into_iter()
    .next();
    let rejected: Option<String> = conn
        .prepare_cached("SELECT reason FROM command_rejection WHERE command_id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    Ok(Some(CommandRecord {
        id,
        site,
        subject,
        actor,
        correlation_id,
        issued_at,
        command: serde_json::from_str(&body)?,
        task,
        rejected,
    }))
}

/// Events after stream position `after`, oldest first, at most `limit`,
/// optionally of one site.
pub fn events(
    conn: &Connection,
    site: Option<&SiteName>,
    after: u64,
    limit: u32,
) -> Result<Vec<EventRow>, ReadModelError> {
    let mut stmt = conn.prepare_cached(
        "SELECT stream_seq, id, site, subject, kind, actor, correlation_id, causation_id,
           occurred_at, applied_at, body, tenant, project
         FROM event WHERE stream_seq > ?1 AND (?2 IS NULL OR site = ?2)
         ORDER BY stream_seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![after as i64, site.map(SiteName::as_str), i64::from(limit)],
        |r| {
            Ok((
                EventRow {
                    stream_seq: r.get::<_, i64>(0)?.max(0) as u64,
                    id: r.get(1)?,
                    site: r.get(2)?,
                    subject: r.get(3)?,
                    kind: r.get(4)?,
                    actor: r.get(5)?,
                    correlation_id: r.get(6)?,
                    causation_id: r.get(7)?,
                    occurred_at: r.get(8)?,
                    applied_at: r.get(9)?,
                    tenant: r.get(11)?,
                    project: r.get(12)?,
                    body: serde_json::Value::Null,
                },
                r.get::<_, String>(10)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (mut event, body) = row?;
        event.body = serde_json::from_str(&body)?;
        out.push(event);
    }
    Ok(out)
}

/// Like [`events`], keeping only rows `keep` accepts: reads on in
/// chunks until `limit` rows are kept or the stream ends, so a caller who
/// sees little of the stream still gets a full page.
pub fn events_where(
    conn: &Connection,
    site: Option<&SiteName>,
    mut after: u64,
    limit: u32,
    keep: impl Fn(&EventRow) -> bool,
) -> Result<Vec<EventRow>, ReadModelError> {
    const CHUNK: u32 = 1000;
    let mut out = Vec::new();
    loop {
        let chunk = events(conn, site, after, CHUNK)?;
        let Some(last) = chunk.last().map(|e| e.stream_seq) else {
            return Ok(out);
        };
        for e in chunk {
            if keep(&e) {
                out.push(e);
                if out.len() >= limit as usize {
                    return Ok(out);
                }
            }
        }
        after = last;
    }
}

/// Per site: events applied and the last event's time.
pub fn site_counts(conn: &Connection) -> Result<Vec<(String, u64, String)>, ReadModelError> {
    let mut stmt = conn.prepare_cached(
        "SELECT site, count(*), max(occurred_at) FROM event GROUP BY site ORDER BY site",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?.max(0) as u64,
            r.get::<_, String>(2)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dv_protocol::{Actor, MachineId, TaskKind, TaskState};

    use super::*;

    fn site() -> SiteName {
        SiteName::new("osl-1").unwrap()
    }

    fn event(body: EventBody) -> Message<Event> {
        Message::from_event(site(), Actor::agent(&site()), Event::new(body))
    }

    #[test]
    fn tasks_follow_their_events_and_a_replay_changes_nothing() {
        let rm = ReadModel::in_memory().unwrap();
        let mut conn = rm.conn.lock().unwrap();
        let task = Task::new(
            site(),
            TaskKind::ProvisionMachine {
                machine: MachineId::new(),
            },
        );
        let created = event(EventBody::TaskCreated { task: task.clone() });
        let running = event(EventBody::TaskStateChanged {
            task: task.id,
            from: TaskState::Pending,
            to: TaskState::Running {
                step: "allocate".into(),
            },
        });
        let batch = vec![(1, created.clone()), (2, running.clone())];
        assert_eq!(apply_events(&mut conn, &batch).unwrap(), 2);
        // The same events again, at later stream positions (re-sourced).
        let again = vec![(3, created), (4, running)];
        assert_eq!(apply_events(&mut conn, &again).unwrap(), 0);
        let tasks = tasks(&conn, None).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].state.name(), "running");
        let p = positions(&conn).unwrap();
        assert_eq!((p.events, p.event_count), (4, 2));
        let listed = events(&conn, Some(&site()), 1, 10).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].kind, "task_state_changed");
    }

    #[test]
    fn a_projects_command_owns_its_task_and_every_event_of_it() {
        let rm = ReadModel::in_memory().unwrap();
        let mut conn = rm.conn.lock().unwrap();
        let machine = MachineId::new();
        let command = Message::command(
            site(),
            Actor::new("user:alice").unwrap(),
            Command::ProvisionMachine { machine },
        )
        .with_tenant("acme".parse().unwrap())
        .with_project("web".parse().unwrap());
        apply_command(&mut conn, 1, &command).unwrap();
        let task = Task::new(site(), TaskKind::ProvisionMachine { machine });
        // The agent's task.created is caused by the command (tenant and
        // project copied); its later state changes carry neither.
        let created =
            event(EventBody::TaskCreated { task: task.clone() }).caused_by(&command.envelope);
        let running = event(EventBody::TaskStateChanged {
            task: task.id,
            from: TaskState::Pending,
            to: TaskState::Running {
                step: "allocate".into(),
            },
        });
        let other = event(EventBody::TaskCreated {
            task: Task::new(site(), TaskKind::ProvisionMachine { machine }),
        });
        apply_events(&mut conn, &[(1, created), (2, running), (3, other)]).unwrap();
        let acme = Owner {
            tenant: Some("acme".into()),
            project: Some("web".into()),
        };
        let id = command.envelope.id.to_string();
        assert_eq!(owner_of(&conn, "command", &id).unwrap(), Some(acme.clone()));
        assert_eq!(
            owner_of(&conn, "task", &task.id.to_string()).unwrap(),
            Some(acme.clone())
        );
        assert_eq!(owner_of(&conn, "task", "nope").unwrap(), None);
        let owned = tasks_owned(&conn, None).unwrap();
        assert_eq!(owned.iter().filter(|(_, o)| *o == acme).count(), 1);
        assert_eq!(owned.iter().filter(|(_, o)| o.tenant.is_none()).count(), 1);
        let listed = events(&conn, None, 0, 10).unwrap();
        let of_acme: Vec<&str> = listed
            .iter()
            .filter(|e| e.tenant.as_deref() == Some("acme") && e.project.as_deref() == Some("web"))
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(of_acme, ["task_created", "task_state_changed"]);
    }
}
