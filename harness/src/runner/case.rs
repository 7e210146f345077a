//! One test case on one worker: a fresh secret and database role on the shared server, the
//! worker's warm function processes and fault proxy, the schedule's commands, an observation
//! and the checks after every step, and teardown.

use super::trace::TraceEvent;
use super::{CaseResult, CaseStats, Infra, RolesAhead, RunConfig, Worker};
use crate::checker::{self, Observed, Property, SeenVersion, Violation};
use crate::database::proxy::ProxyMode;
use crate::database::{Credentials, Engine, Flavor, LoginOutcome, Server};
use crate::emulator::{CallOutcome, CallRecord, Fault, FaultPlan};
use crate::function::crash::{self, CrashPoint};
use crate::function::{Event, Invocation, InvokeOptions, KillSwitch, Outcome, Step};
use crate::model::{AWSCURRENT, AWSPENDING, ErrorKind, Operation};
use crate::schedule::{Command, Delivery, FaultSpec, Rotation, Schedule, Strategy, Which};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Lambda ARN the service invokes (a name only: rotcheck knows which function it is).
pub const LAMBDA_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:rotcheck-subject";

pub(super) struct Case<'a> {
    config: &'a RunConfig,
    infra: &'a Infra,
    worker: &'a Worker,
    index: u64,
    rng: StdRng,
    arn: String,
    name: String,
    own_ids: Vec<String>,
    username: String,
    roles: Vec<String>,
    tables: Vec<String>,
    tokens: Vec<String>,
    aliases: HashMap<String, String>,
    succeeded: HashMap<String, BTreeSet<Step>>,
    tested: BTreeSet<String>,
    events: Vec<TraceEvent>,
    violations: Vec<Violation>,
    operator_unsafe: Option<String>,
    stats: CaseStats,
    command: usize,
    operator_acted: bool,
    /// Set while the service reattempts an incomplete rotation (its first run was faulted).
    refused_reattempt: bool,
    /// Steps (per token) that ran with a fault, an unknown outcome, or success.
    disturbed: BTreeSet<(String, Step)>,
    /// The latest observation: the case's final state once it ends.
    last_observed: Option<Observed>,
    /// Login probe results that still hold: see [`Case::observe_untimed`].
    probe_memo: ProbeMemo,
    /// The case's roles, made ahead by its worker.
    roles_ahead: Option<RolesAhead>,
}

/// Login probe results, reused while what decides them cannot have changed.
///
/// Where the server tells (PostgreSQL with a superuser admin), a result is kept with the
/// user's login fingerprint ([`crate::database::Server::login_fingerprints`]) and holds while
/// that is unchanged. Elsewhere the function reaches the database through the worker's fault
/// proxy (the secret's host and port name it) and rotcheck's own probes only read, so while
/// the proxy has accepted no connection since, and had none open then or now, a credential
/// logs in exactly as it did. Only verdicts are kept: "authenticated" and "refused", never a
/// server or network failure.
#[derive(Default)]
struct ProbeMemo {
    /// The proxy's connection count when the results were taken (no fingerprints).
    epoch: Option<u64>,
    /// (user, password) -> (the user's fingerprint then, if any; logged in).
    results: HashMap<(String, String), (Option<String>, bool)>,
    /// Users whose passwords the server is seen to check: under one fingerprint, a probe
    /// logged in with one password and was refused with another. (Under a `trust` line of
    /// pg_hba.conf every password logs in; a refusal alone may be for another reason, such as
    /// NOLOGIN.)
    checked: HashSet<String>,
    /// The server checks every user's passwords: its pg_hba.conf says so
    /// ([`crate::database::Server::logins_check_passwords`]).
    all_checked: bool,
    /// The fingerprints last read, while they may be reused.
    fingerprints: Option<ReadFingerprints>,
    /// A step of the case ended unknown (killed, timed out): a statement its process sent
    /// may still commit after the proxy saw the connection go, so from then on neither
    /// fingerprints nor (without them) verdicts are kept on the proxy's word.
    unsettled: bool,
}

/// Login fingerprints read at a moment when no function connection was open, and the proxy's
/// connection count then. While the count is unchanged and none is open, no function has
/// reached the database since (it does through the worker's proxy, and rotcheck's own probes
/// and checks change no role), so the fingerprints are still what the server would say and
/// the query is skipped. Never kept for a role with a finite VALID UNTIL, which changes its
/// verdict as time passes.
struct ReadFingerprints {
    epoch: u64,
    users: BTreeSet<String>,
    digests: HashMap<String, String>,
}

impl ProbeMemo {
    /// Keeps a probe's verdict on `password` of `user`, under the user's fingerprint then
    /// (`None`: on the proxy's word), and notes what it shows of the server.
    fn record(&mut self, user: &str, password: &str, fingerprint: Option<String>, ok: bool) {
        self.results.insert((user.to_string(), password.to_string()), (fingerprint, ok));
        self.note_checked(user);
    }

    /// Notes `user` as checked once a real probe's verdicts under one fingerprint differ.
    fn note_checked(&mut self, user: &str) {
        let mut seen: HashMap<&str, (bool, bool)> = HashMap::new();
        for ((u, _), (then, ok)) in &self.results {
            if let (true, Some(f)) = (u == user, then) {
                let e = seen.entry(f.as_str()).or_default();
                if *ok { e.0 = true } else { e.1 = true }
            }
        }
        if seen.values().any(|&(ok, refused)| ok && refused) {
            self.checked.insert(user.to_string());
        }
    }

    /// The fingerprints of `users` as last read, if they still hold at proxy epoch `now`.
    fn fingerprints_still(&self, now: Option<u64>, users: &[String]) -> Option<HashMap<String, String>> {
        let f = self.fingerprints.as_ref()?;
        (now == Some(f.epoch) && users.iter().all(|u| f.users.contains(u))).then(|| f.digests.clone())
    }

    fn is_checked(&self, user: &str) -> bool {
        self.all_checked || self.checked.contains(user)
    }

    /// Whether `password` of `user` is refused without asking the server: another password
    /// of the user logged in under the same fingerprint, which holds the role's one password
    /// verifier, and the server checks this user's passwords. Only for ASCII passwords, which
    /// SASLprep leaves as they are: two different ones never meet one verifier (non-ASCII ones
    /// may normalize to the same string).
    fn refused_by_another(&self, user: &str, password: &str, fingerprint: &str) -> bool {
        password.is_ascii()
            && self.is_checked(user)
            && self.results.iter().any(|((u, p), (then, ok))| *ok && u == user && p != password && p.is_ascii() && then.as_deref() == Some(fingerprint))
    }
}

/// The database roles a case starts with: its user (and, with alternating users, the master
/// account), named after the case's index and with passwords from the case's seed. A function
/// of the case alone, so that a worker can make them while its previous case runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CaseRoles {
    username: String,
    password: String,
    /// The master account's name and password (alternating users).
    master: Option<(String, String)>,
}

