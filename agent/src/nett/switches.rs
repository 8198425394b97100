//! The agent's switches (agent.toml's `[[switches]]`) driven from the
//! stored intent: plan, apply, drift, and what each records.
//!
//! - **plan** reads the intent and the switch and returns the diff; it
//!   changes nothing.
//! - **apply** commits `switch_state.apply = 'pending'` before the first
//!   change reaches the switch, runs the plan (in order, rolled back when a
//!   step fails, see [`super::switch`]), reads the switch back, and commits
//!   the outcome with its event (`SwitchApplied` with the realized ports,
//!   or `SwitchApplyFailed`) in one transaction. An agent killed in between
//!   finds 'pending' when it starts and applies again ([`Switches::resume`]):
//!   each step is atomic on the switch, so a fresh plan from what is there
//!   converges.
//! - **drift** reads the switch back and diffs it against the intent; new
//!   drift is recorded as a `SwitchDrifted` event. A watcher does this when
//!   the agent starts and then every `drift_interval`; it reports, it never
//!   changes the switch.
//!
//! One apply or drift check runs per switch at a time. After an apply,
//! provisioning tasks blocked on the network are retried (Maskin depends on
//! Nett: [`crate::provision`]'s `network` step).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use dv_protocol::api::{
    PlannedChange, RealizedPort, SwitchApplied, SwitchApplyFailed, SwitchPlan, SwitchView,
};
use dv_protocol::{Actor, Event, EventBody, Message, SiteName, SwitchName, TaskState};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::switch::netlink::NetlinkBridge;
use super::switch::ovs::OvsSwitch;
use super::switch::ovsdb::OvsdbClient;
use super::switch::{self, ApplyError, Change, ChangeKind, Plan, Ports, SwitchDriver, SwitchError};
use crate::config::{OvsdbRemote, Switch, SwitchDriverConfig};
use crate::provision::runner::Provisioner;
use crate::store::{Store, StoreError, intent, outbox, tasks};

/// Why a switch operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchesError {
    /// agent.toml configures no switch by this name.
    #[error("no switch named {name} is configured; configured: {}", if .known.is_empty() { "none (add [[switches]] to agent.toml)".to_owned() } else { .known.join(", ") })]
    Unknown {
        /// The name asked for.
        name: String,
        /// The configured ones.
        known: Vec<String>,
    },
    /// The switch could not be reached or read.
    #[error("switch {switch}: {source}")]
    Switch {
        /// The switch.
        switch: SwitchName,
        /// What failed.
        #[source]
        source: SwitchError,
    },
    /// A step of the apply failed; the steps before it were undone.
    #[error("switch {}: {}", .0.failed.port, .0.error)]
    ApplyFailed(Box<SwitchApplyFailed>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A configured switch's driver, opened for one operation.
enum Driver {
    Ovs(OvsSwitch),
    Netlink(NetlinkBridge),
}

impl SwitchDriver for Driver {
    async fn observe(&mut self) -> Result<Ports, SwitchError> {
        match self {
            Driver::Ovs(d) => d.observe().await,
            Driver::Netlink(d) => d.observe().await,
        }
    }

    async fn apply_change(&mut self, change: &Change) -> Result<(), SwitchError> {
        match self {
            Driver::Ovs(d) => d.apply_change(change).await,
            Driver::Netlink(d) => d.apply_change(change).await,
        }
    }
}

async fn open(config: &SwitchDriverConfig) -> Result<Driver, SwitchError> {
    match config {
        SwitchDriverConfig::Ovs { ovsdb, bridge } => {
            let client = match ovsdb {
                OvsdbRemote::Unix(path) => {
                    OvsdbClient::connect_unix(path, switch::ovs::REQUEST_TIMEOUT).await?
                }
                OvsdbRemote::Tcp(addr) => {
                    OvsdbClient::connect_tcp(addr, switch::ovs::REQUEST_TIMEOUT).await?
                }
            };
            Ok(Driver::Ovs(OvsSwitch::new(client, bridge)))
        }
        SwitchDriverConfig::Netlink { bridge } => {
            Ok(Driver::Netlink(NetlinkBridge::new(bridge).await?))
        }
    }
}

fn kind(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Add => "add",
        ChangeKind::Retag => "retag",
        ChangeKind::Trunk => "trunk",
        ChangeKind::Remove => "remove",
        ChangeKind::Clear => "clear",
        ChangeKind::Members => "members",
    }
}

