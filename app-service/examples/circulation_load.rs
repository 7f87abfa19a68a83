//! Load generator for `scripts/bench-library.sh`: `concurrency` workers, each a reader of its
//! own, borrow a copy of a title and return it, over and over, for `seconds`; then the
//! p50/p99 latency of each step, the pairs per second and the CPU the whole machine spent per
//! pair.
//!
//! Three paths to the same transaction, so that each hop's share shows:
//!
//! ```text
//! http    <base-url>                    client → gateway → app-service → RabbitMQ → book-service → DB
//! bus     <amqp-url> <secret> <prefix>  circulation client → RabbitMQ → book-service → DB
//! handler <database-url> <schema>       book-service's command handler in this process → DB
//! echo    <amqp-url> <secret> <prefix>  circulation client → RabbitMQ → a consumer in this
//!                                       process that answers at once, applying nothing
//! ```
//!
//! `echo` is the broker's own round trip through the same bus code, with no transaction: the
//! floor of what RabbitMQ adds to a command on this machine. Give it a prefix of its own.
//!
//! Usage: `circulation_load <path> <args…> <concurrency> <seconds> <book_ids>`: `book_ids` is one
//! title's id or several, comma-separated; worker `n` borrows the `n`-th (round the list). The `http` path
//! registers and logs in its readers (`loadN`, through the same base URL) first; the other two
//! act as made-up readers (ids from 1 000 000), as book-service trusts the command's signer.

use std::time::{Duration, Instant};

