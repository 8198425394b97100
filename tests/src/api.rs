//! The agent's HTTP API as an operator's script drives it: curl, from the
//! host or from inside a test's network namespace, so the requests are real
//! HTTP from a real client.
//!
//! Set-up failures panic with what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;

/// An agent's API at `base` (`http://host:port`), reached from the host or
/// from inside `netns`.
#[derive(Debug, Clone, Copy)]
pub struct Api<'a> {
    base: &'a str,
    netns: Option<&'a Netns>,
    token: Option<&'a str>,
    ca: Option<&'a str>,
}

impl<'a> Api<'a> {
    /// The API at `base`, from the host.
    pub fn new(base: &'a str) -> Api<'a> {
        Api {
            base,
            netns: None,
            token: None,
            ca: None,
        }
    }

    /// The API at `base` (a hub), from the host, sending `token` as the
    /// bearer token.
    pub fn with_token(base: &'a str, token: &'a str) -> Api<'a> {
        Api {
            base,
            netns: None,
            token: Some(token),
            ca: None,
        }
    }

    /// The same API over HTTPS, trusting only the CA certificate in `ca`.
    pub fn with_ca(self, ca: &'a str) -> Api<'a> {
        Api {
            ca: Some(ca),
            ..self
        }
    }

    /// The API at `base`, from inside `netns`.
    pub fn within(netns: &'a Netns, base: &'a str) -> Api<'a> {
        Api {
            base,
            netns: Some(netns),
            token: None,
            ca: None,
        }
    }

    /// curl with `args` on `path`: (status, body text); status 0 when curl
    /// got no answer.
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let mut cmd = match self.netns {
            Some(ns) => ns.command("curl"),
            None => Command::new("curl"),
        };
        if let Some(token) = self.token {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(ca) = self.ca {
            cmd.args(["--cacert", ca]);
        }
        let out = cmd
            .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// `GET path`: (status, JSON body, or the text as a JSON string).
    pub fn get(&self, path: &str) -> (u16, Value) {
        json(self.curl(&[], path))
    }

    /// `POST path` with `body` of `content_type`.
    pub fn post(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let header = format!("Content-Type: {content_type}");
        json(self.curl(&["-X", "POST", "-H", &header, "--data-binary", body], path))
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &str) -> (u16, Value) {
        self.post(path, "application/json", body)
    }

    /// `POST /v1/inventory` with a YAML inventory file.
    pub fn import(&self, yaml: &str) -> (u16, Value) {
        self.post("/v1/inventory", "application/yaml", yaml)
    }

    /// Polls `GET /v1/tasks/{id}` until `done` says so, for at most `limit`.
    pub fn wait_task(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let found = crate::wait_for(limit, || {
            let (code, v) = self.get(&format!("/v1/tasks/{id}"));
            (code == 200 && done(&v)).then_some(v)
        });
        found.unwrap_or_else(|| {
            let (_, v) = self.get(&format!("/v1/tasks/{id}"));
            panic!("task {id} did not get there: {v}")
        })
    }

    /// Waits until the task succeeded or failed.
    pub fn wait_task_end(&self, id: &str, limit: Duration) -> Value {
        self.wait_task(id, limit, ended)
    }
}

fn json((code, text): (u16, String)) -> (u16, Value) {
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Whether a `GET /v1/tasks/{id}` answer shows the task ended.
pub fn ended(task: &Value) -> bool {
    let state = &task["task"]["state"];
    state == "succeeded" || state.get("failed").is_some()
}

/// The names of the steps a task ran, in order.
pub fn step_names(task: &Value) -> Vec<&str> {
    task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect()
}

/// Asserts every step ended `done`, each after the one before it, with its
/// start no later than its end.
pub fn assert_steps_done_in_order(task: &Value) {
    let mut previous = String::new();
    for s in task["steps"].as_array().unwrap() {
        assert_eq!(s["outcome"], "done", "{s}");
        let (started, finished) = (
            s["started_at"].as_str().unwrap(),
            s["finished_at"].as_str().unwrap(),
        );
        assert!(
            previous.as_str() <= started && started <= finished,
            "steps out of order at {s}"
        );
        previous = finished.to_owned();
    }
}
