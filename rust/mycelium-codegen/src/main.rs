//! The `mycelium` command line tool; see `docs/cli.md` for every subcommand.

mod cli;
mod nats_join;

fn main() -> std::process::ExitCode {
    cli::install_panic_hook();
    cli::run()
}