impl CaseRoles {
    /// The roles of case `index`, drawing the passwords from `rng` (the case's own, first).
    pub(super) fn of(config: &RunConfig, flavor: Flavor, index: u64, schedule: &Schedule, rng: &mut StdRng) -> CaseRoles {
        let tag = format!("_c{index}");
        // Alternating users: the function appends `_clone`, which must fit too.
        let room = match config.strategy {
            Strategy::AlternatingUsers => format!("{tag}_clone"),
            Strategy::SingleUser => tag.clone(),
        };
        let cut = flavor.tagged_name(&schedule.setup.username, &room);
        let username = format!("{}{tag}", &cut[..cut.len() - room.len()]);
        let mut pw: Vec<char> = random_text(rng, 20).chars().collect();
        for &(pos, ch) in &schedule.setup.password.forced {
            let n = pw.len();
            pw[pos % n] = ch;
        }
        let master = (config.strategy == Strategy::AlternatingUsers).then(|| (flavor.tagged_name("rotcheck_master", &tag), random_text(rng, 24)));
        CaseRoles { username, password: pw.into_iter().collect(), master }
    }

    /// Creates them, and probes the user's login as the case's first observation would
    /// (where a login fingerprint can vouch for the verdict until then).
    pub(super) async fn make(self, db: Arc<Server>) -> Result<MadeRoles, String> {
        let role = db.create_role(&self.username, &self.password).await.map_err(|e| e.to_string())?;
        if let Some((master, password)) = &self.master
            && let Err(e) = db.create_master(master, password, &self.username).await
        {
            let _ = db.drop_table(&role.table).await;
            return Err(e.to_string());
        }
        let user = std::slice::from_ref(&self.username);
        let first_login = match db.login_fingerprints(user).await.and_then(|mut f| f.remove(&self.username)) {
            Some(fingerprint) if !fingerprint.expires => {
                let creds = Credentials { user: self.username.clone(), password: self.password.clone() };
                match db.login(&db.endpoint, &creds).await {
                    outcome @ (LoginOutcome::Authenticated | LoginOutcome::AuthenticationFailed) => Some((fingerprint.digest, outcome.ok())),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(MadeRoles { table: role.table, first_login })
    }

    /// Every role name, for dropping them.
    pub(super) fn names(&self) -> Vec<String> {
        let mut names = vec![self.username.clone()];
        if let Some((master, _)) = &self.master {
            names.push(master.clone());
            names.push(format!("{}_clone", self.username));
        }
        names
    }
}

/// What making a case's roles gave.
pub(super) struct MadeRoles {
    /// The user's probe table.
    pub(super) table: String,
    /// The user's login fingerprint and whether its password logged in, right after.
    first_login: Option<(String, bool)>,
}

fn random_text(rng: &mut StdRng, n: usize) -> String {
    const ALNUM: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..n).map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char).collect()
}

impl<'a> Case<'a> {
    pub(super) fn new(config: &'a RunConfig, infra: &'a Infra, worker: &'a Worker, index: u64, seed: u64) -> Case<'a> {
        Case {
            config,
            infra,
            worker,
            index,
            rng: StdRng::seed_from_u64(seed),
            arn: String::new(),
            name: format!("rotcheck/case-{index}"),
            own_ids: Vec::new(),
            username: String::new(),
            roles: Vec::new(),
            tables: Vec::new(),
            tokens: Vec::new(),
            aliases: HashMap::new(),
            succeeded: HashMap::new(),
            tested: BTreeSet::new(),
            events: Vec::new(),
            violations: Vec::new(),
            operator_unsafe: None,
            stats: CaseStats::default(),
            command: 0,
            operator_acted: false,
            refused_reattempt: false,
            disturbed: BTreeSet::new(),
            last_observed: None,
            probe_memo: ProbeMemo { all_checked: infra.logins_checked, ..Default::default() },
            roles_ahead: None,
        }
    }

    /// The case's roles as its worker made them ahead (see [`Worker::make_roles_ahead`]).
    pub(super) fn with_roles_ahead(mut self, ahead: Option<RolesAhead>) -> Self {
        self.roles_ahead = ahead;
        self
    }

    /// Runs the schedule and tears down; the result holds everything observed.
    pub(super) async fn run(mut self, schedule: &Schedule, seed: u64) -> CaseResult {
        let started = Instant::now();
        let setup = self.setup(schedule, seed).await;
        self.spent("setup", started);
        if let Err(e) = setup {
            self.events.push(TraceEvent::Note { text: format!("setup failed: {e}") });
            self.teardown().await;
            return self.result(schedule, seed, started, Some(e));
        }
        for (i, command) in schedule.commands.iter().enumerate() {
            self.command = i;
            self.stats.commands += 1;
            self.events.push(TraceEvent::Command { number: i + 1, text: describe(command) });
            match command {
                Command::Rotate(r) => self.rotate(r).await,
                Command::Deliver(d) => self.deliver(d).await,
                Command::TestRotation => self.test_rotation().await,
                Command::ClientLogin => self.client_login().await,
                Command::RemovePending => self.operator(OperatorAction::RemovePending).await,
                Command::CancelRotation => self.operator(OperatorAction::Cancel).await,
                Command::ManualPut => self.operator(OperatorAction::ManualPut).await,
            }
            if !self.violations.is_empty() || self.operator_unsafe.is_some() {
                break;
            }
        }
        let t = Instant::now();
        self.teardown().await;
        self.spent("teardown", t);
        self.result(schedule, seed, started, None)
    }

    /// Adds the time since `since` to the case's account of where its time went.
    fn spent(&mut self, on: &str, since: Instant) {
        self.spent_us(on, since.elapsed().as_micros() as u64);
    }

    fn spent_us(&mut self, on: &str, micros: u64) {
        *self.stats.timing_us.entry(on.to_string()).or_default() += micros;
    }

    fn result(mut self, schedule: &Schedule, seed: u64, started: Instant, setup_error: Option<String>) -> CaseResult {
        self.spent("total", started);
        tracing::debug!(case = self.index, ms = started.elapsed().as_millis() as u64, "case finished");
        self.normalize();
        CaseResult {
            index: self.index,
            seed,
            schedule: schedule.clone(),
            events: self.events,
            violations: self.violations,
            operator_unsafe: self.operator_unsafe,
            setup_error,
            stats: self.stats,
            final_state: self.last_observed,
            duration: started.elapsed(),
        }
    }

    /// Replaces what differs from run to run in the texts of the trace (version ids, the
    /// secret's ARN and name, the case's tagged user and table names, which the function's own
    /// messages quote) by stable aliases, so that a trace can be compared and snapshotted.
    fn normalize(&mut self) {
        let mut pairs: Vec<(String, String)> = self.aliases.iter().map(|(id, a)| (id.clone(), a.clone())).collect();
        for id in &self.own_ids {
            let what = if id.contains("/master") { "master secret" } else { "secret" };
            let kind = if id.starts_with("arn:") { "arn" } else { "name" };
            pairs.push((id.clone(), format!("<{what} {kind}>")));
        }
        for r in &self.roles {
            let alias = if *r == self.username {
                "<user>".to_string()
            } else if r.starts_with("rotcheck_master") {
                "<master user>".to_string()
            } else {
                continue;
            };
            pairs.push((r.clone(), alias));
        }
        for (i, t) in self.tables.iter().enumerate() {
            pairs.push((t.clone(), format!("<table {}>", i + 1)));
        }
        pairs.retain(|(k, _)| !k.is_empty());
        let Ok(ac) = aho_corasick::AhoCorasick::builder().match_kind(aho_corasick::MatchKind::LeftmostLongest).build(pairs.iter().map(|(k, _)| k))
        else {
            return;
        };
        let to: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        let fix = |t: &mut String| *t = ac.replace_all(t, &to);
        for e in &mut self.events {
            e.for_each_text(fix);
        }
        for v in &mut self.violations {
            fix(&mut v.message);
        }
        if let Some(u) = &mut self.operator_unsafe {
            fix(u);
        }
    }

    // ----- setup and teardown -------------------------------------------------------------

    async fn setup(&mut self, schedule: &Schedule, seed: u64) -> Result<(), String> {
        let db = &self.infra.db;
        let roles = CaseRoles::of(self.config, db.flavor, self.index, schedule, &mut self.rng);
        self.username = roles.username.clone();
        self.stats.usernames.insert(username_class(&schedule.setup.username).into(), 1);
        let password = roles.password.clone();
        // Every source of randomness of the case comes from its seed.
        {
            let mut m = self.infra.emulator.model().lock().expect("model lock");
            m.set_caller_entropy(&self.worker.keys[0], Box::new(StdRng::seed_from_u64(seed ^ 0x11)));
            m.set_caller_entropy(&self.worker.keys[1], Box::new(StdRng::seed_from_u64(seed ^ 0x22)));
            m.set_caller_entropy(&self.worker.service, Box::new(StdRng::seed_from_u64(seed ^ 0x33)));
        }
        for k in self.worker.keys.iter().chain([&self.worker.service]) {
            self.infra.emulator.log().take(k);
        }
        self.worker.proxy.set_mode(ProxyMode::Pass);
        // The roles are dropped at teardown whether or not they were all made.
        self.roles.extend(roles.names());
        let master = roles.master.clone();
        // Made while the worker's previous case ran, when it knew this one (see
        // Runner::run_case_before); the same roles, as they are a function of the case.
        let made = match self.roles_ahead.take() {
            Some(ahead) if ahead.roles == roles => ahead.made.await.unwrap_or_else(|e| Err(format!("making the case's roles failed: {e}"))),
            other => {
                if let Some(other) = other {
                    self.worker.discard(db, other);
                }
                // A replay under the same index (a shrink) finds its names still being
                // dropped after the last run.
                self.worker.settle(&roles.names()).await;
                roles.make(db.clone()).await
            }
        };
        let made = made?;
        self.tables.push(made.table);
        if let Some((fingerprint, ok)) = made.first_login {
            self.stats.probes += 1;
            self.probe_memo.record(&self.username, &password, Some(fingerprint), ok);
        }
        let engine = match self.config.engine {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        };
        let port = self.worker.proxy.addr().port();
        let shape = &schedule.setup.secret;
        let mut value = json!({
            "engine": engine,
            "host": "127.0.0.1",
            "port": if shape.port_as_string { json!(port.to_string()) } else { json!(port) },
            "username": self.username,
            "password": password,
        });
        if !shape.omit_dbname {
            value["dbname"] = json!(db.database);
        }
        for (k, v) in &shape.extra {
            value[k] = json!(v);
        }
        if let Some((master, master_password)) = master {
            let master_value = json!({"engine": engine, "host": "127.0.0.1", "port": port, "username": master,
                "password": master_password, "dbname": db.database});
            let out = self.service(Operation::CreateSecret, json!({"Name": format!("{}/master", self.name), "SecretString": master_value.to_string()}))?;
            let master_arn = out["ARN"].as_str().unwrap_or_default().to_string();
            self.own_ids.push(master_arn.clone());
            self.own_ids.push(format!("{}/master", self.name));
            value["masterarn"] = json!(master_arn);
        }
        let out = self.service(Operation::CreateSecret, json!({"Name": self.name, "SecretString": value.to_string()}))?;
        self.arn = out["ARN"].as_str().unwrap_or_default().to_string();
        self.own_ids.push(self.arn.clone());
        self.own_ids.push(self.name.clone());
        let first = out["VersionId"].as_str().unwrap_or_default().to_string();
        self.aliases.insert(first, "t0".into());
        self.events.push(TraceEvent::Setup { username: schedule.setup.username.clone() });
        Ok(())
    }

    fn new_token(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b);
        let t = uuid::Builder::from_random_bytes(b).into_uuid().to_string();
        self.tokens.push(t.clone());
        self.aliases.insert(t.clone(), format!("t{}", self.tokens.len()));
        t
    }