/// A plan step as the API shows it.
pub fn planned(c: &Change) -> PlannedChange {
    PlannedChange {
        port: c.port.to_string(),
        kind: kind(c.kind()).to_owned(),
        before: c.before.as_ref().map(ToString::to_string),
        after: c.after.as_ref().map(ToString::to_string),
        text: c.to_string(),
    }
}

/// Ports as the API shows them, in port order.
pub fn realized(ports: &Ports) -> Vec<RealizedPort> {
    ports
        .iter()
        .map(|(p, c)| RealizedPort {
            port: p.to_string(),
            config: c.to_string(),
        })
        .collect()
}

fn lines(plan: &[Change]) -> Vec<String> {
    plan.iter().map(ToString::to_string).collect()
}

/// The switches of this site and one lock each.
pub struct Switches {
    store: Store,
    site: SiteName,
    switches: Vec<(Switch, Mutex<()>)>,
    provisioner: OnceLock<Arc<Provisioner>>,
}

impl std::fmt::Debug for Switches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.switches.iter().map(|(s, _)| s.name.as_str()).collect();
        f.debug_struct("Switches")
            .field("switches", &names)
            .finish()
    }
}

impl Switches {
    /// The switches in `configs`.
    pub fn new(store: Store, site: SiteName, configs: Vec<Switch>) -> Arc<Self> {
        Arc::new(Switches {
            store,
            site,
            switches: configs.into_iter().map(|s| (s, Mutex::new(()))).collect(),
            provisioner: OnceLock::new(),
        })
    }

    /// Lets an apply retry provisioning tasks blocked on the network.
    pub fn set_provisioner(&self, p: Arc<Provisioner>) {
        let _ = self.provisioner.set(p);
    }

    /// The configured switches' names.
    pub fn names(&self) -> Vec<SwitchName> {
        self.switches.iter().map(|(s, _)| s.name.clone()).collect()
    }

    fn find(&self, name: &str) -> Result<&(Switch, Mutex<()>), SwitchesError> {
        self.switches
            .iter()
            .find(|(s, _)| s.name.as_str() == name)
            .ok_or_else(|| SwitchesError::Unknown {
                name: name.to_owned(),
                known: self
                    .switches
                    .iter()
                    .map(|(s, _)| s.name.to_string())
                    .collect(),
            })
    }

