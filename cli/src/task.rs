//! `dv task`: durable workflow tasks (provisioning, ...), and following one
//! live until it ends.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use comfy_table::Table;
use serde_json::Value;

use dv_protocol::api::{CommandAccepted, CommandRecord, TaskDetail};
use dv_protocol::{EventBody, SiteName, TaskState};
use dv_sdk::{Client, TaskQuery};

use crate::output::{self, Format};
use crate::progress::Progress;
use crate::target::{Failure, Global, Target, run_with};
use crate::{EXIT_TASK_BLOCKED, EXIT_TASK_FAILED};

const EXAMPLES: &str = "\
Examples:
  dv task list --state blocked
  dv task list --site osl-1 -o json    (hub)
  dv task show 0198c2a4-...
  dv task watch 0198c2a4-...           (exit 0 succeeded, 4 failed, 5 blocked)
  dv task retry 0198c2a4-...           (agent)";

/// `dv task` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Debug, Subcommand)]
enum TaskCommand {
    /// Tasks, oldest first.
    #[command(
        after_help = "Examples:\n  dv task list --state blocked\n  dv task list --site osl-1 -o json   (hub)"
    )]
    List {
        /// Only tasks in this state (pending, running, blocked, failed, succeeded).
        #[arg(long, value_parser = STATES)]
        state: Option<String>,
        /// Only this site's tasks (hub).
        #[arg(long)]
        site: Option<String>,
    },
    /// One task; from an agent, with the steps it ran and their times.
    #[command(after_help = "Example:\n  dv task show 0198c2a4-...")]
    Show {
        /// The task id.
        id: String,
    },
    /// Follow a task until it ends: exit 0 when it succeeds, 4 when it
    /// fails, 5 when it is blocked on a dependency.
    #[command(
        after_help = "Example:\n  dv task watch 0198c2a4-...   (exit 0 succeeded, 4 failed, 5 blocked)"
    )]
    Watch {
        /// The task id.
        id: String,
    },
    /// Run a blocked task's step again (once its dependency is fixed), and
    /// follow it (agent).
    #[command(after_help = "Example:\n  dv task retry 0198c2a4-...   (agent)")]
    Retry {
        /// The task id.
        id: String,
    },
}

const STATES: [&str; 5] = ["pending", "running", "blocked", "failed", "succeeded"];

/// Runs `dv task`.
pub fn run(args: TaskArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        execute(target, args.command, format).await
    })
}

