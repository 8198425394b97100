//! `dv task`: durable workflow tasks (provisioning, ...), and following one
//! live until it ends.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfy_table::Table;
use serde_json::Value;

use crate::client::{CallError, Client};
use crate::output::{self, Format};
use crate::{EXIT_API, EXIT_TASK_BLOCKED, EXIT_TASK_FAILED};

/// `dv task`.
#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(flatten)]
    global: crate::ce::Global,
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Debug, Subcommand)]
enum TaskCommand {
    /// Tasks, oldest first.
    List {
        /// Only tasks in this state (pending, running, blocked, failed, succeeded).
        #[arg(long)]
        state: Option<String>,
    },
    /// One task and the steps it ran, with their times.
    Show {
        /// The task id.
        id: String,
    },
    /// Follow a task until it ends: exit 0 when it succeeds, 4 when it
    /// fails, 5 when it is blocked on a dependency.
    Watch {
        /// The task id.
        id: String,
    },
    /// Run a blocked task's step again (once its dependency is fixed).
    Retry {
        /// The task id.
        id: String,
    },
}

/// Runs `dv task`.
pub fn run(args: TaskArgs) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::from(EXIT_API);
    };
    let client = match Client::new(&args.global.agent) {
        Ok(c) => c,
        Err(e) => return crate::ce::report(&args.global.agent, e),
    };
    let format = args.global.output;
    match runtime.block_on(execute(&client, args.command, format)) {
        Ok(code) => code,
        Err(e) => crate::ce::report(client.base(), e),
    }
}

async fn execute(client: &Client, cmd: TaskCommand, format: Format) -> Result<ExitCode, CallError> {
    match cmd {
        TaskCommand::List { state } => {
            let path = match state {
                Some(s) => format!("/v1/tasks?state={s}"),
                None => "/v1/tasks".to_owned(),
            };
            let v = client.get(&path).await?;
            output::print(&v, format, task_table);
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Show { id } => {
            let v = client.get(&format!("/v1/tasks/{id}")).await?;
            output::print(&v, format, steps_table);
            Ok(ExitCode::SUCCESS)
        }
        TaskCommand::Watch { id } => watch(client, &id).await,
        TaskCommand::Retry { id } => {
            client
                .post_json(&format!("/v1/tasks/{id}/retry"), &serde_json::json!({}))
                .await?;
            watch(client, &id).await
        }
    }
}

/// Follows task `id`, printing each step as it starts and ends, until the
/// task ends or blocks. Bounded only by the task itself (every step has its
/// own timeout in the agent); an unreachable agent ends the watch.
pub async fn watch(client: &Client, id: &str) -> Result<ExitCode, CallError> {
    let mut printed = 0usize;
    let mut running_printed: Option<i64> = None;
    loop {
        let v = client.get(&format!("/v1/tasks/{id}")).await?;
        let steps = v["steps"].as_array().cloned().unwrap_or_default();
        for s in &steps[printed.min(steps.len())..] {
            let seq = s["seq"].as_i64().unwrap_or(0);
            if s["finished_at"].is_null() {
                if running_printed != Some(seq) {
                    println!(
                        "{}  {:<14} running",
                        output::cell(&s["started_at"]),
                        output::cell(&s["step"])
                    );
                    running_printed = Some(seq);
                }
                break;
            }
            if running_printed != Some(seq) {
                println!(
                    "{}  {:<14} running",
                    output::cell(&s["started_at"]),
                    output::cell(&s["step"])
                );
            }
            let detail = match &s["detail"] {
                Value::Null => String::new(),
                d => format!(": {}", output::cell(d)),
            };
            println!(
                "{}  {:<14} {}{detail}",
                output::cell(&s["finished_at"]),
                output::cell(&s["step"]),
                output::cell(&s["outcome"])
            );
            printed += 1;
            running_printed = None;
        }
        let state = &v["task"]["state"];
        if state == "succeeded" {
            println!("task {id} succeeded");
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(f) = state.get("failed") {
            eprintln!("task {id} failed: {}", output::cell(&f["reason"]));
            return Ok(ExitCode::from(EXIT_TASK_FAILED));
        }
        if let Some(b) = state.get("blocked") {
            eprintln!(
                "task {id} is blocked on {} ({} dependency)\nhint: fix it, then run: dv task retry {id}",
                output::cell(&b["dependency"]),
                output::cell(&b["kind"])
            );
            return Ok(ExitCode::from(EXIT_TASK_BLOCKED));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
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
            output::cell(&task["id"]),
            kind,
            state_text(&task["state"]),
            output::cell(&task["updated_at"]),
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