    fn failed(name: &SwitchName) -> impl Fn(SwitchError) -> SwitchesError + '_ {
        move |source| SwitchesError::Switch {
            switch: name.clone(),
            source,
        }
    }

    async fn desired(&self, name: &SwitchName) -> Result<Ports, SwitchesError> {
        let intent = self.store.read(intent::load).await?;
        switch::desired_ports(&intent, name).map_err(Self::failed(name))
    }

    async fn record(
        &self,
        actor: &Actor,
        body: EventBody,
        f: impl FnOnce(&rusqlite::Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let message = Message::from_event(self.site.clone(), actor.clone(), Event::new(body));
        self.store
            .write(move |c| {
                f(c)?;
                outbox::record(c, &message)?;
                Ok(())
            })
            .await
    }

    /// What applying the intent to `name` would change now.
    pub async fn plan(&self, name: &str) -> Result<SwitchPlan, SwitchesError> {
        let (config, lock) = self.find(name)?;
        let _held = lock.lock().await;
        let desired = self.desired(&config.name).await?;
        let mut driver = open(&config.driver)
            .await
            .map_err(Self::failed(&config.name))?;
        let plan = driver
            .plan(&desired)
            .await
            .map_err(Self::failed(&config.name))?;
        Ok(SwitchPlan {
            switch: config.name.clone(),
            in_sync: plan.is_empty(),
            changes: plan.iter().map(planned).collect(),
        })
    }

    /// Applies the intent to `name` (see the module docs).
    pub async fn apply(&self, name: &str, actor: &Actor) -> Result<SwitchApplied, SwitchesError> {
        let (config, lock) = self.find(name)?;
        let _held = lock.lock().await;
        let sw = config.name.clone();
        let desired = self.desired(&sw).await?;
        let s = sw.clone();
        self.store
            .write(move |c| intent::apply_started(c, &s))
            .await?;
        let outcome = self.run_apply(&config.driver, &desired).await;
        match outcome {
            Ok((applied, observed)) => {
                let drift = switch::diff(&desired, &observed);
                let ports = realized(&observed);
                let body = EventBody::SwitchApplied {
                    switch: sw.clone(),
                    changes: lines(&applied),
                    realized: ports
                        .iter()
                        .map(|p| format!("{}: {}", p.port, p.config))
                        .collect(),
                };
                let (s, r, d) = (sw.clone(), ports.clone(), lines(&drift));
                self.record(actor, body, move |c| {
                    intent::apply_finished(c, &s, None, &r, &d)
                })
                .await?;
                tracing::info!(switch = %sw, changes = applied.len(), in_sync = drift.is_empty(), "switch applied");
                let resumed = self.resume_blocked(&sw).await;
                Ok(SwitchApplied {
                    switch: sw,
                    applied: applied.iter().map(planned).collect(),
                    realized: ports,
                    in_sync: drift.is_empty(),
                    resumed_tasks: resumed,
                })
            }
            Err(Failure::Step(e)) => {
                let failed = SwitchApplyFailed {
                    error: format!(
                        "{e}; the switch is as before the apply{}",
                        if e.rollback_failed.is_empty() {
                            ""
                        } else {
                            " except for the steps that could not be rolled back"
                        }
                    ),
                    failed: planned(&e.failed),
                    rolled_back: e.rolled_back.iter().map(planned).collect(),
                    rollback_failed: e
                        .rollback_failed
                        .iter()
                        .map(|(c, why)| format!("{c}: {why}"))
                        .collect(),
                };
                let body = EventBody::SwitchApplyFailed {
                    switch: sw.clone(),
                    failed: e.failed.to_string(),
                    reason: e.source.to_string(),
                    rolled_back: lines(&e.rolled_back),
                    rollback_failed: failed.rollback_failed.clone(),
                };
                let (s, why) = (sw.clone(), failed.error.clone());
                self.record(actor, body, move |c| {
                    intent::apply_finished(c, &s, Some(&why), &[], &[])
                })
                .await?;
                tracing::warn!(switch = %sw, error = %failed.error, "switch apply failed");
                Err(SwitchesError::ApplyFailed(Box::new(failed)))
            }
            Err(Failure::Switch(source)) => {
                let body = EventBody::SwitchApplyFailed {
                    switch: sw.clone(),
                    failed: "reading the switch".into(),
                    reason: source.to_string(),
                    rolled_back: Vec::new(),
                    rollback_failed: Vec::new(),
                };
                let (s, why) = (sw.clone(), source.to_string());
                self.record(actor, body, move |c| {
                    intent::apply_finished(c, &s, Some(&why), &[], &[])
                })
                .await?;
                tracing::warn!(switch = %sw, error = %source, "switch apply failed");
                Err(SwitchesError::Switch { switch: sw, source })
            }
        }
    }

    async fn run_apply(
        &self,
        config: &SwitchDriverConfig,
        desired: &Ports,
    ) -> Result<(Plan, Ports), Failure> {
        let mut driver = open(config).await.map_err(Failure::Switch)?;
        let plan = driver.plan(desired).await.map_err(Failure::Switch)?;
        let applied = driver.apply(&plan).await.map_err(Failure::Step)?;
        let observed = driver.observe().await.map_err(Failure::Switch)?;
        Ok((applied, observed))
    }

    /// Reads `name` back and diffs it against the intent; records the
    /// read-back, and a `SwitchDrifted` event when the drift is new.
    pub async fn drift(&self, name: &str, actor: &Actor) -> Result<SwitchPlan, SwitchesError> {
        let (config, lock) = self.find(name)?;
        let _held = lock.lock().await;
        let sw = config.name.clone();
        let desired = self.desired(&sw).await?;
        let mut driver = open(&config.driver).await.map_err(Self::failed(&sw))?;
        let observed = driver.observe().await.map_err(Self::failed(&sw))?;
        let drift = switch::diff(&desired, &observed);
        let (s, r, d) = (sw.clone(), realized(&observed), lines(&drift));
        let before = self
            .store
            .write(move |c| intent::drift_checked(c, &s, &r, &d))
            .await?;
        let now = lines(&drift);
        if !drift.is_empty() && before != now {
            tracing::warn!(switch = %sw, drift = ?now, "switch drifted from the intent");
            let body = EventBody::SwitchDrifted {
                switch: sw.clone(),
                drift: now,
            };
            self.record(actor, body, |_| Ok(())).await?;
        }
        Ok(SwitchPlan {
            switch: sw,
            in_sync: drift.is_empty(),
            changes: drift.iter().map(planned).collect(),
        })
    }

    /// Every configured switch as the store last saw it.
    pub async fn views(&self) -> Result<Vec<SwitchView>, SwitchesError> {
        let names = self.names();
        let states = self
            .store
            .read(move |c| {
                names
                    .iter()
                    .map(|n| Ok((n.clone(), intent::switch_state(c, n)?)))
                    .collect::<Result<BTreeMap<_, _>, StoreError>>()
            })
            .await?;
        Ok(self
            .switches
            .iter()
            .map(|(s, _)| {
                let state = states.get(&s.name).cloned().flatten();
                let at = |ns: i64| {
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
                        .ok()
                        .and_then(|t| {
                            t.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                };
                SwitchView {
                    name: s.name.clone(),
                    driver: s.driver.kind().to_owned(),
                    target: s.driver.target(),
                    last_apply: match &state {
                        Some(st) if st.started_at > 0 => st.apply.clone(),
                        _ => "never".to_owned(),
                    },
                    last_apply_at: state
                        .as_ref()
                        .filter(|st| st.started_at > 0)
                        .and_then(|st| st.finished_at)
                        .and_then(at),
                    last_error: state.as_ref().and_then(|st| st.error.clone()),
                    realized: state
                        .as_ref()
                        .map(|st| st.realized.clone())
                        .unwrap_or_default(),
                    drift: state.map(|st| st.drift).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Applies again every switch whose apply was cut off (the agent died
    /// mid-apply). Returns how many were resumed.
    pub async fn resume(&self) -> Result<usize, StoreError> {
        let pending = self.store.read(intent::pending_applies).await?;
        let mut n = 0;
        for name in pending {
            if self.find(&name).is_err() {
                tracing::warn!(switch = %name, "an apply to a switch no longer in agent.toml was cut off; not resumed");
                continue;
            }
            tracing::warn!(switch = %name, "resuming an apply that was cut off (the agent stopped mid-apply)");
            let actor = Actor::agent(&self.site);
            match self.apply(&name, &actor).await {
                Ok(done) => {
                    tracing::info!(switch = %name, changes = done.applied.len(), in_sync = done.in_sync, "interrupted apply resumed")
                }
                Err(e) => {
                    tracing::error!(switch = %name, error = %e, "interrupted apply failed again; see the switch's last_error")
                }
            }
            n += 1;
        }
        Ok(n)
    }

    /// Retries provisioning tasks blocked on a port of `switch`; returns
    /// their ids.
    async fn resume_blocked(&self, switch: &SwitchName) -> Vec<String> {
        let on_this = format!("switch port {switch}/");
        let Some(p) = self.provisioner.get() else {
            return Vec::new();
        };
        let blocked = match self
            .store
            .read(|c| tasks::list(c, Some("blocked"), 1000))
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "blocked tasks not read; retry them with dv task retry");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for t in blocked {
            let on_network = matches!(&t.state, TaskState::Blocked { dependency, .. }
                if dependency.starts_with(crate::provision::NETWORK_DEPENDENCY)
                    && dependency.contains(&on_this));
            if !on_network {
                continue;
            }
            match p.retry(t.id).await {
                Ok(_) => {
                    tracing::info!(task = %t.id, "provisioning task retried: its network was applied");
                    out.push(t.id.to_string());
                }
                Err(e) => tracing::warn!(task = %t.id, error = %e, "provisioning task not retried"),
            }
        }
        out
    }

    /// Checks every switch's drift when the agent starts and then every
    /// `drift_interval`, until `stop`.
    pub fn watch(self: &Arc<Self>, stop: CancellationToken) {
        for (config, _) in &self.switches {
            let me = self.clone();
            let stop = stop.clone();
            let name = config.name.to_string();
            let every = config.drift_interval;
            tokio::spawn(async move {
                let actor = Actor::agent(&me.site);
                // At once first: what the store last read back may be from
                // before a restart of the agent or of the switch.
                loop {
                    if let Err(e) = me.drift(&name, &actor).await {
                        tracing::warn!(switch = %name, error = %e, "drift check failed");
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(every) => {}
                    }
                }
            });
        }
    }
}

enum Failure {
    Switch(SwitchError),
    Step(ApplyError),
}
