//! Starts the real engines emrest's tests use, for a person: `emrest-engines garage` starts a
//! single-node Garage on loopback, prints what a shell needs to reach it, and keeps it running
//! until Ctrl-C; `emrest-engines garage --check` starts it, says how long that took, and stops.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    match args.first().map(String::as_str) {
        Some("garage") => {}
        _ => {
            eprintln!("usage: emrest-engines garage [--check]");
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