    fn alias(&self, token: &str) -> String {
        self.aliases.get(token).cloned().unwrap_or_else(|| "t?".into())
    }

    async fn teardown(&mut self) {
        // The roles and tables go in the background: the next case has its own (named after
        // its index; a replay of this one waits for these drops), and the worker waits for
        // them before it stops.
        let (db, roles, tables) = (self.infra.db.clone(), std::mem::take(&mut self.roles), std::mem::take(&mut self.tables));
        self.worker.drop_in_background(roles.clone(), async move {
            for r in roles.iter().rev() {
                let _ = db.drop_role(r).await;
            }
            for t in &tables {
                let _ = db.drop_table(t).await;
            }
        });
        for name in [self.name.clone(), format!("{}/master", self.name)] {
            let _ = self.service(Operation::DeleteSecret, json!({"SecretId": name, "ForceDeleteWithoutRecovery": true}));
        }
        let mut m = self.infra.emulator.model().lock().expect("model lock");
        for k in self.worker.keys.iter().chain([&self.worker.service]) {
            m.forget_caller(k);
        }
        drop(m);
        for k in self.worker.keys.iter().chain([&self.worker.service]) {
            self.infra.emulator.log().take(k);
        }
        self.worker.proxy.set_mode(ProxyMode::Pass);
    }

    /// A call as the service (or the operator): logged under the worker's service key.
    fn service(&self, op: Operation, body: serde_json::Value) -> Result<serde_json::Value, String> {
        self.infra.emulator.call(&self.worker.service, op, &body).map(|a| a.body).map_err(|e| e.to_string())
    }

    // ----- observation --------------------------------------------------------------------

    /// The secret's versions and which labelled credentials log in (at the server itself).
    async fn observe(&mut self) -> Observed {
        let t = Instant::now();
        let o = self.observe_untimed().await;
        self.spent("observe", t);
        o
    }

