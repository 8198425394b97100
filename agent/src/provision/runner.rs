//! Drives provisioning and deprovisioning tasks: each step's start, outcome
//! and the task's new state are committed to the store (with their
//! events), so an agent that restarts resumes every task where it stood
//! ([`Provisioner::resume_all`]).
//!
//! Deprovisioning runs `release` (the machine becomes `deprovisioning` and
//! its boot entry `wipe`, in one transaction), `set_pxe`, `power_cycle`
//! (into the wipe environment: by default the discovery environment with
//! `dv.wipe=1`, which erases the disks' partition tables and ends, reports
//! `stage=wiped` and powers off), `await_wipe`, `power_off` and `available`
//! (boot entry back to `discover`).
//!
//! Provisioning steps, with what they touch:
//! - `network`: every switch port the machine is cabled to (port
//!   assignments naming it) carries its intent on the switch, as last read
//!   back; otherwise the task is blocked on `network: ...` until an apply
//!   of that switch retries it. What was found is kept in the step log.
//! - `allocate`: the machine must be `available`; it becomes `allocated`.
//! - `set_pxe`: one-time network boot through the BMC (read back).
//! - `power_cycle`: power on, or force a restart if it is on (read back);
//!   the machine becomes `provisioning`.
//! - `await_install`: a boot callback with `stage=installed` from one of
//!   the machine's MACs, after the step started, within the install timeout.
//! - `set_disk`: one-time disk boot through the BMC.
//! - `ready`: the machine becomes `ready`.
//!
//! With `[talos]` configured, `allocate` also sets the machine's boot entry
//! (its first MAC) to install Talos (kernel, initrd, and
//! `talos.platform=metal init_on_alloc=1 slab_nomerge pti=on
//! talos.config=<agent>/boot/<mac>/talos.yaml`),
//! creating the cluster's secrets first if this is its first machine, and
//! refuses a machine whose role is not control_plane or worker; `ready`
//! sets the boot entry to the local disk. Each is one transaction with the
//! machine's state change and the `machine.boot-state-set` event.
//!
//! An unreachable BMC blocks the task (a hard dependency, named) instead of
//! retrying forever; [`Provisioner::retry`] runs the blocked step again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dv_protocol::{
    Actor, Command, MachineId, MachineState, SiteName, SwitchName, Task, TaskId, TaskKind,
    TaskState,
};

use super::workflow::{self, Flow, Outcome, Step};
use crate::bmc::machine::{DriverError, driver_for};
use crate::bmc::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState};
use crate::boot::{BootState, MachineBoot};
use crate::inventory::SiteKey;
use crate::store::{
    Store, StoreError, boot as boot_store, commands, inventory as db, steps, tasks,
};
use crate::talos::Talos;

/// Time limits of provisioning.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionLimits {
    /// How long `await_install` waits for the installer's callback,
    /// counted from the step's recorded start (a restart does not reset it).
    pub install: Duration,
    /// The same for `await_wipe` and the wipe environment's callback.
    pub wipe: Duration,
    /// How often it looks.
    pub poll: Duration,
    /// BMC calls.
    pub bmc: Limits,
}

impl Default for ProvisionLimits {
    fn default() -> Self {
        ProvisionLimits {
            install: Duration::from_secs(30 * 60),
            wipe: Duration::from_secs(30 * 60),
            poll: Duration::from_secs(1),
            bmc: Limits::default(),
        }
    }
}

/// Why a provisioning request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// No such machine.
    #[error("no machine has the id, serial or MAC {0:?}")]
    NotFound(String),
    /// No such task.
    #[error("no task {0}")]
    NoTask(String),
    /// The task is not blocked, so there is nothing to retry.
    #[error("task {task} is {state}; only blocked tasks are retried")]
    NotBlocked {
        /// The task.
        task: TaskId,
        /// Its state.
        state: String,
    },
    /// The store failed.
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// Starts, drives and resumes provisioning tasks.
#[derive(Debug)]
pub struct Provisioner {
    store: Store,
    site: SiteName,
    actor: Actor,
    site_key: SiteKey,
    limits: ProvisionLimits,
    talos: Option<Arc<Talos>>,
    switches: Vec<SwitchName>,
}

