//! The runner: plays schedules against the real function, the emulator and the database, and
//! records what happened. The expensive things are shared by every case of a run (the
//! emulator, the database server, warm function processes); each case gets its own secret,
//! database role, access keys and seeded randomness, so a case's result depends only on its
//! schedule and seed, not on what runs beside it.
//!
//! Work is split over workers. A worker owns a function with two warm processes (for
//! concurrent duplicate deliveries) and a fault proxy, and runs its cases one after another.

pub mod case;
pub mod trace;

use crate::checker::{Property, Violation};
use crate::database::proxy::FaultProxy;
use crate::database::{self, Engine, Provider};
use crate::emulator::{self, Emulator};
use crate::function::process::LaunchSpec;
use crate::function::python;
use crate::function::runtime_api::{FunctionConfig, RuntimeApiFunction};
use crate::function::{AwsEnvironment, Invoker, Step};
use crate::function::crash::CrashPoint;
use crate::model::{Model, ModelConfig, SystemClock};
use crate::redact::Redactor;
use crate::schedule::generate::{Limits, case_tree};
use crate::schedule::{Command, FaultSpec, Rotation, Schedule, StepFault, Strategy};
use rand::SeedableRng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use trace::TraceEvent;

/// How to run a function.
#[derive(Clone, Debug)]
pub enum FunctionSource {
    /// A Python function directory (`lambda_function.lambda_handler` and requirements.txt).
    Python {
        #[allow(missing_docs)]
        dir: PathBuf,
        #[allow(missing_docs)]
        handler: String,
    },
    /// Any runtime client, started as a process against the hosted Runtime API.
    Process(LaunchSpec),
}

/// What a run is.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The database engine.
    pub engine: Engine,
    /// The function's user strategy.
    pub strategy: Strategy,
    /// The function.
    pub function: FunctionSource,
    /// Parallel workers.
    pub workers: usize,
    /// Whole-rotation retries after a failed step (UNCONFIRMED in the spec; default 3).
    pub retries: u32,
    /// The function's timeout per step.
    pub step_timeout: Duration,
    /// The function's own environment (the schedule's setup adds to it).
    pub env: Vec<(String, String)>,
    /// What generated cases may contain.
    pub limits: Limits,
}