    async fn observe_untimed(&mut self) -> Observed {
        let versions: Vec<(String, u32, Vec<String>, Option<String>)> = {
            let m = self.infra.emulator.model().lock().expect("model lock");
            match m.secret(&self.arn) {
                Some(s) => s
                    .versions
                    .iter()
                    .map(|v| {
                        let mut labels = v.stages.clone();
                        labels.sort();
                        (v.id.clone(), v.ordinal, labels, v.value.as_ref().and_then(|x| x.as_str()).map(str::to_string))
                    })
                    .collect(),
                None => Vec::new(),
            }
        };
        let creds: Vec<Credentials> = versions
            .iter()
            .filter(|(_, _, labels, _)| !labels.is_empty())
            .filter_map(|(_, _, _, value)| value.as_deref().and_then(parse_credentials))
            .collect();
        let mut users: Vec<String> = creds.iter().map(|c| c.user.clone()).collect();
        users.sort();
        users.dedup();
        // Earlier verdicts still hold while the users' fingerprints are unchanged, or (without
        // fingerprints) while no function connection has touched the database.
        let fingerprints = if creds.is_empty() { None } else { self.login_fingerprints(&users).await };
        let epoch = self.proxy_epoch();
        let memo = &mut self.probe_memo;
        match &fingerprints {
            Some(f) => memo.results.retain(|(user, _), (then, _)| then.is_some() && then.as_ref() == f.get(user)),
            None if epoch.is_none() || epoch != memo.epoch || memo.unsettled => memo.results.clear(),
            None => memo.results.retain(|_, (then, _)| then.is_none()),
        }
        memo.epoch = epoch;
        // The login probes of the labelled versions' distinct credentials not known yet, newest
        // version first. A PostgreSQL role has one password verifier: once one password of a
        // user logs in, the user's other passwords are refused (ProbeMemo::refused_by_another),
        // so for such a user the newest credential is probed alone first and the others only
        // if it was refused. The probes of a round run at once: they only read.
        let mut wanted: Vec<Credentials> = Vec::new();
        for c in creds.into_iter().rev() {
            let known = memo.results.contains_key(&(c.user.clone(), c.password.clone()));
            if !known && !wanted.iter().any(|w| w.user == c.user && w.password == c.password) {
                wanted.push(c);
            }
        }
        let mut probed: HashMap<(String, String), bool> = HashMap::new();

        for round in 0..2 {
            let mut probes: Vec<((String, String), tokio::task::JoinHandle<LoginOutcome>)> = Vec::new();
            let mut later = Vec::new();
            for c in std::mem::take(&mut wanted) {
                let fingerprint = fingerprints.as_ref().and_then(|f| f.get(&c.user));
                if let Some(f) = fingerprint
                    && memo.refused_by_another(&c.user, &c.password, f)
                {
                    memo.results.insert((c.user.clone(), c.password.clone()), (Some(f.clone()), false));
                    continue;
                }
                let may_decide_others = fingerprint.is_some() && memo.is_checked(&c.user) && c.password.is_ascii();
                if round == 0 && may_decide_others && probes.iter().any(|((user, _), _)| *user == c.user) {
                    later.push(c);
                    continue;
                }
                let key = (c.user.clone(), c.password.clone());
                let db = self.infra.db.clone();
                probes.push((key, tokio::spawn(async move { db.login(&db.endpoint, &c).await })));
            }
            self.stats.probes += probes.len() as u64;
            for (key, probe) in probes {
                let t = Instant::now();
                let outcome = probe.await.expect("a login probe does not panic");
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let of = versions.iter().filter(|(_, _, _, v)| v.as_deref().and_then(parse_credentials).is_some_and(|c| c.user == key.0 && c.password == key.1));
                    let of: Vec<String> = of.map(|(_, ordinal, labels, _)| format!("v{ordinal} {}", labels.join(","))).collect();
                    tracing::debug!(case = self.index, command = self.command + 1, round, of = of.join("; "), ok = outcome.ok(), ms = t.elapsed().as_millis() as u64, "login probe");
                }
                if matches!(outcome, LoginOutcome::Authenticated | LoginOutcome::AuthenticationFailed) {
                    let then = fingerprints.as_ref().and_then(|f| f.get(&key.0).cloned());
                    if then.is_some() || epoch.is_some() {
                        memo.record(&key.0, &key.1, then, outcome.ok());
                    }
                }
                probed.insert(key, outcome.ok());
            }
            wanted = later;
            if wanted.is_empty() {
                break;
            }
        }
        let mut cache: HashMap<(String, String), bool> = memo.results.iter().map(|(k, (_, ok))| (k.clone(), *ok)).collect();
        cache.extend(probed);
        let mut seen = Vec::new();
        for (id, ordinal, labels, value) in versions {
            let creds = value.as_deref().and_then(parse_credentials);
            let mut logs_in = None;
            if let Some(c) = &creds
                && !labels.is_empty()
            {
                logs_in = cache.get(&(c.user.clone(), c.password.clone())).copied();
            }
            seen.push(SeenVersion {
                alias: format!("v{ordinal}"),
                id,
                labels,
                has_value: value.is_some(),
                user: creds.map(|c| c.user),
                logs_in,
            });
        }
        let o = Observed { versions: seen };
        self.last_observed = Some(o.clone());
        o
    }

    /// The proxy's connection count while none is open (`None` while one is): equal epochs
    /// mean no function connection reached the database in between.
    fn proxy_epoch(&self) -> Option<u64> {
        let proxy = &self.worker.proxy;
        (proxy.open_connections() == 0).then(|| proxy.total_connections())
    }

    /// The login fingerprints of `users`, as last read while they still hold (see
    /// [`ReadFingerprints`]), else read from the server.
    async fn login_fingerprints(&mut self, users: &[String]) -> Option<HashMap<String, String>> {
        let before = self.proxy_epoch();
        if let Some(f) = self.probe_memo.fingerprints_still(before, users) {
            return Some(f);
        }
        let Some(read) = self.infra.db.login_fingerprints(users).await else {
            self.probe_memo.fingerprints = None;
            return None;
        };
        let expires = read.values().any(|fp| fp.expires);
        let digests: HashMap<String, String> = read.into_iter().map(|(u, fp)| (u, fp.digest)).collect();
        let keep = before.filter(|_| self.proxy_epoch() == before && !self.probe_memo.unsettled && !expires);
        self.probe_memo.fingerprints = keep.map(|epoch| ReadFingerprints { epoch, users: users.iter().cloned().collect(), digests: digests.clone() });
        Some(digests)
    }

    /// Observes, records the state, and checks what must hold at every instant.
    async fn observe_and_check(&mut self) -> Observed {
        let o = self.observe().await;
        self.events.push(TraceEvent::state(&o));
        if let Some(m) = checker::lockout(&o) {
            if self.operator_acted {
                self.operator_unsafe = Some(format!("after an operator command, {m}"));
                self.events.push(TraceEvent::OperatorUnsafe { text: m });
            } else {
                self.violate(Property::P3, m);
            }
        }
        if let Some(v) = o.holder(AWSCURRENT)
            && v.logs_in == Some(false)
        {
            match self.config.strategy {
                Strategy::AlternatingUsers if !self.operator_acted => {
                    if let Some(m) = checker::current_unavailable(&o) {
                        self.violate(Property::P6, m);
                    }
                }
                // With alternating users clients must never be turned away (P6); when an
                // operator command did it (a value put by hand that the database never got),
                // the state is the operator's doing, and the case ends there.
                Strategy::AlternatingUsers if self.operator_unsafe.is_none() => {
                    let m = format!("after an operator command, clients following AWSCURRENT ({}) cannot log in: {}", v.alias, o.labels_text());
                    self.operator_unsafe = Some(m.clone());
                    self.events.push(TraceEvent::OperatorUnsafe { text: m });
                }
                _ => self.stats.unavailable_windows += 1,
            }
        }
        o
    }