impl Provisioner {
    /// A provisioner for `site`; with `talos`, provisioning installs Talos
    /// (see the module docs).
    pub fn new(
        store: Store,
        site: SiteName,
        site_key: SiteKey,
        limits: ProvisionLimits,
        talos: Option<Arc<Talos>>,
    ) -> Arc<Self> {
        Arc::new(Provisioner {
            actor: Actor::agent(&site),
            store,
            site,
            site_key,
            limits,
            talos,
            switches: Vec::new(),
        })
    }

    /// A provisioner whose `network` step checks the ports of the machine
    /// on `switches` (the ones this agent configures); ports on other
    /// switches are noted, not checked.
    pub fn with_switches(
        store: Store,
        site: SiteName,
        site_key: SiteKey,
        limits: ProvisionLimits,
        talos: Option<Arc<Talos>>,
        switches: Vec<SwitchName>,
    ) -> Arc<Self> {
        Arc::new(Provisioner {
            actor: Actor::agent(&site),
            store,
            site,
            site_key,
            limits,
            talos,
            switches,
        })
    }

    /// Creates a provisioning task for the machine `key` and starts it.
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<Task, ProvisionError> {
        self.begin(key, Flow::Provision).await
    }

    /// Creates a deprovisioning task (wipe, power off, back to available)
    /// for the machine `key` and starts it.
    pub async fn deprovision(self: &Arc<Self>, key: &str) -> Result<Task, ProvisionError> {
        self.begin(key, Flow::Deprovision).await
    }

    async fn begin(self: &Arc<Self>, key: &str, flow: Flow) -> Result<Task, ProvisionError> {
        let lookup = key.to_owned();
        let machine = self
            .store
            .read(move |c| db::machine(c, &lookup))
            .await?
            .ok_or_else(|| ProvisionError::NotFound(key.to_owned()))?;
        let kind = match flow {
            Flow::Provision => TaskKind::ProvisionMachine {
                machine: machine.id,
            },
            Flow::Deprovision => TaskKind::DeprovisionMachine {
                machine: machine.id,
            },
        };
        let task = Task::new(self.site.clone(), kind);
        let (t, actor) = (task.clone(), self.actor.clone());
        self.store
            .write(move |c| tasks::create(c, &t, &actor))
            .await?;
        tracing::info!(task = %task.id, machine = %machine.id, serial = %machine.serial, kind = task.kind.name(), "machine task started");
        self.spawn(task.id);
        Ok(task)
    }

    /// Acts on a command from the hub, once per command id: creates the
    /// command's task and records the command in one transaction, then
    /// starts the task. A command seen before returns its task and starts
    /// nothing (`false`); a new one returns `true`.
    pub async fn command(
        self: &Arc<Self>,
        cause: &dv_protocol::Envelope,
        command: &Command,
    ) -> Result<(Task, bool), ProvisionError> {
        let id = cause.id;
        let cause = cause.clone();
        let (machine, flow) = match command {
            Command::ProvisionMachine { machine } => (*machine, Flow::Provision),
            Command::DeprovisionMachine { machine } => (*machine, Flow::Deprovision),
        };
        let (site, actor, action) = (self.site.clone(), self.actor.clone(), command.action());
        let outcome = self
            .store
            .write(move |c| {
                if let Some(seen) = commands::seen(c, id)? {
                    let task = seen.map(|t| tasks::get(c, t)).transpose()?.flatten();
                    return Ok(match task {
                        Some(task) => Ok((task, false)),
                        None => Err(ProvisionError::NoTask(format!("of command {id}"))),
                    });
                }
                let Some(found) = db::machine(c, &machine.to_string())? else {
                    return Ok(Err(ProvisionError::NotFound(machine.to_string())));
                };
                let kind = match flow {
                    Flow::Provision => TaskKind::ProvisionMachine { machine: found.id },
                    Flow::Deprovision => TaskKind::DeprovisionMachine { machine: found.id },
                };
                let task = Task::new(site, kind);
                // Caused by the command: the hub links the task to it.
                tasks::create_caused(c, &task, &actor, Some(&cause))?;
                commands::record(c, id, action, Some(task.id))?;
                Ok(Ok((task, true)))
            })
            .await??;
        if outcome.1 {
            tracing::info!(command = %id, task = %outcome.0.id, %machine, kind = outcome.0.kind.name(), "machine task started by command");
            self.spawn(outcome.0.id);
        }
        Ok(outcome)
    }