/// Errors of the runner itself (not of the function): one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    #[allow(missing_docs)]
    Database(#[from] database::DbError),
    #[error("{0}")]
    #[allow(missing_docs)]
    Python(#[from] python::PythonError),
    #[error("{0}")]
    #[allow(missing_docs)]
    Io(String),
}

/// What every case shares.
pub struct Infra {
    /// The emulator.
    pub emulator: Arc<Emulator>,
    /// Where it listens.
    pub endpoint: emulator::Server,
    /// The database server.
    pub db: Arc<database::Server>,
    /// The run's redactor.
    pub redactor: Arc<Redactor>,
    /// Every login to the server is checked against the role's password verifier
    /// ([`database::Server::logins_check_passwords`]), read once at the start.
    pub logins_checked: bool,
}

/// A worker: a function with two warm processes and a fault proxy.
pub struct Worker {
    /// Its number.
    pub index: usize,
    /// The function.
    pub function: RuntimeApiFunction,
    /// The access keys of its two processes.
    pub keys: [String; 2],
    /// The key the service and operator calls of its cases use.
    pub service: String,
    /// The proxy its functions reach the database through.
    pub proxy: Arc<FaultProxy>,
    /// Database work done off its cases' path: see [`Backlog`].
    backlog: std::sync::Mutex<Backlog>,
}

/// A worker's database work that runs beside its cases instead of inside them: the roles of
/// the case it runs next, made while the current one runs, and the roles and tables of the
/// cases it has finished, dropped after they end. Roles are named after their case's index,
/// but a case can run again under the same index (a shrink replays it), so making roles
/// first waits for the drops of the same names ([`Worker::settle`]). [`Runner::shutdown`]
/// waits for it all, and drops roles made for a case that never ran.
#[derive(Default)]
struct Backlog {
    ahead: Option<(u64, RolesAhead)>,
    dropping: Vec<Dropping>,
}

/// Roles being dropped in the background; `done` turns true (or its sender goes) at the end.
struct Dropping {
    names: Vec<String>,
    task: tokio::task::JoinHandle<()>,
    done: tokio::sync::watch::Receiver<bool>,
}

/// A case's roles being made ahead of it.
pub(crate) struct RolesAhead {
    roles: case::CaseRoles,
    made: tokio::task::JoinHandle<Result<case::MadeRoles, String>>,
}

impl Worker {
    /// Starts making the roles of case `index`, the one this worker runs next (after any
    /// drop of the same names has ended).
    fn make_roles_ahead(&self, db: &Arc<database::Server>, index: u64, roles: case::CaseRoles) {
        let pending = self.drops_of(&roles.names());
        let (r, db2) = (roles.clone(), db.clone());
        let made = tokio::spawn(async move {
            wait_for(pending).await;
            r.make(db2).await
        });
        let old = self.backlog.lock().expect("backlog lock").ahead.replace((index, RolesAhead { roles, made }));
        if let Some((_, old)) = old {
            self.discard(db, old);
        }
    }

    /// The roles made ahead for case `index`, if these were for it; others are dropped.
    fn take_roles_ahead(&self, db: &Arc<database::Server>, index: u64) -> Option<RolesAhead> {
        let (i, ahead) = self.backlog.lock().expect("backlog lock").ahead.take()?;
        if i == index {
            return Some(ahead);
        }
        self.discard(db, ahead);
        None
    }

    /// Drops roles made ahead for a case that did not use them.
    fn discard(&self, db: &Arc<database::Server>, ahead: RolesAhead) {
        let names = ahead.roles.names();
        let db = db.clone();
        self.drop_in_background(names.clone(), async move {
            let table = ahead.made.await.ok().and_then(Result::ok).map(|m| m.table);
            for r in names.iter().rev() {
                let _ = db.drop_role(r).await;
            }
            if let Some(t) = table {
                let _ = db.drop_table(&t).await;
            }
        });
    }

    /// Runs `work`, which drops the roles `names` (and their case's tables), beside the
    /// worker's next cases.
    fn drop_in_background(&self, names: Vec<String>, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, done) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            work.await;
            let _ = tx.send(true);
        });
        let mut b = self.backlog.lock().expect("backlog lock");
        b.dropping.retain(|d| !d.task.is_finished());
        b.dropping.push(Dropping { names, task, done });
    }

    /// The unfinished drops of any of `names`.
    fn drops_of(&self, names: &[String]) -> Vec<tokio::sync::watch::Receiver<bool>> {
        let b = self.backlog.lock().expect("backlog lock");
        b.dropping.iter().filter(|d| !d.task.is_finished() && d.names.iter().any(|n| names.contains(n))).map(|d| d.done.clone()).collect()
    }

    /// Waits until no drop of any of `names` is under way, so that they can be made again.
    async fn settle(&self, names: &[String]) {
        wait_for(self.drops_of(names)).await;
    }

    /// Waits for the work in the background to end, after dropping unused roles made ahead.
    async fn finish_backlog(&self, db: &Arc<database::Server>) {
        let ahead = self.backlog.lock().expect("backlog lock").ahead.take();
        if let Some((_, ahead)) = ahead {
            self.discard(db, ahead);
        }
        let dropping = std::mem::take(&mut self.backlog.lock().expect("backlog lock").dropping);
        for d in dropping {
            let _ = d.task.await;
        }
    }
}

/// Waits until each drop has ended (its task sent `true`, or ended without sending).
async fn wait_for(drops: Vec<tokio::sync::watch::Receiver<bool>>) {
    for mut d in drops {
        let _ = d.wait_for(|done| *done).await;
    }
}

/// How one case went.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The case's index in the run.
    pub index: u64,
    /// Its seed.
    pub seed: u64,
    /// What it did.
    pub schedule: Schedule,
    /// What happened.
    pub events: Vec<TraceEvent>,
    /// What did not hold.
    pub violations: Vec<Violation>,
    /// Set when an operator command made the state unsafe.
    pub operator_unsafe: Option<String>,
    /// Set when the case could not be set up (an error of the harness).
    pub setup_error: Option<String>,
    /// Coverage.
    pub stats: CaseStats,
    /// The last observed state of the secret and the database (absent if the case never got
    /// that far).
    pub final_state: Option<crate::checker::Observed>,
    /// Wall time.
    #[serde(skip)]
    pub duration: Duration,
}