    fn violate(&mut self, property: Property, message: String) {
        if self.violations.iter().any(|v| v.property == property) {
            return;
        }
        let v = Violation { property, message, command: self.command };
        self.events.push(TraceEvent::Violation(v.clone()));
        self.violations.push(v);
    }

    // ----- invocations --------------------------------------------------------------------

    /// Invokes `step` for `token` in `slot`, with `fault` attached; records and checks it.
    async fn invoke(&mut self, step: Step, token: &str, attempt: u32, slot: usize, fault: Option<&FaultSpec>) -> Outcome {
        let key = self.worker.keys[slot].clone();
        let event = Event { step, secret_id: self.arn.clone(), token: token.to_string(), rotation_token: Some(self.rotation_token()) };
        let mut options = InvokeOptions::default();
        let mut armed = None;
        let kill = KillSwitch::new();
        match fault {
            Some(FaultSpec::Crash { point }) => {
                let a = crash::arm(*point, kill.clone(), &self.infra.emulator, &key, Some(self.worker.proxy.clone()));
                options.kill = Some(kill.clone());
                options.gate = Some(a.gate.clone());
                armed = Some(a);
            }
            Some(FaultSpec::DropResult) => options.drop_result = true,
            Some(FaultSpec::ApiError { nth, error }) => {
                let kind = ErrorKind::parse(error).unwrap_or(ErrorKind::InternalServiceError);
                let f = if kind == ErrorKind::ThrottlingException { Fault::throttle() } else { Fault::error(kind) };
                self.infra.emulator.set_hook(&key, Arc::new(FaultPlan::new([(*nth, None, f)])));
            }
            Some(FaultSpec::ApiLost { nth }) => {
                self.infra.emulator.set_hook(&key, Arc::new(FaultPlan::new([(*nth, None, Fault::ApplyThenDrop)])));
            }
            Some(FaultSpec::DbRefuse) => self.worker.proxy.set_mode(ProxyMode::Refuse),
            Some(FaultSpec::DbCut { bytes }) => self.worker.proxy.set_mode(ProxyMode::CloseAfter { bytes: *bytes }),
            Some(FaultSpec::DbBlackhole) => self.worker.proxy.set_mode(ProxyMode::Blackhole),
            None => {}
        }
        if let Some(f) = fault {
            *self.stats.faults.entry(fault_kind(f).into()).or_default() += 1;
        }
        let connections_before = self.worker.proxy.total_connections();
        let inv = self.worker.function.invoke_in(slot, &event, options).await;

        let mut connections = self.worker.proxy.total_connections() - connections_before;
        if let Some(FaultSpec::Crash { point: CrashPoint::DbConnectionClosed { nth } }) = fault {
            // Connections after the n-th were held, never forwarded (FaultProxy::hold_after);
            // whether the process opened one before the kill landed is not part of the story.
            connections = connections.min(*nth);
        }
        if let Some(a) = armed {
            a.disarm();
        }
        self.infra.emulator.clear_hook(&key);
        self.worker.proxy.set_mode(ProxyMode::Pass);
        if inv.outcome.is_unknown() {
            // The killed process's connections of this step must be gone before the state is
            // observed (older ones a warm process left open carry no statement of this step).
            if !self.worker.proxy.wait_until_closed_after(connections_before, Duration::from_secs(5)).await {
                self.worker.proxy.drop_all();
                self.worker.proxy.wait_until_closed_after(connections_before, Duration::from_secs(2)).await;
            }
            self.probe_memo.fingerprints = None;
            self.probe_memo.unsettled = true;
        }
        let calls = self.infra.emulator.log().take(&key);
        self.record(step, token, attempt, slot, fault, &inv, &calls, connections);
        if fault.is_some() || inv.outcome.is_unknown() || inv.outcome.is_success() {
            self.disturbed.insert((token.to_string(), step));
        }
        inv.outcome
    }