    /// Records that the command `cause` was refused: its id (a redelivery
    /// is then not considered again) and a `command.rejected` event caused
    /// by it, which tells the hub (and the operator waiting there) why, in
    /// one transaction. False if the command was already recorded.
    pub async fn reject(
        &self,
        cause: &dv_protocol::Envelope,
        action: &str,
        reason: &str,
    ) -> Result<bool, ProvisionError> {
        let (site, actor, cause) = (self.site.clone(), self.actor.clone(), cause.clone());
        let (action, reason) = (action.to_owned(), reason.to_owned());
        let recorded = self
            .store
            .write(move |c| {
                if commands::seen(c, cause.id)?.is_some() {
                    return Ok(false);
                }
                commands::record(c, cause.id, &action, None)?;
                let event = dv_protocol::Event::new(dv_protocol::EventBody::CommandRejected {
                    command: cause.id,
                    action,
                    reason,
                });
                let message =
                    dv_protocol::Message::from_event(site, actor, event).caused_by(&cause);
                crate::store::outbox::record(c, &message)?;
                Ok(true)
            })
            .await?;
        Ok(recorded)
    }

    /// Resumes every provisioning task that was pending or running.
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut n = 0;
        for state in ["pending", "running"] {
            let s = state.to_owned();
            let list = self
                .store
                .read(move |c| tasks::list(c, Some(&s), 10_000))
                .await?;
            for t in list {
                if flow_of(&t.kind).is_some() {
                    tracing::info!(task = %t.id, state = %t.state, "resuming provisioning");
                    self.spawn(t.id);
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Runs a blocked task's blocked step again.
    pub async fn retry(self: &Arc<Self>, id: TaskId) -> Result<Task, ProvisionError> {
        let actor = self.actor.clone();
        let moved = self
            .store
            .write(move |c| {
                let Some(task) = tasks::get(c, id)? else {
                    return Ok(Err(ProvisionError::NoTask(id.to_string())));
                };
                let Some(flow) = flow_of(&task.kind) else {
                    return Ok(Err(ProvisionError::NoTask(id.to_string())));
                };
                let first = flow.steps().first().copied().unwrap_or(Step::Allocate);
                let step = steps::last(c, id)?
                    .and_then(|s| Step::parse(&s))
                    .unwrap_or(first);
                match workflow::retry(&task.state, step) {
                    Some(to) => Ok(Ok(tasks::set_state(c, id, to, &actor)?)),
                    None => Ok(Err(ProvisionError::NotBlocked {
                        task: id,
                        state: task.state.to_string(),
                    })),
                }
            })
            .await??;
        let task = moved.ok_or_else(|| ProvisionError::NoTask(id.to_string()))?;
        self.spawn(id);
        Ok(task)
    }

    fn spawn(self: &Arc<Self>, id: TaskId) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.drive(id).await {
                tracing::error!(task = %id, error = %crate::telemetry::error_chain(&e), "provisioning task stopped; it resumes at the next start");
            }
        });
    }

