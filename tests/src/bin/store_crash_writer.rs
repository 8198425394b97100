//! Test-only program for the store crash test (`tests/tests/store_crash.rs`).
//!
//! Writes tasks to an agent store from many concurrent writers, so writes are
//! group-committed, and prints a line on stdout for each write only after the
//! store acknowledged it: `C <id>` when a task was created, `R <id>` when it
//! was then moved to running. The test kills this process with SIGKILL at
//! random moments and checks that every printed write survived.
//!
//! Usage: store-crash-writer DATA_DIR [WRITERS] [MAX_WRITES]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use dv_agent::store::{Store, sites, tasks};
use dv_protocol::{Actor, MachineId, Site, SiteName, Task, TaskKind, TaskState};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: store-crash-writer DATA_DIR [WRITERS] [MAX_WRITES]")?,
    );
    let writers: u64 = args.next().map_or(Ok(16), |s| s.parse())?;
    // A bound, so a test whose kill never comes still ends.
    let max_writes: u64 = args.next().map_or(Ok(200_000), |s| s.parse())?;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let site = SiteName::new("crash")?;
        let store = Store::open(&dir)?;
        sites::register(
            &store,
            &Site::new(site.clone(), "crash.test".parse()?, None)?,
        )
        .await?;
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let mut handles = Vec::new();
        for _ in 0..writers {
            let (store, site, out) = (store.clone(), site.clone(), out.clone());
            handles.push(tokio::spawn(async move {
                write_loop(store, site, out, max_writes / writers).await
            }));
        }
        for h in handles {
            h.await??;
        }
        store.close().await;
        anyhow::Ok(())
    })
}

async fn write_loop(
    store: Store,
    site: SiteName,
    out: Arc<Mutex<std::io::Stdout>>,
    count: u64,
) -> anyhow::Result<()> {
    let actor = Actor::agent(&site);
    for i in 0..count {
        let task = Task::new(
            site.clone(),
            TaskKind::ProvisionMachine {
                machine: MachineId::new(),
            },
        );
        let id = task.id;
        let a = actor.clone();
        store.write(move |c| tasks::create(c, &task, &a)).await?;
        say(&out, &format!("C {id}\n"))?;
        if i % 3 == 0 {
            let a = actor.clone();
            let running = TaskState::Running {
                step: "power_cycle".into(),
            };
            store
                .write(move |c| tasks::set_state(c, id, running, &a))
                .await?;
            say(&out, &format!("R {id}\n"))?;
        }
    }
    Ok(())
}

/// One write(2) per line, so a kill never interleaves two lines.
fn say(out: &Mutex<std::io::Stdout>, line: &str) -> anyhow::Result<()> {
    let stdout = out
        .lock()
        .map_err(|_| anyhow::anyhow!("stdout lock poisoned"))?;
    let mut lock = stdout.lock();
    lock.write_all(line.as_bytes())?;
    lock.flush()?;
    Ok(())
}
