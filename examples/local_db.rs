//! Starts a throwaway database server with rotcheck's `local` provider and prints its admin
//! URL; stops it (and removes its files) on Ctrl-C or SIGTERM. Handy when developing a rotation function.
//!
//!     cargo run --example local_db -- postgres
//!     cargo run --example local_db -- mysql

use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::database::{Engine, Provider};

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "postgres".into());
    let engine = match Engine::parse(&arg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("local_db: {e}");
            std::process::exit(2);
        }
    };
    let server = match LocalProvider::default().start(engine).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("local_db: {e}");
            std::process::exit(2);
        }
    };
    let scheme = match engine {
        Engine::Postgres => "postgres",
        Engine::Mysql => "mysql",
    };
    println!(
        "{scheme}://{}:{}@{}:{}/{}",
        server.admin.user, server.admin.password, server.endpoint.host, server.endpoint.port, server.database
    );
    // Ctrl-C or SIGTERM: stop the server and remove its files.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(server);
}