    /// Runs the task until it ends or blocks. Bounded: each step runs at
    /// most once per call (no flow has more than [`workflow::MAX_STEPS`]).
    async fn drive(&self, id: TaskId) -> Result<(), StoreError> {
        for _ in 0..=workflow::MAX_STEPS {
            let Some(task) = self.store.read(move |c| tasks::get(c, id)).await? else {
                return Ok(());
            };
            let (Some(flow), dv_protocol::ResourceRef::Machine(machine)) =
                (flow_of(&task.kind), task.kind.target())
            else {
                return Ok(());
            };
            let step = match workflow::resume(flow, &task.state) {
                Ok(Some(step)) => step,
                Ok(None) => return Ok(()),
                Err(reason) => {
                    let actor = self.actor.clone();
                    self.store
                        .write(move |c| {
                            tasks::set_state(c, id, TaskState::Failed { reason }, &actor)
                        })
                        .await?;
                    return Ok(());
                }
            };
            let (actor, running) = (
                self.actor.clone(),
                TaskState::Running {
                    step: step.name().to_owned(),
                },
            );
            let needs_state = task.state != running;
            let seq = self
                .store
                .write(move |c| {
                    if needs_state {
                        tasks::set_state(c, id, running, &actor)?;
                    }
                    steps::start(c, id, step.name())
                })
                .await?;
            tracing::info!(task = %id, %machine, %step, "provisioning step started");
            let started = Instant::now();
            let outcome = self.run(flow, step, machine, id, seq).await;
            let next = workflow::after(flow, step, &outcome);
            let (word, detail) = match &outcome {
                Outcome::Done => ("done", None),
                Outcome::Noted(n) => ("done", Some(n.clone())),
                Outcome::Failed(r) => ("failed", Some(r.clone())),
                Outcome::Blocked(d) => ("blocked", Some(d.clone())),
            };
            tracing::info!(task = %id, %machine, %step, outcome = word, detail = ?detail, took = ?started.elapsed(), "provisioning step ended");
            let actor = self.actor.clone();
            self.store
                .write(move |c| {
                    steps::finish(c, id, seq, word, detail.as_deref())?;
                    tasks::set_state(c, id, next, &actor)
                })
                .await?;
        }
        Ok(())
    }

    async fn run(
        &self,
        flow: Flow,
        step: Step,
        machine: MachineId,
        task: TaskId,
        seq: i64,
    ) -> Outcome {
        match step {
            Step::Network => super::network::check(&self.store, &self.switches, machine).await,
            Step::Allocate => match &self.talos {
                Some(talos) => self.allocate_talos(talos, machine).await,
                None => {
                    self.machine_state(machine, &[MachineState::Available], MachineState::Allocated)
                        .await
                }
            },
            Step::SetPxe => {
                self.bmc(
                    machine,
                    |b| async move { b.boot_once(BootTarget::Pxe).await },
                )
                .await
            }
            Step::PowerCycle => {
                let powered = self
                    .bmc(machine, |b| async move {
                        let action = match b.power_state().await? {
                            PowerState::On | PowerState::PoweringOn => PowerAction::ForceRestart,
                            PowerState::Off | PowerState::PoweringOff => PowerAction::On,
                        };
                        b.set_power(action).await
                    })
                    .await;
                if powered != Outcome::Done || flow == Flow::Deprovision {
                    return powered;
                }
                self.machine_state(
                    machine,
                    &[MachineState::Allocated],
                    MachineState::Provisioning,
                )
                .await
            }
            Step::AwaitInstall => {
                self.await_stage(
                    machine,
                    task,
                    seq,
                    "installed",
                    "install",
                    self.limits.install,
                )
                .await
            }
            Step::SetDisk => {
                self.bmc(
                    machine,
                    |b| async move { b.boot_once(BootTarget::Hdd).await },
                )
                .await
            }
            Step::Ready => match &self.talos {
                Some(talos) => self.ready_talos(talos, machine).await,
                None => {
                    self.machine_state(machine, &[MachineState::Provisioning], MachineState::Ready)
                        .await
                }
            },
            Step::Release => {
                self.state_and_entry(
                    machine,
                    &[
                        MachineState::Ready,
                        MachineState::Failed,
                        MachineState::Allocated,
                        MachineState::Provisioning,
                        MachineState::Available,
                    ],
                    MachineState::Deprovisioning,
                    BootState::Wipe,
                )
                .await
            }
            Step::AwaitWipe => {
                self.await_stage(machine, task, seq, "wiped", "wipe", self.limits.wipe)
                    .await
            }
            Step::PowerOff => {
                self.bmc(machine, |b| async move {
                    b.set_power(PowerAction::ForceOff).await
                })
                .await
            }
            Step::Available => {
                self.state_and_entry(
                    machine,
                    &[MachineState::Deprovisioning],
                    MachineState::Available,
                    BootState::Discover,
                )
                .await
            }
        }
    }