async fn execute(target: &Target, cmd: TaskCommand, format: Format) -> Result<ExitCode, Failure> {
    let client = &target.client;
    match cmd {
        TaskCommand::List { state, site } => {
            let site = site
                .map(|s| {
                    SiteName::new(&s)
                        .map_err(|e| Failure::Config(format!("{s:?} is not a site name: {e}")))
                })
                .transpose()?;
            let query = TaskQuery {
                site,
                state: state.clone(),
            };
            let mut tasks = client.task_list(&query).await?;
            // The hub does not filter by state; filtering here as well
            // keeps the answer the same from both.
            if let Some(s) = &state {
                tasks.retain(|t| t.state.name() == s);
            }
            output::print_typed(&tasks, format, task_table);
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Show { id } => {
            let view = client.task_get(&id).await?;
            match &view.steps {
                Some(steps) => {
                    let detail = TaskDetail {
                        task: view.task.clone(),
                        steps: steps.clone(),
                    };
                    output::print_typed(&detail, format, steps_table);
                }
                None => output::print_typed(&view.task, format, output::fields),
            }
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Watch { id } => watch(client, &id).await,
        TaskCommand::Retry { id } => {
            target.needs_agent("dv task retry")?;
            client.task_retry(&id).await?;
            watch(client, &id).await
        }
    }
}

/// How often a followed task or command is read again.
const POLL: Duration = Duration::from_millis(500);

/// Where the hub's event feed is before a command is sent, so following
/// it shows the task's every state change, also those before the task was
/// first read. `None` from a server without one (an agent).
pub async fn event_position(client: &Client) -> Option<u64> {
    client.event_position().await.ok()
}

/// Follows a command the hub sent until the site started its task, then the
/// task (with the hub's events from `position` on, if given). A command
/// waits at the hub while its site is disconnected, so this waits as long
/// as it takes (Ctrl-C stops waiting; the command stays).
pub async fn follow_command(
    client: &Client,
    command: &CommandAccepted,
    position: Option<u64>,
) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let mut told = false;
    let progress = Progress::new();
    progress.status(format!(
        "waiting for site {} to start the task",
        command.site
    ));
    loop {
        match client.command_get(&command.command).await {
            Ok(CommandRecord {
                task: Some(task), ..
            }) => {
                progress.finish();
                eprintln!("task {}: started at site {}", task.id, task.site);
                let feed = position.map(|after| EventFeed {
                    site: task.site.clone(),
                    after,
                });
                return follow(client, &task.id.to_string(), feed).await;
            }
            Ok(CommandRecord {
                rejected: Some(reason),
                ..
            }) => {
                progress.finish();
                eprintln!("site {} refused the command: {reason}", command.site);
                return Ok(ExitCode::from(EXIT_TASK_FAILED));
            }
            // Not read back by the replica yet, or no task yet.
            Ok(_) | Err(dv_sdk::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if !told && started.elapsed() > Duration::from_secs(5) {
            progress.suspend_eprintln(format!(
                "waiting for site {} to start the task (a disconnected site gets the command when it reconnects; \
                 Ctrl-C stops waiting, the command stays queued: dv task list --site {})",
                command.site, command.site
            ));
            told = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Follows task `id` until it ends or blocks: from an agent, each step as
/// it starts and ends; from the hub (no step logs), each change of state.
/// Bounded only by the task itself (every step has its own timeout in the
/// agent); an unreachable server ends the watch.
pub async fn watch(client: &Client, id: &str) -> Result<ExitCode, Failure> {
    follow(client, id, None).await
}

/// [`watch`], with the hub's event feed from where `feed` is, if given;
/// else from the first read of the task on.
async fn follow(client: &Client, id: &str, feed: Option<EventFeed>) -> Result<ExitCode, Failure> {
    let progress = Progress::new();
    progress.status(format!("task {id}: reading its state"));
    let mut printed = 0usize;
    let mut running_printed: Option<i64> = None;
    let mut last_state: Option<TaskState> = None;
    // Through a hub: its event feed, for the changes between two reads.
    // Read before the task, so the task read is never older than them.
    let mut feed_tried = feed.is_some();
    let mut feed = feed;
    loop {
        if let Some(f) = &mut feed {
            for (at, state) in f.changes(client, id).await {
                if last_state.as_ref() != Some(&state) {
                    progress.line(&format!("{at}  {}", state_line(&state)));
                    progress.status(format!("task {}", state_line(&state).trim_end()));
                    last_state = Some(state);
                }
            }
        }
        let view = client.task_get(id).await?;
        if view.steps.is_none() && !feed_tried {
            feed_tried = true;
            feed = EventFeed::start(client, &view.task.site).await;
        }
        match &view.steps {
            Some(steps) => {
                for s in &steps[printed.min(steps.len())..] {
                    let Some(finished_at) = &s.finished_at else {
                        if running_printed != Some(s.seq) {
                            progress.line(&format!("{}  {:<14} running", s.started_at, s.step));
                            progress.status(format!("step {} ({}) running", s.seq, s.step));
                            running_printed = Some(s.seq);
                        }
                        break;
                    };
                    if running_printed != Some(s.seq) {
                        progress.line(&format!("{}  {:<14} running", s.started_at, s.step));
                    }
                    let detail = s
                        .detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    progress.line(&format!(
                        "{finished_at}  {:<14} {}{detail}",
                        s.step,
                        s.outcome.as_deref().unwrap_or_default()
                    ));
                    progress.status(format!(
                        "step {} ({}) ended, next step starting",
                        s.seq, s.step
                    ));
                    printed += 1;
                    running_printed = None;
                }
            }
            None => {
                if last_state.as_ref() != Some(&view.task.state) {
                    progress.line(&format!(
                        "{}  {}",
                        view.task
                            .updated_at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        state_line(&view.task.state)
                    ));
                    progress.status(format!("task {}", state_line(&view.task.state).trim_end()));
                    last_state = Some(view.task.state.clone());
                }
            }
        }
        match &view.task.state {
            TaskState::Succeeded => {
                progress.finish();
                println!("task {id} succeeded");
                return Ok(ExitCode::SUCCESS);
            }
            TaskState::Failed { reason } => {
                progress.finish();
                eprintln!("task {id} failed: {reason}");
                return Ok(ExitCode::from(EXIT_TASK_FAILED));
            }
            TaskState::Blocked { dependency, kind } => {
                progress.finish();
                let retry = match &view.steps {
                    Some(_) => format!("dv task retry {id}"),
                    None => format!(
                        "dv --agent <site {} agent URL> task retry {id}",
                        view.task.site
                    ),
                };
                eprintln!(
                    "task {id} is blocked on {dependency} ({} dependency)\nhint: fix it, then run: {retry}",
                    kind
                );
                return Ok(ExitCode::from(EXIT_TASK_BLOCKED));
            }
            TaskState::Pending | TaskState::Running { .. } => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The hub's events of one site from a position on: each of the task's
/// state changes, even one that came and went between two reads of it.
struct EventFeed {
    site: SiteName,
    after: u64,
}

impl EventFeed {
    /// From now on; `None` when the server has no event feed (an agent,
    /// which has step logs instead, or an older hub): reading the task
    /// alone still follows it.
    async fn start(client: &Client, site: &SiteName) -> Option<EventFeed> {
        let after = client.event_position().await.ok()?;
        Some(EventFeed {
            site: site.clone(),
            after,
        })
    }

    /// The task's state changes since the last call, oldest first, each
    /// with when it happened. A failed read yields none (the next one
    /// catches up from the same position).
    async fn changes(&mut self, client: &Client, task: &str) -> Vec<(String, TaskState)> {
        let mut out = Vec::new();
        // A bounded catch-up per poll; the rest comes on the next one.
        for _ in 0..10 {
            let Ok(events) = client.event_list(Some(&self.site), self.after, 500).await else {
                break;
            };
            let Some(last) = events.last() else {
                break;
            };
            self.after = last.stream_seq;
            for e in &events {
                if let Some(EventBody::TaskStateChanged { task: t, to, .. }) = e.decoded()
                    && t.to_string() == task
                {
                    out.push((e.occurred_at.clone(), to));
                }
            }
            if events.len() < 500 {
                break;
            }
        }
        out
    }
}

/// A state as a progress line: `running set_pxe`, `pending`.
fn state_line(state: &TaskState) -> String {
    match state {
        TaskState::Running { step } => format!("{:<14} running", step),
        TaskState::Blocked { dependency, .. } => format!("blocked on {dependency}"),
        TaskState::Failed { reason } => format!("failed: {reason}"),
        other => other.name().to_owned(),
    }
}

fn task_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["ID", "KIND", "STATE", "UPDATED"]);
    for task in v.as_array().into_iter().flatten() {
        let kind = task["kind"]
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        t.add_row(vec![
            comfy_table::Cell::new(output::cell(&task["id"])),
            comfy_table::Cell::new(kind),
            crate::style::state_cell(state_text(&task["state"])),
            comfy_table::Cell::new(output::cell(&task["updated_at"])),
        ]);
    }
    t
}

fn steps_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["STEP", "STARTED", "FINISHED", "OUTCOME", "DETAIL"]);
    for s in v["steps"].as_array().into_iter().flatten() {
        t.add_row(vec![
            output::cell(&s["step"]),
            output::cell(&s["started_at"]),
            output::cell(&s["finished_at"]),
            output::cell(&s["outcome"]),
            output::cell(&s["detail"]),
        ]);
    }
    t.add_row(vec![
        "(task)".to_owned(),
        String::new(),
        String::new(),
        state_text(&v["task"]["state"]),
        String::new(),
    ]);
    t
}

/// A task state as one line: `running (set_pxe)`, `failed: ...`.
fn state_text(state: &Value) -> String {
    match state {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.iter().next() {
            Some((k, v)) if k == "running" => format!("running ({})", output::cell(&v["step"])),
            Some((k, v)) if k == "failed" => format!("failed: {}", output::cell(&v["reason"])),
            Some((k, v)) if k == "blocked" => {
                format!("blocked on {}", output::cell(&v["dependency"]))
            }
            Some((k, _)) => k.clone(),
            None => String::new(),
        },
        other => output::cell(other),
    }
}