use book_service::apply::CommandHandler;
use book_service::clock::SharedClock;
use book_service::outbox::Bell;
use book_service::rules::Rules;
use circulation::{Bus, BusConfig, Command, CommandKind, Handler, HandlerError, Outcome};
use common::auth::Role;
use common::shutdown::shutdown_channel;
use serde_json::{json, Value};
use service_kit::db::DbConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a command may wait for its reply here (the platform's default).
const WAIT: Duration = Duration::from_secs(5);

/// One way to borrow and return.
#[derive(Clone)]
enum Path {
    Http { base: String, http: reqwest::Client },
    Bus(circulation::Client),
    Handler(CommandHandler),
}

/// One worker's identity on its path.
enum Who {
    Token(String),
    User(i64),
}

impl Path {
    /// Borrows `book_id`; the loan's id.
    async fn borrow(&self, who: &Who, book_id: i64) -> Result<i64, BoxError> {
        let body = match (self, who) {
            (Path::Http { base, http }, Who::Token(token)) => {
                let resp = http
                    .post(format!("{base}/loans/"))
                    .bearer_auth(token)
                    .json(&json!({"book_id": book_id}))
                    .send()
                    .await?;
                expect(resp.status().as_u16(), 201, resp.json().await?)?
            }
            (_, Who::User(id)) => {
                self.command(*id, CommandKind::Borrow { book_id }, 201)
                    .await?
            }
            _ => unreachable!("an HTTP worker has a token"),
        };
        body["id"]
            .as_i64()
            .ok_or_else(|| "a loan without an id".into())
    }

    /// Returns `loan_id`.
    async fn give_back(&self, who: &Who, loan_id: i64) -> Result<(), BoxError> {
        match (self, who) {
            (Path::Http { base, http }, Who::Token(token)) => {
                let resp = http
                    .post(format!("{base}/loans/{loan_id}/return"))
                    .bearer_auth(token)
                    .send()
                    .await?;
                expect(resp.status().as_u16(), 200, resp.json().await?)?;
            }
            (_, Who::User(id)) => {
                self.command(*id, CommandKind::Return { loan_id }, 200)
                    .await?;
            }
            _ => unreachable!("an HTTP worker has a token"),
        }
        Ok(())
    }

    async fn command(&self, user: i64, kind: CommandKind, want: u16) -> Result<Value, BoxError> {
        let command = Command::new(kind, user, Role::User, None, WAIT);
        let outcome = match self {
            Path::Bus(client) => client.request(command).await?.outcome,
            Path::Handler(handler) => handler
                .handle(command)
                .await
                .map_err(|e| format!("handler: {e}"))?,
            Path::Http { .. } => unreachable!("HTTP workers send no commands"),
        };
        match outcome {
            Outcome::Done { status, body } => expect(status, want, body),
            refused => Err(format!("refused: {}", refused.body()).into()),
        }
    }
}

/// Answers every command at once and applies nothing: a loan id for a borrow, 200 for the rest.
struct Echo;

impl Handler for Echo {
    async fn handle(&self, command: Command) -> Result<Outcome, HandlerError> {
        Ok(match command.kind {
            CommandKind::Borrow { .. } => Outcome::done(201, &json!({"id": 1})),
            _ => Outcome::done(200, &json!({})),
        })
    }
}

fn expect(status: u16, want: u16, body: Value) -> Result<Value, BoxError> {
    if status == want {
        Ok(body)
    } else {
        Err(format!("{status}: {body}").into())
    }
}

/// Registers and logs in `loadN` at `base`; its token.
async fn reader_token(http: &reqwest::Client, base: &str, n: usize) -> Result<String, BoxError> {
    let name = format!("load{n}");
    let password = "load-password-123";
    let resp = http
        .post(format!("{base}/auth/register/"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
        .send()
        .await?;
    if !matches!(resp.status().as_u16(), 201 | 409) {
        return Err(format!("register {name}: {}", resp.text().await?).into());
    }
    let login: Value = http
        .post(format!("{base}/auth/login/"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("login {name}: {login}").into())
}

/// What one worker measured.
#[derive(Default)]
struct Timings {
    borrow: Vec<Duration>,
    give_back: Vec<Duration>,
    pair: Vec<Duration>,
    errors: usize,
}

async fn worker(path: Path, who: Who, book_id: i64, until: Instant) -> Timings {
    let mut t = Timings::default();
    while Instant::now() < until {
        let started = Instant::now();
        let loan = match path.borrow(&who, book_id).await {
            Ok(loan) => loan,
            Err(e) => {
                t.errors += 1;
                eprintln!("borrow: {e}");
                continue;
            }
        };
        let borrowed = started.elapsed();
        // Always give the copy back, even past the end, so the next run starts clean.
        let back = Instant::now();
        match path.give_back(&who, loan).await {
            Ok(()) => {
                t.borrow.push(borrowed);
                t.give_back.push(back.elapsed());
                t.pair.push(started.elapsed());
            }
            Err(e) => {
                t.errors += 1;
                eprintln!("return: {e}");
            }
        }
    }
    t
}

/// The machine's CPU time counters (`/proc/stat`, all cores), to tell the CPU everything on
/// the machine spent during the run: the platform, its databases and broker, this generator.
struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    /// `None` where there is no `/proc/stat`.
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // user nice system idle iowait irq softirq steal …
        let tick = |i: usize| ticks.get(i).copied().unwrap_or(0);
        Some(Self {
            busy: [0, 1, 2, 5, 6].into_iter().map(tick).sum(),
            total: (0..8).map(tick).sum(),
        })
    }

    /// CPU-seconds spent busy since `before`, over `elapsed` seconds of wall time.
    fn busy_seconds_since(&self, before: &Self, elapsed: f64) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        self.busy.saturating_sub(before.busy) as f64 / total * cores * elapsed
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

fn summary(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    format!(
        "{name} p50={:.2}ms p99={:.2}ms",
        percentile(&samples, 50.0),
        percentile(&samples, 99.0)
    )
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: circulation_load (http <base-url> | bus <amqp-url> <secret> <prefix> | \
                 handler <database-url> <schema> | echo <amqp-url> <secret> <prefix>) \
                 <concurrency> <seconds> <book_id>[,<book_id>…]";
    // Keeps the echo consumer running until the end of `main`.
    let (_stop_echo, echo_shutdown) = shutdown_channel();
    let (path, rest) = match args.first().map(String::as_str) {
        Some("http") if args.len() == 5 => {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()?;
            (
                Path::Http {
                    base: args[1].trim_end_matches('/').to_owned(),
                    http,
                },
                &args[2..],
            )
        }
        Some("bus") if args.len() == 7 => {
            let mut config = BusConfig::amqp(&args[1], &args[2], &args[3]);
            config.wait = WAIT;
            let bus = Bus::open(config).await?;
            (Path::Bus(bus.client().await), &args[4..])
        }
        Some("echo") if args.len() == 7 => {
            let mut config = BusConfig::amqp(&args[1], &args[2], &args[3]);
            config.wait = WAIT;
            let bus = Bus::open(config).await?;
            tokio::spawn(bus.consumer().run(Echo, echo_shutdown));
            (Path::Bus(bus.client().await), &args[4..])
        }
        Some("handler") if args.len() == 6 => {
            let db =
                book_service::startup::open_database(&DbConfig::postgres(&args[1], Some(&args[2])))
                    .await?;
            let handler = CommandHandler::new(
                db,
                SharedClock::default(),
                Rules::default(),
                Bell::default(),
            );
            (Path::Handler(handler), &args[3..])
        }
        _ => return Err(usage.into()),
    };
    let concurrency: usize = rest[0].parse()?;
    let seconds: u64 = rest[1].parse()?;
    let book_ids: Vec<i64> = rest[2]
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;

    let mut whos = Vec::with_capacity(concurrency);
    for n in 0..concurrency {
        whos.push(match &path {
            Path::Http { base, http } => Who::Token(reader_token(http, base, n).await?),
            _ => Who::User(1_000_000 + n as i64),
        });
    }
    let cpu_before = MachineCpu::read();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = whos
        .into_iter()
        .enumerate()
        .map(|(n, who)| {
            let book_id = book_ids[n % book_ids.len()];
            tokio::spawn(worker(path.clone(), who, book_id, until))
        })
        .collect();
    let mut all = Timings::default();
    for task in tasks {
        let t = task.await?;
        all.borrow.extend(t.borrow);
        all.give_back.extend(t.give_back);
        all.pair.extend(t.pair);
        all.errors += t.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let machine_ms_per_pair = match (cpu_before, MachineCpu::read()) {
        (Some(before), Some(after)) if !all.pair.is_empty() => format!(
            "{:.2}",
            after.busy_seconds_since(&before, elapsed) * 1e3 / all.pair.len() as f64
        ),
        _ => "n/a".to_owned(),
    };
    println!(
        "pairs={} pairs/s={:.1} errors={} {} {} {} machine_ms_per_pair={machine_ms_per_pair}",
        all.pair.len(),
        all.pair.len() as f64 / elapsed,
        all.errors,
        summary("borrow", all.borrow),
        summary("return", all.give_back),
        summary("pair", all.pair),
    );
    Ok(())
}
