//! Sample: a Rust service with OCaml code in the same process, sharing one bus.
//!
//! ```text
//! cargo run -p mycelium-embed-ocaml -- [--bench] [--messages N] [--round-trips N]
//! ```
//! Needs the OCaml object built first (`dune build ./embed/embed_ocaml.exe.o` in `ocaml/`).

use mycelium_embed_ocaml::Host;

fn arg_value(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a positive integer")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages = arg_value(&args, "--messages", 100_000)?;
    let rounds = arg_value(&args, "--round-trips", 5_000)?;
    let mut host = Host::start().map_err(|e| e.to_string())?;
    let ex = host.exchange(5).map_err(|e| e.to_string())?;
    println!("OCaml answered {:?}", ex.echoes);
    println!("OCaml published {:?}", ex.texts);
    if args.iter().any(|a| a == "--bench") {
        let f = host.bench(messages, rounds).map_err(|e| e.to_string())?;
        println!("| direction | figure |");
        println!("| --- | --- |");
        println!(
            "| OCaml publish -> Rust subscriber | {:.0} msgs/s ({} msgs) |",
            f.ocaml_to_rust_per_s, f.messages
        );
        println!(
            "| Rust publish -> OCaml callback | {:.0} msgs/s ({} msgs) |",
            f.rust_to_ocaml_per_s, f.messages
        );
        println!(
            "| round trip Rust -> OCaml -> Rust | p50 {:.1} us, p99 {:.1} us, max {:.1} us ({} trips) |",
            f.round_trip_p50.as_secs_f64() * 1e6,
            f.round_trip_p99.as_secs_f64() * 1e6,
            f.round_trip_max.as_secs_f64() * 1e6,
            f.round_trips
        );
        println!(
            "| request/reply Rust -> OCaml service -> Rust | p50 {:.1} us, p99 {:.1} us ({} requests) |",
            f.request_reply_p50.as_secs_f64() * 1e6,
            f.request_reply_p99.as_secs_f64() * 1e6,
            f.round_trips
        );
    }
    let ticks = host.stop().map_err(|e| e.to_string())?;
    println!("OCaml's callback saw {ticks} ticks in total");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
