//! Replays `core_input` inputs with a trace of every operation, what the gateway
//! sent, and the leak check at the end.
//!
//! Usage (from fuzz/): `cargo run --example replay -- FILE...` (add `-v` for whole messages).

use hotline_gateway_fuzz::{Harness, PEERS, split};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let mut failed = false;
    for path in args.iter().filter(|a| *a != "-v") {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        println!("== {path} ({} bytes)", data.len());
        let show = |b: &[u8]| {
            let text = String::from_utf8_lossy(b);
            if verbose {
                text.replace("\r\n", "\n    | ")
            } else {
                text.lines().next().unwrap_or_default().to_string()
            }
        };
        let mut h = Harness::new();
        for chunk in split(&data) {
            let Some(&b) = chunk.first() else {
                println!("  (empty operation)");
                continue;
            };
            let out = h.apply(chunk);
            let peer = PEERS[usize::from(b >> 2) & 3];
            match b & 3 {
                0 => println!("  udp from {peer}: {}", show(&chunk[1..])),
                1 => println!("  tcp from {peer}: {}", show(&chunk[1..])),
                2 => println!("  advance, now +{:?}", h.now - h.start),
                _ => println!("  fire next deadlines, now +{:?}", h.now - h.start),
            }
            for t in out {
                println!("    -> {}: {}", t.peer, show(&t.bytes));
            }
        }
        match h.finish() {
            Ok(()) => println!("  OK: no transaction or call left"),
            Err(e) => {
                failed = true;
                println!("  FAIL: {e}");
            }
        }
    }
    std::process::exit(i32::from(failed));
}
