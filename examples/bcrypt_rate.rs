//! How many bcrypt verifications per second this machine allows: one thread per CPU, each
//! verifying for a few seconds at the given cost (default 12). The login benchmark compares
//! the platform's login throughput against this ceiling.
//!
//! `cargo run --release --example bcrypt_rate -- [cost] [seconds]`

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let cost: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(12);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let hash = bcrypt::hash("correct horse battery staple", cost).expect("bcrypt hash");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let hash = hash.clone();
                s.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        assert!(
                            bcrypt::verify("correct horse battery staple", &hash).unwrap_or(false)
                        );
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("bcrypt cost {cost}: {rate:.2} verifications/s on {threads} threads");
}