impl CaseResult {
    /// The first violated property.
    pub fn first_violation(&self) -> Option<Property> {
        self.violations.first().map(|v| v.property)
    }

    /// The numbered story.
    pub fn story(&self) -> String {
        trace::story(&self.events)
    }
}

/// What a case exercised: the coverage statistics a run reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaseStats {
    /// Commands run (a case stops at its first violation).
    pub commands: u32,
    /// Rotations started.
    pub rotations: u32,
    /// Rotations completed.
    pub completed: u32,
    /// Rotations whose retries were exhausted.
    pub failed: u32,
    /// RotateSecret calls refused because a previous rotation was incomplete.
    pub refused: u32,
    /// Step invocations.
    pub steps: u32,
    /// Kills, by step and crash point.
    pub kills: BTreeMap<String, u32>,
    /// Faults, by kind.
    pub faults: BTreeMap<String, u32>,
    /// Deliveries of steps again.
    pub deliveries: u32,
    /// Of which concurrent.
    pub concurrent_deliveries: u32,
    /// Test-only rotations.
    pub test_rotations: u32,
    /// Application client logins.
    pub client_logins: u32,
    /// Operator commands.
    pub operator: u32,
    /// Username classes tried.
    pub usernames: BTreeMap<String, u32>,
    /// Awkward characters forced into generated passwords.
    pub forced_chars: BTreeMap<String, u32>,
    /// Observations where a client following AWSCURRENT could not log in (single user: the
    /// rotation's unavailability window).
    pub unavailable_windows: u32,
    /// What the function called (as IAM actions, `secretsmanager:GetSecretValue`) on which
    /// resource (`rotated secret`, `master secret`, `*` for calls without one, or the id it
    /// named): the least privilege it needed, for [`crate::report::least_privilege_policy`].
    pub permissions: BTreeMap<String, BTreeSet<String>>,
    /// Where the cases' time went, in microseconds: `total` (case wall time), `function`
    /// (invocations, the function's own database work included), `emulator` (answering the
    /// function's calls, part of `function`), `setup` and `teardown` (the case's secret, and
    /// its roles and tables where they were not made or dropped beside the worker's other
    /// cases: see [`Runner::run_case_before`]), `observe` (reading the state and the login
    /// probes after each command).
    pub timing_us: BTreeMap<String, u64>,
    /// Login probes run to observe the state (results that still held were reused instead),
    /// the first one, of the initial password, with the case's roles.
    pub probes: u64,
}

impl CaseStats {
    /// Adds another case's statistics.
    pub fn add(&mut self, o: &CaseStats) {
        self.commands += o.commands;
        self.rotations += o.rotations;
        self.completed += o.completed;
        self.failed += o.failed;
        self.refused += o.refused;
        self.steps += o.steps;
        self.deliveries += o.deliveries;
        self.concurrent_deliveries += o.concurrent_deliveries;
        self.test_rotations += o.test_rotations;
        self.client_logins += o.client_logins;
        self.operator += o.operator;
        self.unavailable_windows += o.unavailable_windows;
        self.probes += o.probes;
        for (dst, src) in [(&mut self.kills, &o.kills), (&mut self.faults, &o.faults), (&mut self.usernames, &o.usernames), (&mut self.forced_chars, &o.forced_chars)] {
            for (k, v) in src {
                *dst.entry(k.clone()).or_default() += v;
            }
        }
        for (k, v) in &o.timing_us {
            *self.timing_us.entry(k.clone()).or_default() += v;
        }
        for (action, resources) in &o.permissions {
            self.permissions.entry(action.clone()).or_default().extend(resources.iter().cloned());
        }
    }
}

/// A run's shared infrastructure and workers.
pub struct Runner {
    config: Arc<RunConfig>,
    infra: Arc<Infra>,
    workers: Vec<Arc<Worker>>,
}