    /// `allocate` with Talos: the machine must have a Talos role; the
    /// cluster's secrets exist (generated now if this is its first
    /// machine); then, in one write, the machine becomes `allocated` and
    /// its boot entry becomes the Talos install.
    async fn allocate_talos(&self, talos: &Talos, id: MachineId) -> Outcome {
        let key = id.to_string();
        let machine = match self.store.read(move |c| db::machine(c, &key)).await {
            Ok(Some(m)) => m,
            Ok(None) => return Outcome::Failed(format!("machine {id} is not in the inventory")),
            Err(e) => return Outcome::Failed(crate::telemetry::error_chain(&e)),
        };
        let entry = match talos.install_entry(&machine) {
            Ok(entry) => entry,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if let Err(e) = talos.secrets(&self.store).await {
            return Outcome::Failed(crate::telemetry::error_chain(&e));
        }
        self.state_and_boot(
            id,
            &[MachineState::Available],
            MachineState::Allocated,
            entry,
        )
        .await
    }

    /// `ready` with Talos: the machine becomes `ready` and its boot entry
    /// local disk, in one write.
    async fn ready_talos(&self, talos: &Talos, id: MachineId) -> Outcome {
        let key = id.to_string();
        let machine = match self.store.read(move |c| db::machine(c, &key)).await {
            Ok(Some(m)) => m,
            Ok(None) => return Outcome::Failed(format!("machine {id} is not in the inventory")),
            Err(e) => return Outcome::Failed(crate::telemetry::error_chain(&e)),
        };
        let entry = match talos.local_entry(&machine) {
            Ok(entry) => entry,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        self.state_and_boot(
            id,
            &[MachineState::Provisioning],
            MachineState::Ready,
            entry,
        )
        .await
    }

    /// As [`Self::state_and_boot`], with the boot entry `state` (no
    /// parameters of its own) for the machine's first MAC.
    async fn state_and_entry(
        &self,
        id: MachineId,
        from: &[MachineState],
        to: MachineState,
        state: BootState,
    ) -> Outcome {
        let key = id.to_string();
        let machine = match self.store.read(move |c| db::machine(c, &key)).await {
            Ok(Some(m)) => m,
            Ok(None) => return Outcome::Failed(format!("machine {id} is not in the inventory")),
            Err(e) => return Outcome::Failed(crate::telemetry::error_chain(&e)),
        };
        let Some(mac) = machine.macs.first().copied() else {
            return Outcome::Failed(format!(
                "machine {} has no MAC in the inventory, so it cannot network-boot",
                machine.serial
            ));
        };
        self.state_and_boot(id, from, to, MachineBoot::unknown(mac, state))
            .await
    }

    /// Moves the machine from one of `from` to `to` and stores its boot
    /// entry `boot` (with `machine.boot-state-set`) in one transaction.
    async fn state_and_boot(
        &self,
        id: MachineId,
        from: &[MachineState],
        to: MachineState,
        boot: MachineBoot,
    ) -> Outcome {
        let (site, actor, from) = (self.site.clone(), self.actor.clone(), from.to_vec());
        let (mac, state) = (boot.mac, boot.state);
        let written = self
            .store
            .write(
                move |c| match db::set_state(c, &site, &actor, id, &from, to)? {
                    Ok(()) => boot_store::set(c, &site, &actor, &boot).map(|_| Ok(())),
                    Err(now) => Ok(Err(now)),
                },
            )
            .await;
        match written {
            Ok(Ok(())) => {
                tracing::info!(machine = %id, %mac, boot = %state, "boot entry set");
                Outcome::Done
            }
            Ok(Err(now)) => Outcome::Failed(format!(
                "the machine is {}, so it cannot become {}",
                now.as_str(),
                to.as_str()
            )),
            Err(e) => Outcome::Failed(crate::telemetry::error_chain(&e)),
        }
    }

    async fn machine_state(
        &self,
        id: MachineId,
        from: &[MachineState],
        to: MachineState,
    ) -> Outcome {
        let (site, actor, from) = (self.site.clone(), self.actor.clone(), from.to_vec());
        match self
            .store
            .write(move |c| db::set_state(c, &site, &actor, id, &from, to))
            .await
        {
            Ok(Ok(())) => Outcome::Done,
            Ok(Err(now)) => Outcome::Failed(format!(
                "the machine is {}, so it cannot become {}",
                now.as_str(),
                to.as_str()
            )),
            Err(e) => Outcome::Failed(crate::telemetry::error_chain(&e)),
        }
    }

    /// Runs `f` against the machine's BMC. Unreachable: blocked on it.
    async fn bmc<F, Fut>(&self, machine: MachineId, f: F) -> Outcome
    where
        F: FnOnce(crate::bmc::machine::Driver) -> Fut,
        Fut: Future<Output = Result<(), BmcError>>,
    {
        let (m, driver) = match driver_for(
            &self.store,
            &self.site_key,
            &machine.to_string(),
            self.limits.bmc,
        )
        .await
        {
            Ok(x) => x,
            Err(e @ (DriverError::Store(_) | DriverError::Bmc(_))) => {
                return Outcome::Failed(crate::telemetry::error_chain(&e));
            }
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let endpoint = m.bmc.map(|b| b.address.to_string()).unwrap_or_default();
        match f(driver).await {
            Ok(()) => Outcome::Done,
            Err(e @ BmcError::Unreachable { .. }) => {
                tracing::warn!(%machine, error = %crate::telemetry::error_chain(&e), "BMC unreachable; task blocked");
                Outcome::Blocked(format!("bmc {endpoint}"))
            }
            Err(e) => Outcome::Failed(crate::telemetry::error_chain(&e)),
        }
    }

    /// Waits for a boot callback with `stage` from one of the machine's
    /// MACs, reported after step run `seq` started.
    async fn await_stage(
        &self,
        machine: MachineId,
        task: TaskId,
        seq: i64,
        stage: &'static str,
        what: &str,
        timeout: Duration,
    ) -> Outcome {
        let Ok(Some(since)) = self
            .store
            .read(move |c| steps::started_at(c, task, seq))
            .await
        else {
            return Outcome::Failed("the step's start is not recorded".into());
        };
        // The step's clock started when it was recorded, so an agent that
        // restarts mid-step waits only what is left of the timeout.
        let elapsed = u64::try_from(crate::store::now_nanos().saturating_sub(since))
            .map(Duration::from_nanos)
            .unwrap_or_default();
        let deadline = Instant::now() + timeout.saturating_sub(elapsed);
        loop {
            match self.store.read(move |c| db::last_stage(c, machine)).await {
                Ok(Some((reported, at))) if reported == stage && at >= since => {
                    return Outcome::Done;
                }
                Ok(_) => {}
                Err(e) => return Outcome::Failed(crate::telemetry::error_chain(&e)),
            }
            if Instant::now() >= deadline {
                return Outcome::Failed(format!(
                    "no {what} callback (stage={stage}) within {}",
                    humantime::format_duration(timeout)
                ));
            }
            tokio::time::sleep(self.limits.poll).await;
        }
    }
}

/// The workflow a task kind runs, if it is a machine workflow.
fn flow_of(kind: &TaskKind) -> Option<Flow> {
    match kind {
        TaskKind::ProvisionMachine { .. } => Some(Flow::Provision),
        TaskKind::DeprovisionMachine { .. } => Some(Flow::Deprovision),
        _ => None,
    }
}
