//! The store keeps every acknowledged write across `kill -9`.
//!
//! A child process (`store-crash-writer`) writes tasks from many concurrent
//! writers and prints each write after the store acknowledged it. The test
//! kills it with SIGKILL at a random moment, reopens the database, and checks:
//! - every write the child printed is present (created tasks exist, tasks
//!   reported running are running);
//! - the database passes `PRAGMA integrity_check`;
//! - tasks and their outbox events committed together: the set of tasks
//!   equals the set of `task.evt.created` events.
//!
//! Rounds accumulate in one data directory, so every round also re-opens a
//! database that was killed mid-write. Set `DV_CRASH_ROUNDS` for more rounds
//! and `DV_CRASH_SEED` to replay a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dv_agent::store::{Store, outbox, tasks};
use dv_protocol::{Event, EventBody, Message, TaskId, TaskState, codec};
use dv_tests::process::Guarded;
use dv_tests::{Rng, wait_for};

/// What the child acknowledged: task id -> reported running.
type Acked = HashMap<TaskId, bool>;

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let rounds: usize = std::env::var("DV_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let seed = std::env::var("DV_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(Rng::seed_from_clock);
    eprintln!("store crash test: {rounds} rounds, DV_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Acked::new();

    for round in 0..rounds {
        let writers = rng.range(1, 33);
        let min_lines = rng.range(1, 400) as usize;
        let extra_ms = rng.range(0, 40);
        let new = run_and_kill(dir.path(), writers, min_lines, extra_ms);
        assert!(
            !new.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        for (id, running) in new {
            let was = acked.entry(id).or_insert(false);
            *was |= running;
        }
        verify(dir.path(), &acked, round);
    }
    eprintln!(
        "store crash test: {} acknowledged tasks verified over {rounds} kills",
        acked.len()
    );
}

/// Runs the writer until it has acknowledged at least `min_lines` writes, then
/// `extra_ms` more, then SIGKILLs it and returns what it acknowledged.
fn run_and_kill(dir: &Path, writers: u64, min_lines: usize, extra_ms: u64) -> Acked {
    let mut child = Guarded::spawn(
        Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
            .arg(dir)
            .arg(writers.to_string())
            .env("DV_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .unwrap();
    let stdout = child.child().unwrap().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut lines = Vec::new();
    let reached = wait_for(Duration::from_secs(30), || {
        lines.extend(rx.try_iter());
        (lines.len() >= min_lines).then_some(())
    });
    assert!(
        reached.is_some(),
        "writer produced only {} lines",
        lines.len()
    );
    std::thread::sleep(Duration::from_millis(extra_ms));
    child.signal(libc::SIGKILL).unwrap();
    assert!(child.wait_timeout(Duration::from_secs(10)).is_some());
    reader.join().unwrap();
    lines.extend(rx.try_iter());

    let mut acked = Acked::new();
    for line in lines {
        // A line cut by the kill has no newline: it was never acknowledged.
        let Some(text) = line.strip_suffix(b"\n") else {
            continue;
        };
        let text = std::str::from_utf8(text).unwrap();
        let (kind, id) = text.split_once(' ').unwrap();
        let id: TaskId = id.parse().unwrap();
        match kind {
            "C" => {
                acked.entry(id).or_insert(false);
            }
            "R" => {
                acked.insert(id, true);
            }
            other => panic!("unexpected line kind {other:?}"),
        }
    }
    acked
}

fn verify(dir: &Path, acked: &Acked, round: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(dir).unwrap();
        let (stored, created_events, integrity) = store
            .read(|c| {
                let all = tasks::list(c, None, usize::MAX)?;
                let mut created = HashSet::new();
                for row in outbox::pending(c, usize::MAX)? {
                    let msg: Message<Event> = codec::decode(&row.payload).unwrap();
                    if let EventBody::TaskCreated { task } = msg.body.body {
                        created.insert(task.id);
                    }
                }
                let integrity: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
                Ok((all, created, integrity))
            })
            .await
            .unwrap();
        store.close().await;

        assert_eq!(integrity, "ok", "round {round}");
        let by_id: HashMap<TaskId, TaskState> =
            stored.into_iter().map(|t| (t.id, t.state)).collect();
        for (id, running) in acked {
            let state = by_id
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged task {id} is lost"));
            if *running {
                assert!(
                    matches!(state, TaskState::Running { .. }),
                    "round {round}: task {id} was acknowledged running but is {state:?}"
                );
            }
        }
        let task_ids: HashSet<TaskId> = by_id.keys().copied().collect();
        assert_eq!(
            task_ids, created_events,
            "round {round}: tasks and their created events must commit together"
        );
    });
}
