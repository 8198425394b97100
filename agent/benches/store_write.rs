//! Store write throughput: group commit against one-commit-per-write.
//!
//! Both sides write the same row (a task and its outbox event) with the same
//! durability (WAL, synchronous=FULL: every commit fsyncs). The baseline commits
//! each write on its own, as a store without group commit would; the agent's
//! store is driven by N concurrent callers and batches what queues up.
//!
//! Run: `cargo bench -p dv-agent --bench store_write` (prints a table; set
//! `DV_BENCH_WRITES` to change the writes per case).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use dv_agent::store::{Store, tasks};
use dv_protocol::{Actor, MachineId, SiteName, Task, TaskKind};

fn main() {
    let writes: usize = std::env::var("DV_BENCH_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let site = SiteName::new("bench").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let baseline = one_commit_per_write(&site, writes.min(5_000));
    println!("store write throughput ({writes} writes per case, synchronous=FULL)");
    println!("{:<34} {:>12} {:>10}", "case", "writes/s", "vs base");
    println!(
        "{:<34} {:>12.0} {:>10}",
        "commit per write (1 caller)", baseline, "1.0x"
    );
    for callers in [1usize, 8, 64, 256] {
        let rate = runtime.block_on(group_commit(&site, writes, callers));
        println!(
            "{:<34} {:>12.0} {:>9.1}x",
            format!("group commit ({callers} callers)"),
            rate,
            rate / baseline
        );
    }
}

fn task(site: &SiteName) -> Task {
    Task::new(
        site.clone(),
        TaskKind::ProvisionMachine {
            machine: MachineId::new(),
        },
    )
}

/// The baseline: the same schema and rows, one transaction (one fsync) each.
fn one_commit_per_write(site: &SiteName, writes: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    // Open through the store once so the schema and pragmas are identical.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async { Store::open(dir.path()).unwrap().close().await });
    let mut conn = rusqlite::Connection::open(dir.path().join("agent.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    let actor = Actor::agent(site);
    let started = Instant::now();
    for _ in 0..writes {
        let tx = conn.transaction().unwrap();
        tasks::create(&tx, &task(site), &actor).unwrap();
        tx.commit().unwrap();
    }
    rate(writes, started.elapsed())
}

async fn group_commit(site: &SiteName, writes: usize, callers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let actor = Actor::agent(site);
    let per_caller = writes / callers;
    let started = Instant::now();
    let mut handles = Vec::with_capacity(callers);
    for _ in 0..callers {
        let (store, site, actor) = (store.clone(), site.clone(), actor.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..per_caller {
                let (t, a) = (task(&site), actor.clone());
                store
                    .write(move |c| tasks::create(c, &t, &a))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    store.close().await;
    rate(per_caller * callers, elapsed)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}