impl Runner {
    /// Starts the emulator and the database server (once for the whole run), prepares the
    /// function (its venv), and makes the workers. No function process starts yet.
    pub async fn start(config: RunConfig, provider: &dyn Provider, run_seed: u64) -> Result<Runner, RunError> {
        let launch = match &config.function {
            FunctionSource::Python { dir, handler } => python::prepare(dir, handler)?,
            FunctionSource::Process(l) => l.clone(),
        };
        let db = Arc::new(provider.start(config.engine).await?);
        let redactor = Redactor::new();
        let model = Model::new(ModelConfig::default(), Arc::new(SystemClock), Box::new(rand::rngs::StdRng::seed_from_u64(run_seed)));
        let emulator = Emulator::new(model, redactor.clone());
        // Every function process signs with its own key id and this run's secret key, and the
        // emulator checks: a function that signs with other credentials fails as on AWS.
        let secret_key = emulator::sigv4::random_secret_key();
        emulator.verify_signatures(true);
        emulator.set_signature_advice(emulator::sigv4::CHECK_ADVICE);
        let endpoint = emulator.serve("127.0.0.1:0".parse().expect("an address")).await.map_err(|e| RunError::Io(format!("cannot start the emulator: {e}")))?;
        let upstream = format!("{}:{}", db.endpoint.host, db.endpoint.port);
        let upstream = tokio::net::lookup_host(&upstream)
            .await
            .map_err(|e| RunError::Io(format!("cannot resolve the database at {upstream}: {e}")))?
            .next()
            .ok_or_else(|| RunError::Io(format!("the database address {upstream} resolves to nothing")))?;
        let mut workers = Vec::new();
        for w in 0..config.workers.max(1) {
            let keys = [format!("AKIDRCW{w}A"), format!("AKIDRCW{w}B")];
            keys.iter().for_each(|k| emulator.add_credentials(k, &secret_key));
            let proxy = Arc::new(FaultProxy::start(upstream).await.map_err(|e| RunError::Io(format!("cannot start a fault proxy: {e}")))?);
            let fc = FunctionConfig {
                name: "rotcheck-subject".into(),
                handler: match &config.function {
                    FunctionSource::Python { handler, .. } => handler.clone(),
                    FunctionSource::Process(_) => "bootstrap".into(),
                },
                memory_mb: 128,
                timeout: config.step_timeout,
                env: config.env.clone(),
                aws: AwsEnvironment { endpoint: endpoint.endpoint(), region: "us-east-1".into(), access_key_id: keys[0].clone(), secret_access_key: secret_key.clone() },
                slot_keys: keys.to_vec(),
            };
            let function = RuntimeApiFunction::new(launch.clone(), fc, redactor.clone()).await.map_err(|e| RunError::Io(format!("cannot host the Runtime API: {e}")))?;
            workers.push(Arc::new(Worker { index: w, function, keys, service: format!("rotcheck-service-w{w}"), proxy, backlog: Default::default() }));
        }
        let logins_checked = db.logins_check_passwords().await;
        Ok(Runner { config: Arc::new(config), infra: Arc::new(Infra { emulator, endpoint, db, redactor, logins_checked }), workers })
    }

    /// The run's configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The shared infrastructure.
    pub fn infra(&self) -> &Arc<Infra> {
        &self.infra
    }

    /// How many workers there are.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Runs one case on `worker`. The function's environment for the case is the run's plus
    /// the schedule's setup: a setup that changes it runs on processes started with it.
    pub async fn run_case(&self, worker: usize, index: u64, seed: u64, schedule: &Schedule) -> CaseResult {
        self.run_case_before(worker, index, seed, schedule, None).await
    }