    fn rotation_token(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn record(&mut self, step: Step, token: &str, attempt: u32, slot: usize, fault: Option<&FaultSpec>, inv: &Invocation, calls: &[CallRecord], connections: u64) {
        self.stats.steps += 1;
        self.spent_us("function", inv.duration.as_micros() as u64);
        self.spent_us("emulator", calls.iter().map(|c| c.micros).sum());
        let outcome = outcome_text(&inv.outcome);
        tracing::debug!(case = self.index, step = step.name(), attempt, fault = fault.map(fault_text), outcome, cold = inv.cold, ms = inv.duration.as_millis() as u64, "invocation");
        if let Outcome::Killed { reason } = &inv.outcome {
            *self.stats.kills.entry(format!("{}: {reason}", step.name())).or_default() += 1;
        }
        for c in calls {
            // Calls refused before authorization (bad signature, no operation) need no permission.
            if let (Some(op), false) = (c.op, matches!(c.outcome, CallOutcome::Rejected { .. })) {
                let resource = match c.args.get("SecretId").and_then(|v| v.as_str()) {
                    None => "*".to_string(),
                    Some(id) if self.own_ids.iter().any(|o| o == id) => {
                        if id.contains("/master") { "master secret" } else { "rotated secret" }.to_string()
                    }
                    Some(id) => id.to_string(),
                };
                self.stats.permissions.entry(format!("secretsmanager:{}", op.name())).or_default().insert(resource);
            }
        }
        let call_texts = calls.iter().map(call_text).collect();
        self.events.push(TraceEvent::Invoke {
            step,
            token: self.alias(token),
            attempt,
            slot,
            fault: fault.map(fault_text),
            outcome,
            calls: call_texts,
            connections,
        });
        if inv.outcome.is_success() {
            self.succeeded.entry(token.to_string()).or_default().insert(step);
            if step == Step::TestSecret {
                self.tested.insert(token.to_string());
            }
        }
        if !inv.leaked.is_empty() {
            self.violate(Property::P8, format!("{} printed secret values: {}", step.name(), inv.leaked.join(", ")));
        }
        if let Outcome::Crashed { detail } = &inv.outcome
            && fault.is_none()
        {
            self.violate(Property::P7, format!("the function cannot run: {detail}"));
        }
        let tested = self.tested.contains(token);
        for problem in checker::contract(calls, token, &self.own_ids, tested) {
            self.violate(Property::Contract, format!("{}: {problem}", step.name()));
        }
    }

    // ----- commands -----------------------------------------------------------------------

    /// A rotation as Secrets Manager runs it.
    async fn rotate(&mut self, r: &Rotation) {
        self.stats.rotations += 1;
        let before = self.observe().await;
        let old_current = before.holder(AWSCURRENT).map(|v| v.id.clone());
        let token = self.new_token();
        let started = self.service(
            Operation::RotateSecret,
            json!({"SecretId": self.arn, "ClientRequestToken": token, "RotationLambdaARN": LAMBDA_ARN}),
        );
        self.refused_reattempt = false;
        let token = match started {
            Ok(_) => {
                self.events.push(TraceEvent::Note { text: format!("RotateSecret: placeholder {} with AWSPENDING", self.alias(&token)) });
                token
            }
            Err(e) if e.contains("previous rotation isn't complete") && !self.rotation_enabled() => {
                // Cancelled: the service does not reattempt; nothing runs until cleanup.
                self.tokens.pop();
                self.stats.refused += 1;
                self.events.push(TraceEvent::Note { text: format!("RotateSecret refused ({e}); rotation is cancelled, so nothing runs") });
                return;
            }
            Err(e) if e.contains("previous rotation isn't complete") => {
                // The service reattempts the incomplete rotation, with its token.
                self.tokens.pop();
                self.stats.refused += 1;
                self.refused_reattempt = true;
                let pending = before.holder(AWSPENDING).map(|v| v.id.clone()).unwrap_or_default();
                self.events.push(TraceEvent::Note { text: format!("RotateSecret refused ({e}); the service reattempts {}", self.alias(&pending)) });
                pending
            }
            Err(e) => {
                self.events.push(TraceEvent::Note { text: format!("RotateSecret failed: {e}") });
                return;
            }
        };
        if !r.password.forced.is_empty() {
            let mut m = self.infra.emulator.model().lock().expect("model lock");
            m.queue_password_recipe(&self.worker.keys[0], r.password.clone());
            for (_, c) in &r.password.forced {
                *self.stats.forced_chars.entry(c.to_string()).or_default() += 1;
            }
        }
        let retries = r.retries.unwrap_or(self.config.retries);
        let mut completed = false;
        let mut last_failure = None;
        'attempts: for attempt in 1..=retries + 1 {
            for step in Step::ALL {
                let fault = r.faults.iter().find(|f| f.attempt == attempt && f.step == step).map(|f| f.fault.clone());
                let outcome = self.invoke(step, &token, attempt, 0, fault.as_ref()).await;
                self.observe_and_check().await;
                // A violation ends the case after this command; the rotation still runs to its
                // end, so that everything it breaks is reported.
                if self.operator_unsafe.is_some() {
                    return;
                }
                if !outcome.is_success() {
                    let faulted = r.faults.iter().any(|f| f.attempt == attempt);
                    last_failure = Some((step, outcome, faulted));
                    continue 'attempts;
                }
            }
            completed = true;
            break;
        }
        // The last attempt ran without any fault: a working function completes it. If an
        // earlier attempt was faulted, the retries do not converge (P2); if nothing was ever
        // faulted, the function does not work at all (P4).
        if !completed
            && let Some((step, outcome, false)) = &last_failure
        {
            // The failing step ran before in this rotation and succeeded, or was disturbed (a
            // fault, an unknown outcome): its retry does not converge. Otherwise it never
            // worked.
            let disturbed_before = self.disturbed.contains(&(token.clone(), *step)) || self.refused_reattempt;
            let (property, why) = if disturbed_before {
                (Property::P2, "after a fault, the service's retries do not converge")
            } else {
                (Property::P4, "the rotation failed with no fault at all")
            };
            self.violate(property, format!("{why}: the last attempt's {} answered {}", step.name(), outcome_text(outcome)));
            // And the rotation is stuck: AWSPENDING apart from AWSCURRENT blocks every later one.
            let o = self.observe().await;
            if let Some(p) = o.holder(AWSPENDING)
                && !p.labels.iter().any(|l| l == AWSCURRENT)
            {
                self.violate(Property::P1, format!("the rotation is stuck: AWSPENDING is left on {} apart from AWSCURRENT ({})", p.alias, o.labels_text()));
            }
        }
        if completed {
            self.finish_rotation(&token, old_current.as_deref(), before.versions.len()).await;
        } else {
            self.stats.failed += 1;
            let o = self.observe().await;
            self.events.push(TraceEvent::Note { text: format!("rotation {} failed after {} attempts", self.alias(&token), retries + 1) });
            // A failed rotation must be safe: the database still accepts AWSCURRENT.
            if let Some(v) = o.holder(AWSCURRENT)
                && v.logs_in == Some(false)
            {
                let m = format!("the rotation failed and the database no longer accepts AWSCURRENT ({}): {}", v.alias, o.labels_text());
                self.violate(Property::P3, m);
            }
        }
    }

    fn rotation_enabled(&self) -> bool {
        let m = self.infra.emulator.model().lock().expect("model lock");
        m.secret(&self.arn).is_some_and(|s| s.rotation.enabled == Some(true))
    }

    /// The service's bookkeeping after finishSecret succeeded, then the end-state checks.
    async fn finish_rotation(&mut self, token: &str, old_current: Option<&str>, versions_before: usize) {
        let done = {
            let mut m = self.infra.emulator.model().lock().expect("model lock");
            m.complete_rotation(&self.arn, token).unwrap_or(false)
        };
        let after = self.observe().await;
        self.events.push(TraceEvent::Note { text: format!("rotation {} completed", self.alias(token)) });
        self.events.push(TraceEvent::state(&after));
        if !done {
            self.violate(Property::P1, format!("finishSecret succeeded but AWSCURRENT is not on {}: {}", self.alias(token), after.labels_text()));
            return;
        }
        self.stats.completed += 1;
        for p in checker::labels_after_rotation(&after, token, old_current) {
            self.violate(Property::P1, p);
        }
        if after.versions.len() > versions_before + 1 {
            self.violate(Property::P2, format!("one rotation left {} new versions", after.versions.len() - versions_before));
        }
        // P4: AWSCURRENT logs in, reads and writes.
        if let Some(current) = after.holder(AWSCURRENT).and_then(|v| self.credentials_of(&v.id)) {
            let db = &self.infra.db;
            let table = self.table_for(&current.user);
            // AWSCURRENT's login was just probed (or its verdict still holds): its privileges
            // can be asked as the role on an admin connection, without another login.
            let logs_in = after.holder(AWSCURRENT).and_then(|v| v.logs_in) == Some(true);
            let as_role = if logs_in { db.role_can_read_and_write(&current.user, &table).await } else { None };
            let verdict = match as_role {
                Some(rw) => Ok(rw),
                None => db.can_read_and_write(&current, &table).await,
            };
            match verdict {
                Ok((true, true)) => {}
                Err(e) => {
                    self.violate(Property::P4, format!("AWSCURRENT does not log in after the rotation: {}", crate::database::probe::describe(db.engine, &e)))
                }
                Ok((r, w)) => self.violate(Property::P4, format!("AWSCURRENT logs in but cannot read (Ok({r})) or write (Ok({w})) its table")),
            }
        } else {
            self.violate(Property::P4, format!("AWSCURRENT holds no usable credentials: {}", after.labels_text()));
        }
        // P5: the two users of alternating rotation can do the same things.
        if self.config.strategy == Strategy::AlternatingUsers {
            let clone = format!("{}_clone", self.username);
            let db = &self.infra.db;
            if let (Ok(a), Ok(b)) = (db.privileges(&self.username).await, db.privileges(&clone).await)
                && !b.0.is_empty()
                && a != b
            {
                let (missing, extra) = a.diff(&b);
                self.violate(Property::P5, format!("{} and {clone} differ: the clone lacks {missing:?} and has {extra:?}", self.username));
            }
        }
    }

