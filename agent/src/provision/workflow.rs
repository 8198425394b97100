//! The machine workflows (provisioning and deprovisioning) as pure state
//! machines: their steps in order, the task state each step's outcome leads
//! to, and where a task resumes.
//!
//! Steps are idempotent (setting a boot override twice, asking for power
//! that is already on, waiting again for a callback), so a task that was
//! `running` a step when the agent died simply runs that step again.
//! Terminal states (`succeeded`, `failed`) are never left; `blocked` waits
//! for an operator's retry (the dependency it names must be fixed first).

use std::fmt;

use dv_protocol::{DependencyKind, TaskState};

/// The most steps a flow has: what bounds one run of a task.
pub const MAX_STEPS: usize = 7;

/// Which workflow a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Available machine to installed and ready.
    Provision,
    /// Any machine back to available: wiped and powered off.
    Deprovision,
}

impl Flow {
    /// The flow's steps, in order.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Flow::Provision => &[
                Step::Network,
                Step::Allocate,
                Step::SetPxe,
                Step::PowerCycle,
                Step::AwaitInstall,
                Step::SetDisk,
                Step::Ready,
            ],
            Flow::Deprovision => &[
                Step::Release,
                Step::SetPxe,
                Step::PowerCycle,
                Step::AwaitWipe,
                Step::PowerOff,
                Step::Available,
            ],
        }
    }

    /// The step after `step` in this flow.
    pub fn next(self, step: Step) -> Option<Step> {
        let steps = self.steps();
        let i = steps.iter().position(|s| *s == step)?;
        steps.get(i + 1).copied()
    }
}

/// One step of a machine workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Check that the machine's switch ports carry their intent (Maskin
    /// depends on Nett): blocked until `dvnet apply` realizes them.
    Network,
    /// Claim an available machine (it becomes `allocated`).
    Allocate,
    /// One-time boot from the network, through the BMC.
    SetPxe,
    /// Power the machine on, or restart it if it is on.
    PowerCycle,
    /// Wait for the installer's callback (`stage=installed`).
    AwaitInstall,
    /// One-time boot from disk, through the BMC.
    SetDisk,
    /// Mark the machine `ready`.
    Ready,
    /// Take the machine out of service (it becomes `deprovisioning`).
    Release,
    /// Wait for the wipe environment's callback (`stage=wiped`).
    AwaitWipe,
    /// Power the machine off.
    PowerOff,
    /// Mark the machine `available` again.
    Available,
}