    /// [`Runner::run_case`], knowing the case `worker` runs after it (its index, seed and
    /// schedule): that case's database roles are made while this one runs, and a function
    /// process for its environment, when none runs or is parked, starts in the background, so
    /// that both overlap this case (see `RuntimeApiFunction::prepare_env`).
    pub async fn run_case_before(&self, worker: usize, index: u64, seed: u64, schedule: &Schedule, next: Option<(u64, u64, &Schedule)>) -> CaseResult {
        let w = &self.workers[worker];
        w.function.set_env(self.case_env(schedule));
        let ahead = w.take_roles_ahead(&self.infra.db, index);
        if let Some((next_index, next_seed, next)) = next {
            w.function.prepare_env(self.case_env(next)).await;
            // The roles draw from the case's own random source first, as the case does.
            let roles = case::CaseRoles::of(&self.config, self.infra.db.flavor, next_index, next, &mut rand::rngs::StdRng::seed_from_u64(next_seed));
            w.make_roles_ahead(&self.infra.db, next_index, roles);
        }
        case::Case::new(&self.config, &self.infra, w, index, seed).with_roles_ahead(ahead).run(schedule, seed).await
    }

    fn case_env(&self, schedule: &Schedule) -> Vec<(String, String)> {
        let mut env = self.config.env.clone();
        env.extend(schedule.setup.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Shrinks a failing case: walks its value tree towards smaller schedules, keeping each
    /// one that still violates the same property, within `max_iterations` replays and
    /// `budget` of time.
    pub async fn shrink(
        &self,
        worker: usize,
        failing: CaseResult,
        max_iterations: usize,
        budget: Duration,
        progress: &(dyn Fn(usize, &CaseResult) + Sync),
    ) -> (CaseResult, usize) {
        let deadline = std::time::Instant::now() + budget;
        let Some(target) = failing.first_violation() else { return (failing, 0) };
        let mut tree = case_tree(failing.seed, &self.config.limits);
        let mut best = failing;
        let mut iterations = 0;
        if !tree.simplify() {
            return (best, 0);
        }
        while iterations < max_iterations && std::time::Instant::now() < deadline {
            iterations += 1;
            let candidate = tree.current();
            let r = self.run_case(worker, best.index, best.seed, &candidate).await;
            if r.violations.iter().any(|v| v.property == target) {
                best = r;
                progress(iterations, &best);
                if !tree.simplify() {
                    break;
                }
            } else if !tree.complicate() {
                break;
            }
        }
        (best, iterations)
    }

    /// The systematic crash sweep: every crash point (each Secrets Manager call and each
    /// database connection of each step, as counted in a clean rotation) in the first and in
    /// the second rotation, each followed by the service's retries.
    pub async fn sweep_schedules(&self) -> Vec<(String, Schedule)> {
        // Count the calls and connections of each step in a clean rotation.
        let clean = Schedule { setup: crate::schedule::Setup { username: "sweep_user".into(), ..Default::default() }, commands: vec![Command::Rotate(Rotation::default())] };
        let r = self.run_case(0, u64::MAX, 1, &clean).await;
        let mut counts: BTreeMap<Step, (usize, u64)> = BTreeMap::new();
        for e in &r.events {
            if let TraceEvent::Invoke { step, calls, connections, .. } = e {
                *counts.entry(*step).or_default() = (calls.len(), *connections);
            }
        }
        let mut out = Vec::new();
        for rotations in [1usize, 2] {
            for (step, (calls, connections)) in &counts {
                let mut points = Vec::new();
                for nth in 1..=*calls {
                    points.push(CrashPoint::ApiCallArrives { nth });
                    points.push(CrashPoint::ApiCallAnswered { nth });
                }
                for nth in 1..=*connections {
                    points.push(CrashPoint::DbConnectionClosed { nth });
                }
                for point in points {
                    let mut commands = vec![Command::Rotate(Rotation::default()); rotations - 1];
                    commands.push(Command::Rotate(Rotation {
                        faults: vec![StepFault { attempt: 1, step: *step, fault: FaultSpec::Crash { point } }],
                        ..Default::default()
                    }));
                    let name = format!("rotation {rotations}, {} {}", step.name(), point.describe());
                    out.push((name, Schedule { setup: crate::schedule::Setup { username: "sweep_user".into(), ..Default::default() }, commands }));
                }
            }
        }
        out
    }

    /// Stops every function process and waits for the workers' database work in the
    /// background (see [`Backlog`]).
    pub async fn shutdown(&self) {
        for w in &self.workers {
            w.function.shutdown().await;
            w.finish_backlog(&self.infra.db).await;
        }
    }
}
