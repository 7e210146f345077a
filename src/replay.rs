//! `rotcheck replay`: runs a scenario file (a counterexample `rotcheck check` wrote, or a
//! hand-written regression) once, and says whether it did what the file expects.

use crate::UsageError;
use crate::check::{run_config, start};
use rotcheck_harness::schedule::{Expectation, Scenario, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `rotcheck replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The function (default: the one the scenario names).
    #[arg(long)]
    pub function: Option<PathBuf>,
    /// The handler, as module.function.
    #[arg(long, default_value = "lambda_function.lambda_handler")]
    pub handler: String,
    /// The database engine (default: the scenario's, else postgres).
    #[arg(long)]
    pub engine: Option<String>,
    /// The user strategy (default: the scenario's, else single-user).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Where the database comes from: auto, docker, local, or an admin URL.
    #[arg(long, default_value = "auto")]
    pub db: String,
}

pub async fn run(args: ReplayArgs) -> Result<ExitCode, UsageError> {
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| UsageError(format!("cannot read {}: {e}", args.scenario.display())))?;
    let scenario = Scenario::from_yaml(&text).map_err(|e| UsageError(format!("{}: {e}", args.scenario.display())))?;
    let function = args
        .function
        .clone()
        .or_else(|| scenario.function.as_ref().map(PathBuf::from))
        .ok_or_else(|| UsageError("the scenario names no function; pass --function <DIR>".into()))?;
    let engine = args.engine.clone().unwrap_or_else(|| scenario.applies_to.engine.map(|e| if e == rotcheck_harness::database::Engine::Mysql { "mysql" } else { "postgres" }.to_string()).unwrap_or_else(|| "postgres".into()));
    let strategy = args.strategy.clone().unwrap_or_else(|| scenario.applies_to.strategy.unwrap_or_default().name().to_string());
    let config = run_config(function.clone(), &args.handler, &engine, &strategy, Some(1), 3, 30, &[])?;
    let runner = start(config, &args.db, scenario.seed).await?;
    println!("rotcheck replay {} against {}", args.scenario.display(), function.display());
    let r = runner.run_case(0, 0, scenario.seed, &scenario.schedule).await;
    runner.shutdown().await;
    if let Some(e) = &r.setup_error {
        return Err(UsageError(format!("the case could not be set up: {e}")));
    }
    println!("{}", r.story());
    let got = match (r.violations.first(), &r.operator_unsafe) {
        (Some(v), _) => format!("violation {}", v.property.id()),
        (None, Some(_)) => "operator-unsafe".to_string(),
        (None, None) => "pass".to_string(),
    };
    let expected = match &scenario.expect {
        Expectation::Violation { violation } => format!("violation {}", violation.to_uppercase().replace("CONTRACT", "contract")),
        Expectation::Outcome(Verdict::OperatorUnsafe) => "operator-unsafe".into(),
        Expectation::Outcome(Verdict::Pass) | Expectation::Unstated => "pass".into(),
    };
    if got.eq_ignore_ascii_case(&expected) {
        println!("as expected: {got}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("NOT as expected: expected {expected}, got {got}");
        Ok(ExitCode::from(1))
    }
}