impl Step {
    /// The step's name, as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Step::Network => "network",
            Step::Allocate => "allocate",
            Step::SetPxe => "set_pxe",
            Step::PowerCycle => "power_cycle",
            Step::AwaitInstall => "await_install",
            Step::SetDisk => "set_disk",
            Step::Ready => "ready",
            Step::Release => "release",
            Step::AwaitWipe => "await_wipe",
            Step::PowerOff => "power_off",
            Step::Available => "available",
        }
    }

    /// The step named `name`, in any flow.
    pub fn parse(name: &str) -> Option<Step> {
        [Flow::Provision, Flow::Deprovision]
            .iter()
            .flat_map(|f| f.steps())
            .copied()
            .find(|s| s.name() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; go on.
    Done,
    /// Done, with what the step found (kept in the step log).
    Noted(String),
    /// Cannot succeed; the task fails with this reason.
    Failed(String),
    /// A hard dependency (named) is unavailable; the task waits for an
    /// operator's retry instead of retrying forever.
    Blocked(String),
}

/// The task state after `step` of `flow` ended with `outcome`.
pub fn after(flow: Flow, step: Step, outcome: &Outcome) -> TaskState {
    match outcome {
        Outcome::Done | Outcome::Noted(_) => match flow.next(step) {
            Some(next) => TaskState::Running {
                step: next.name().to_owned(),
            },
            None => TaskState::Succeeded,
        },
        Outcome::Failed(reason) => TaskState::Failed {
            reason: format!("{step}: {reason}"),
        },
        Outcome::Blocked(dependency) => TaskState::Blocked {
            dependency: dependency.clone(),
            kind: DependencyKind::Hard,
        },
    }
}

/// The step a task of `flow` in `state` runs next: the first for a pending
/// task, the same step again for a running one (steps are idempotent).
/// `None` for a terminal or blocked task. A running state naming no step of
/// the flow is an error (a newer agent's task), not a guess.
pub fn resume(flow: Flow, state: &TaskState) -> Result<Option<Step>, String> {
    match state {
        TaskState::Pending => Ok(flow.steps().first().copied()),
        TaskState::Running { step } => Step::parse(step)
            .filter(|s| flow.steps().contains(s))
            .map(Some)
            .ok_or_else(|| format!("unknown step {step:?} for this workflow")),
        TaskState::Blocked { .. } | TaskState::Failed { .. } | TaskState::Succeeded => Ok(None),
    }
}

/// The state an operator's retry puts a blocked task in: running the step
/// it was blocked in. Other states are not retried.
pub fn retry(state: &TaskState, blocked_in: Step) -> Option<TaskState> {
    matches!(state, TaskState::Blocked { .. }).then(|| TaskState::Running {
        step: blocked_in.name().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            6 => Just(Outcome::Done),
            1 => "[a-z ]{1,12}".prop_map(Outcome::Failed),
            1 => "[a-z ]{1,12}".prop_map(Outcome::Blocked),
        ]
    }

    /// Runs a task from `pending` with `outcomes` (one per step run) and a
    /// crash before step run `crash_at`, if any: the crash loses the
    /// in-flight outcome, and the task resumes from its stored state. Returns
    /// the states the task went through.
    fn simulate(flow: Flow, outcomes: &[Outcome], crash_at: Option<usize>) -> Vec<TaskState> {
        let mut state = TaskState::Pending;
        let mut seen = vec![state.clone()];
        let mut runs = 0;
        let mut crashed = false;
        // Bounded: one outcome per run, at most one crash.
        while let Ok(Some(step)) = resume(flow, &state) {
            if !crashed && Some(runs) == crash_at {
                crashed = true;
                // The step ran (its effects may have happened) but its
                // outcome was never stored: resume from the stored state.
                continue;
            }
            let Some(o) = outcomes.get(runs) else { break };
            runs += 1;
            state = after(flow, step, o);
            seen.push(state.clone());
        }
        seen
    }

    fn flow() -> impl Strategy<Value = Flow> {
        prop_oneof![Just(Flow::Provision), Just(Flow::Deprovision)]
    }

    proptest! {
        #[test]
        fn terminal_states_are_never_left(flow in flow(), outcomes in proptest::collection::vec(outcome(), 0..20)) {
            let states = simulate(flow, &outcomes, None);
            for pair in states.windows(2) {
                prop_assert!(!pair[0].is_terminal(), "{:?} -> {:?}", pair[0], pair[1]);
            }
            for s in [TaskState::Succeeded, TaskState::Failed { reason: "x".into() }] {
                prop_assert_eq!(resume(flow, &s), Ok(None));
                prop_assert_eq!(retry(&s, Step::SetPxe), None);
            }
        }

        #[test]
        fn a_crash_between_any_two_steps_resumes_to_the_same_end(
            flow in flow(),
            outcomes in proptest::collection::vec(outcome(), 0..20),
            crash_at in 0usize..8,
        ) {
            let clean = simulate(flow, &outcomes, None);
            let crashed = simulate(flow, &outcomes, Some(crash_at));
            prop_assert_eq!(clean.last(), crashed.last());
            prop_assert_eq!(clean, crashed, "the same states, in the same order");
        }

        #[test]
        fn steps_run_in_order_and_only_done_moves_on(flow in flow(), outcomes in proptest::collection::vec(outcome(), 0..20)) {
            let states = simulate(flow, &outcomes, None);
            let mut last = None;
            for s in &states {
                if let TaskState::Running { step } = s {
                    let step = Step::parse(step).unwrap();
                    let i = flow.steps().iter().position(|x| *x == step).unwrap();
                    if let Some(prev) = last {
                        prop_assert_eq!(i, prev + 1, "skipped or repeated a step");
                    }
                    last = Some(i);
                }
            }
            if states.last() == Some(&TaskState::Succeeded) {
                prop_assert!(outcomes.iter().take(flow.steps().len()).all(|o| *o == Outcome::Done));
            }
        }
    }

    #[test]
    fn every_flow_fits_the_step_bound_and_names_are_unique() {
        for flow in [Flow::Provision, Flow::Deprovision] {
            assert!(flow.steps().len() <= MAX_STEPS);
            for s in flow.steps() {
                assert_eq!(Step::parse(s.name()), Some(*s));
            }
        }
    }

    #[test]
    fn blocked_waits_for_a_retry_of_the_same_step() {
        let blocked = after(
            Flow::Provision,
            Step::SetPxe,
            &Outcome::Blocked("bmc 10.0.0.5:443".into()),
        );
        assert_eq!(resume(Flow::Provision, &blocked), Ok(None));
        assert_eq!(
            retry(&blocked, Step::SetPxe),
            Some(TaskState::Running {
                step: "set_pxe".into()
            })
        );
        let running = |step: &str| TaskState::Running { step: step.into() };
        assert!(resume(Flow::Provision, &running("teleport")).is_err());
        // A step of the other flow is not this flow's.
        assert!(resume(Flow::Provision, &running("await_wipe")).is_err());
        assert_eq!(
            after(Flow::Provision, Step::Ready, &Outcome::Done),
            TaskState::Succeeded
        );
        assert_eq!(
            after(Flow::Deprovision, Step::Available, &Outcome::Done),
            TaskState::Succeeded
        );
        assert_eq!(
            resume(Flow::Deprovision, &TaskState::Pending),
            Ok(Some(Step::Release))
        );
    }
}