    fn credentials_of(&self, version: &str) -> Option<Credentials> {
        let m = self.infra.emulator.model().lock().expect("model lock");
        let v = m.secret(&self.arn)?.version(version)?.value.clone()?;
        parse_credentials(v.as_str()?)
    }

    /// The probe table a user can reach (the clone reaches the user's through membership).
    fn table_for(&self, _user: &str) -> String {
        self.tables.first().cloned().unwrap_or_default()
    }

    /// A duplicate or late delivery of a step.
    async fn deliver(&mut self, d: &Delivery) {
        let token = match d.of {
            Which::Latest => self.tokens.last().cloned(),
            Which::Earlier => self.tokens.len().checked_sub(2).map(|i| self.tokens[i].clone()),
        };
        let Some(token) = token else {
            self.events.push(TraceEvent::Note { text: "no such rotation: nothing delivered".into() });
            return;
        };
        self.stats.deliveries += 1;
        let before = self.observe().await;
        let had_succeeded = self.succeeded.get(&token).is_some_and(|s| s.contains(&d.step));
        let is_current = before.holder(AWSCURRENT).is_some_and(|v| v.id == token);
        let outcomes = if d.copies >= 2 {
            self.stats.concurrent_deliveries += 1;
            self.invoke_twice(d.step, &token).await
        } else {
            vec![self.invoke(d.step, &token, 0, 0, None).await]
        };
        let after = self.observe_and_check().await;
        let enabled = self.rotation_enabled();
        if (had_succeeded || (is_current && !enabled)) && let Some(m) = checker::changed_by_repeat(&before, &after) {
            self.violate(Property::P2, format!("{} of {} delivered again after it succeeded: {m}", d.step.name(), self.alias(&token)));
        }
        // The contract checks RotationEnabled before the AWSCURRENT guard (spec 1.4 before 1.7):
        // after CancelRotateSecret an error that changed nothing (checked above) is the
        // expected answer.
        if is_current && enabled && !outcomes.iter().all(Outcome::is_success) {
            self.violate(
                Property::P2,
                format!("{} of {} (already AWSCURRENT) must be a no-op returning success, got {}", d.step.name(), self.alias(&token), outcome_text(outcomes.iter().find(|o| !o.is_success()).expect("one failed"))),
            );
        }
    }

    /// Two concurrent deliveries of the same step and token, in the two warm processes.
    async fn invoke_twice(&mut self, step: Step, token: &str) -> Vec<Outcome> {
        let event = |c: &mut Self| Event { step, secret_id: c.arn.clone(), token: token.to_string(), rotation_token: Some(c.rotation_token()) };
        let (e0, e1) = (event(self), event(self));
        let f = &self.worker.function;
        let (a, b) = tokio::join!(f.invoke_in(0, &e0, InvokeOptions::default()), f.invoke_in(1, &e1, InvokeOptions::default()));
        let c0 = self.infra.emulator.log().take(&self.worker.keys[0]);
        let c1 = self.infra.emulator.log().take(&self.worker.keys[1]);
        // Concurrent: the proxy cannot tell whose connection it was.
        self.record(step, token, 0, 0, None, &a, &c0, 0);
        self.record(step, token, 0, 1, None, &b, &c1, 0);
        vec![a.outcome, b.outcome]
    }

    /// RotateImmediately=false: testSecret alone on a temporary version; no trace may remain.
    async fn test_rotation(&mut self) {
        let before = self.observe().await;
        let mut b = [0u8; 16];
        self.rng.fill(&mut b);
        let token = uuid::Builder::from_random_bytes(b).into_uuid().to_string();
        self.aliases.insert(token.clone(), "test".into());
        let r = self.service(
            Operation::RotateSecret,
            json!({"SecretId": self.arn, "ClientRequestToken": token, "RotationLambdaARN": LAMBDA_ARN, "RotateImmediately": false}),
        );
        if let Err(e) = r {
            self.events.push(TraceEvent::Note { text: format!("RotateSecret (test only) refused: {e}") });
            return;
        }
        self.stats.test_rotations += 1;
        self.invoke(Step::TestSecret, &token, 0, 0, None).await;
        {
            let mut m = self.infra.emulator.model().lock().expect("model lock");
            let _ = m.end_test_rotation(&self.arn, &token);
        }
        let mut after = self.observe_and_check().await;
        // The temporary version itself is deprecated now; everything else must be as before.
        after.versions.retain(|v| v.id != token);
        if let Some(m) = checker::changed_by_repeat(&before, &after) {
            self.violate(Property::P1, format!("a test-only rotation left a trace: {m}"));
        }
    }

    /// An application client reads AWSCURRENT and logs in.
    async fn client_login(&mut self) {
        self.stats.client_logins += 1;
        let o = self.observe_and_check().await;
        let text = match o.holder(AWSCURRENT) {
            Some(v) if v.logs_in == Some(true) => "the client logs in with AWSCURRENT".to_string(),
            Some(_) => "the client cannot log in with AWSCURRENT".to_string(),
            None => "no AWSCURRENT to read".to_string(),
        };
        self.events.push(TraceEvent::Note { text });
    }

    async fn operator(&mut self, action: OperatorAction) {
        self.stats.operator += 1;
        let o = self.observe().await;
        let r = match action {
            OperatorAction::RemovePending => match o.holder(AWSPENDING) {
                Some(v) => self.service(
                    Operation::UpdateSecretVersionStage,
                    json!({"SecretId": self.arn, "VersionStage": AWSPENDING, "RemoveFromVersionId": v.id}),
                ),
                None => Ok(json!(null)),
            },
            OperatorAction::Cancel => self.service(Operation::CancelRotateSecret, json!({"SecretId": self.arn})),
            OperatorAction::ManualPut => {
                let current = o.holder(AWSCURRENT).and_then(|v| {
                    let m = self.infra.emulator.model().lock().expect("model lock");
                    m.secret(&self.arn)?.version(&v.id)?.value.clone()
                });
                match current.as_ref().and_then(|v| v.as_str()).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) {
                    Some(mut value) => {
                        value["password"] = json!(random_text(&mut self.rng, 20));
                        self.service(Operation::PutSecretValue, json!({"SecretId": self.arn, "SecretString": value.to_string()}))
                    }
                    None => Ok(json!(null)),
                }
            }
        };
        if let Err(e) = r {
            self.events.push(TraceEvent::Note { text: format!("the operator's call failed: {e}") });
        }
        // A lockout right after the operator's command is the operator's doing; what the
        // function does from a safe state afterwards is the function's.
        self.operator_acted = true;
        self.observe_and_check().await;
        self.operator_acted = false;
    }
}

