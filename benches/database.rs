//! How long the database piece takes: starting each provider, a fresh role per test case, a
//! login probe, and stopping. Prints figures; asserts nothing.
//!
//!     cargo bench --bench database              # every provider x engine
//!     cargo bench --bench database -- local     # only those whose name contains "local"

use rotcheck_harness::database::docker::DockerProvider;
use rotcheck_harness::database::local::LocalProvider;
use rotcheck_harness::database::{Credentials, Engine, Provider};
use std::time::{Duration, Instant};

const ROLES: usize = 20;
const LOGINS: usize = 50;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_default();
    let providers: Vec<(&str, Box<dyn Provider>, Engine)> = vec![
        ("local postgres", Box::new(LocalProvider::default()), Engine::Postgres),
        ("local mariadb", Box::new(LocalProvider::default()), Engine::Mysql),
        ("docker postgres", Box::new(DockerProvider::default()), Engine::Postgres),
        ("docker mariadb", Box::new(DockerProvider::default()), Engine::Mysql),
    ];
    println!("{:<16} {:>10} {:>14} {:>14} {:>10}", "provider", "start", "fresh role", "login probe", "stop");
    for (name, provider, engine) in providers {
        if !name.contains(&filter) {
            continue;
        }
        let t = Instant::now();
        let server = match provider.start(engine).await {
            Ok(s) => s,
            Err(e) => {
                println!("{name:<16} unavailable: {e}");
                continue;
            }
        };
        let start = t.elapsed();
        let mut role_times = Vec::new();
        let mut names = Vec::new();
        for i in 0..ROLES {
            let n = format!("bench_role_{i}");
            let t = Instant::now();
            server.create_role(&n, "bench:password'1").await.expect("role");
            role_times.push(t.elapsed());
            names.push(n);
        }
        let creds = Credentials { user: names[0].clone(), password: "bench:password'1".into() };
        let mut login_times = Vec::new();
        for _ in 0..LOGINS {
            let t = Instant::now();
            assert!(server.login(&server.endpoint, &creds).await.ok());
            login_times.push(t.elapsed());
        }
        for n in &names {
            server.drop_role(n).await.expect("drop");
        }
        let t = Instant::now();
        drop(server);
        let stop = t.elapsed();
        println!(
            "{name:<16} {:>10} {:>14} {:>14} {:>10}",
            ms(start),
            ms(median(role_times)),
            ms(median(login_times)),
            ms(stop)
        );
    }
    println!("(medians of {ROLES} fresh roles and {LOGINS} logins; start includes waiting for the first admin login)");
}
