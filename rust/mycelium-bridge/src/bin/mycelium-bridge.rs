//! `mycelium-bridge`: the same program as `mycelium bridge` (see `docs/bridges.md`), built
//! with the bridge crate so its tests can run it as a separate process.

use clap::Parser;
use mycelium_bridge::cli::{run, BridgeArgs};

#[derive(Parser)]
#[command(
    name = "mycelium-bridge",
    version,
    about = "Connect Mycelium buses over Unix sockets or TCP"
)]
struct Args {
    #[command(flatten)]
    bridge: BridgeArgs,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse().bridge) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
