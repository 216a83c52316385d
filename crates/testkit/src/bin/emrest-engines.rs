//! Starts the real engines emrest's tests use, for a person: `emrest-engines garage` starts a
//! single-node Garage on loopback, `emrest-engines postgres` a throwaway PostgreSQL on a Unix
//! socket; each prints what a shell needs to reach it and keeps it running until Ctrl-C.
//! With `--check` it says how long the set-up took, and stops.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    match args.first().map(String::as_str) {
        Some("garage") => {}
        Some("postgres") => return postgres(check),
        _ => {
            eprintln!("usage: emrest-engines garage|postgres [--check]");
            return ExitCode::from(2);
        }
    }
    let Some(g) = emrest_testkit::garage::garage() else {
        eprintln!("emrest-engines: garage is not installed (cargo install garage --locked --version 2.5.0)");
        return ExitCode::FAILURE;
    };
    println!(
        "# Garage on {} (bucket {}, folder {}), set up in {} ms",
        g.endpoint,
        g.bucket,
        g.dir.display(),
        g.setup_time.as_millis()
    );
    if check {
        return ExitCode::SUCCESS;
    }
    for (k, v) in g.env() {
        println!("export {k}={v}");
    }
    println!(
        "export EMREST_REPOSITORY='s3://{}/emrest?endpoint={}&region={}'",
        g.bucket, g.endpoint, g.region
    );
    println!("# running until Ctrl-C");
    loop {
        std::thread::park();
    }
}

fn postgres(check: bool) -> ExitCode {
    let Some(pg) = emrest_testkit::postgres::postgres() else {
        eprintln!("emrest-engines: PostgreSQL is not installed (apt-get install postgresql)");
        return ExitCode::FAILURE;
    };
    println!(
        "# PostgreSQL on socket {}/.s.PGSQL.{}, set up in {} ms",
        pg.socket_dir.display(),
        pg.port,
        pg.setup_time.as_millis()
    );
    if check {
        return ExitCode::SUCCESS;
    }
    println!(
        "# psql -h {} -p {} -U {}",
        pg.socket_dir.display(),
        pg.port,
        pg.user
    );
    println!("export EMREST_PG_URL='{}'", pg.url("postgres"));
    println!("# running until Ctrl-C");
    loop {
        std::thread::park();
    }
}