enum OperatorAction {
    RemovePending,
    Cancel,
    ManualPut,
}

/// `{"username": ..., "password": ...}` of a secret value.
fn parse_credentials(value: &str) -> Option<Credentials> {
    let v: serde_json::Value = serde_json::from_str(value).ok()?;
    Some(Credentials { user: v.get("username")?.as_str()?.to_string(), password: v.get("password")?.as_str()?.to_string() })
}

fn describe(c: &Command) -> String {
    match c {
        Command::Rotate(r) => {
            let mut s = "rotate".to_string();
            if !r.password.forced.is_empty() {
                let chars: Vec<String> = r.password.forced.iter().map(|(p, c)| format!("{c:?} at {p}")).collect();
                s.push_str(&format!(", the new password has {}", chars.join(" and ")));
            }
            if let Some(n) = r.retries {
                s.push_str(&format!(", {n} retries"));
            }
            s
        }
        Command::Deliver(d) => {
            let which = match d.of {
                Which::Latest => "the latest rotation",
                Which::Earlier => "the rotation before it",
            };
            let copies = if d.copies > 1 { format!(" ({} concurrent copies)", d.copies) } else { String::new() };
            format!("deliver {} of {which} again{copies}", d.step.name())
        }
        Command::TestRotation => "a test-only rotation (RotateImmediately=false)".into(),
        Command::ClientLogin => "an application client logs in with AWSCURRENT".into(),
        Command::RemovePending => "the operator removes AWSPENDING".into(),
        Command::CancelRotation => "the operator cancels the rotation".into(),
        Command::ManualPut => "the operator puts a new value by hand".into(),
    }
}

fn fault_kind(f: &FaultSpec) -> &'static str {
    match f {
        FaultSpec::Crash { point: CrashPoint::ApiCallArrives { .. } } => "crash: API call arrives",
        FaultSpec::Crash { point: CrashPoint::ApiCallAnswered { .. } } => "crash: API call answered",
        FaultSpec::Crash { point: CrashPoint::DbConnectionClosed { .. } } => "crash: DB connection closed",
        FaultSpec::DropResult => "result dropped",
        FaultSpec::ApiError { .. } => "API error",
        FaultSpec::ApiLost { .. } => "API response lost",
        FaultSpec::DbRefuse => "DB refuse",
        FaultSpec::DbCut { .. } => "DB cut mid-statement",
        FaultSpec::DbBlackhole => "DB blackhole",
    }
}

fn fault_text(f: &FaultSpec) -> String {
    match f {
        FaultSpec::Crash { point } => point.describe(),
        FaultSpec::DropResult => "its result is dropped".into(),
        FaultSpec::ApiError { nth, error } => format!("Secrets Manager call #{nth} fails with {error}"),
        FaultSpec::ApiLost { nth } => format!("Secrets Manager call #{nth} is applied and its answer lost"),
        FaultSpec::DbRefuse => "database connections refused".into(),
        FaultSpec::DbCut { bytes } => format!("database connections cut after {bytes} bytes"),
        FaultSpec::DbBlackhole => "database connections blackholed".into(),
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Success { .. } => "ok".into(),
        Outcome::FunctionError { error_type, message } => format!("{error_type}: {}", first_line(message)),
        Outcome::TimedOut => "timed out (unknown outcome)".into(),
        Outcome::Killed { reason } => format!("{reason} (unknown outcome)"),
        Outcome::ResultDropped { answered } => format!("result dropped (the function answered: {})", outcome_text(answered)),
        Outcome::Crashed { detail } => format!("crashed: {}", first_line(detail)),
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.chars().count() > 160 { format!("{}...", l.chars().take(160).collect::<String>()) } else { l.to_string() }
}

fn call_text(c: &CallRecord) -> String {
    let op = c.op.map(|o| o.name()).unwrap_or("?");
    let stage = c.args.get("VersionStage").and_then(|v| v.as_str()).map(|s| format!("({s})")).unwrap_or_default();
    match &c.outcome {
        CallOutcome::Ok { .. } => format!("{op}{stage}"),
        CallOutcome::Error { kind, injected, .. } => format!("{op}{stage} -> {kind}{}", if *injected { " (injected)" } else { "" }),
        CallOutcome::Lost { how, applied } => format!("{op}{stage} -> {how}{}", if *applied { ", applied" } else { "" }),
        CallOutcome::Rejected { kind, .. } => format!("{op} -> {kind}"),
    }
}

fn username_class(name: &str) -> &'static str {
    if !name.is_ascii() {
        "multibyte"
    } else if name.chars().any(|c| "\"' ;-".contains(c)) {
        "quotes or spaces"
    } else if name.len() > 30 {
        "long"
    } else if name.chars().any(|c| c.is_ascii_uppercase()) {
        "mixed case"
    } else {
        "plain"
    }
}

#[cfg(test)]
mod tests {
    use super::ProbeMemo;

    fn verdict(m: &mut ProbeMemo, user: &str, password: &str, fingerprint: &str, ok: bool) {
        m.record(user, password, Some(fingerprint.into()), ok);
    }

    #[test]
    fn a_refusal_is_deduced_only_where_the_server_was_seen_to_check_passwords() {
        let mut m = ProbeMemo::default();
        verdict(&mut m, "u", "current", "f1", true);
        // A login alone proves nothing: under `trust` every password logs in.
        assert!(!m.refused_by_another("u", "pending", "f1"));
        verdict(&mut m, "u", "pending", "f1", false);
        assert!(m.checked.contains("u"));
        assert!(m.refused_by_another("u", "previous", "f1"), "the one verifier is current's");
        assert!(!m.refused_by_another("u", "current", "f1"), "not the password that logged in");
        assert!(!m.refused_by_another("u", "previous", "f2"), "not under another fingerprint");
        assert!(!m.refused_by_another("v", "previous", "f1"), "not for another user");
        assert!(!m.refused_by_another("u", "pässword", "f1"), "not for a password SASLprep may normalize");
    }

    #[test]
    fn refusals_alone_do_not_show_that_passwords_are_checked() {
        let mut m = ProbeMemo::default();
        // NOLOGIN, say: every password refused.
        verdict(&mut m, "u", "a", "f1", false);
        verdict(&mut m, "u", "b", "f1", false);
        // A login under another fingerprint does not pair with them.
        verdict(&mut m, "u", "c", "f2", true);
        assert!(!m.checked.contains("u"));
        assert!(!m.refused_by_another("u", "d", "f2"));
    }

    #[test]
    fn a_server_whose_rules_all_check_passwords_needs_no_refusal_first() {
        let mut m = ProbeMemo { all_checked: true, ..Default::default() };
        verdict(&mut m, "u", "current", "f1", true);
        assert!(m.refused_by_another("u", "pending", "f1"));
        assert!(!m.refused_by_another("u", "pending", "f2"), "not under another fingerprint");
        assert!(!m.refused_by_another("u", "current", "f1"));
    }
}
