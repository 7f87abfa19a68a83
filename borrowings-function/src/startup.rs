//! Starting the function: on AWS Lambda (the runtime's invocation loop) or behind the local
//! HTTP adapter ([`Application`], also what the one-process platform embeds).
//!
//! The mode follows the environment: Lambda sets `AWS_LAMBDA_RUNTIME_API` in every execution
//! environment, so when it is set the binary polls that Runtime API for events; otherwise it
//! listens on `BORROWINGS_FUNCTION_ADDR`. One binary, one handler, no subcommand to forget.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use common::auth::{Authenticator, Sessions};
use common::bin::BoxError;
use common::config::{var, ConfigError};
use common::kv::Kv;
use common::metrics::Metrics;
use common::shutdown::{shutdown_channel, Shutdown};
use tokio::net::TcpListener;

use crate::books::BookService;
use crate::config::{AdapterConfig, Config};
use crate::state::AppState;
use crate::{handler, local};

/// How long start-up waits for the token issuer's JWKS (EdDSA only).
const JWKS_WAIT: Duration = Duration::from_secs(10);

/// The variables the Lambda runtime requires besides `AWS_LAMBDA_RUNTIME_API` (Lambda sets
/// them all; a hand-made environment may not, and the runtime would panic).
const LAMBDA_VARS: [&str; 3] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Why the function could not start; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What every invocation shares: the token verifier (HMAC, or the issuer's JWKS kept fresh)
/// over the sessions in `kv`, and the book-service client.
pub async fn state(config: &Config, kv: Kv) -> Result<AppState, StartupError> {
    let verifier = common::jwks::verifier(&config.tokens, &config.jwks_url, JWKS_WAIT).await?;
    if config.tokens.secret.is_none() {
        common::jwks::spawn_refresh(
            verifier.clone(),
            config.jwks_url.clone(),
            config.jwks_refresh,
        );
    }
    Ok(AppState {
        auth: Authenticator::new(verifier, Sessions::new(kv)),
        books: BookService::new(&config.books),
    })
}

/// The function behind its local HTTP adapter, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
    drain: Duration,
}

impl Application {
    /// Verifier, client and listener. `kv` is where user-service keeps sessions: Redis, or
    /// in the one-process platform the in-process store every component shares.
    pub async fn build(config: Config, kv: Kv) -> Result<Self, StartupError> {
        let state = state(&config, kv).await?;
        let app = Self::bind(state, &config.server).await?;
        tracing::info!(
            addr = %config.server.listen,
            port = app.port,
            book_service = %config.books.url,
            "borrowings-function ready (local HTTP adapter)"
        );
        Ok(app)
    }

    /// The adapter around `state`, listening on `server.listen`.
    pub async fn bind(state: AppState, server: &AdapterConfig) -> Result<Self, StartupError> {
        let fail = |e: std::io::Error| {
            ConfigError::new(
                "BORROWINGS_FUNCTION_ADDR",
                format!("cannot listen on {}: {e}", server.listen),
            )
        };
        let listener = TcpListener::bind(&server.listen).await.map_err(fail)?;
        let port = listener.local_addr().map_err(fail)?.port();
        Ok(Self {
            listener,
            port,
            router: local::router(state, Metrics::new("borrowings-function")),
            drain: server.drain,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown`, then drains in-flight requests for at most the drain period.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        local::serve(self.listener, self.router, shutdown.wait(), self.drain).await
    }
}

/// Runs the function as the environment says: on AWS Lambda when `AWS_LAMBDA_RUNTIME_API`
/// is set, else behind the local adapter until SIGTERM or Ctrl-C.
pub async fn serve_from_env() -> Result<(), BoxError> {
    let config = Config::from_env()?;
    let kv = session_store().await?;
    if var("AWS_LAMBDA_RUNTIME_API").is_some() {
        if let Some(missing) = LAMBDA_VARS.into_iter().find(|name| var(name).is_none()) {
            return Err(ConfigError::new(missing, "required with AWS_LAMBDA_RUNTIME_API").into());
        }
        let state = state(&config, kv).await?;
        tracing::info!(book_service = %config.books.url, "borrowings-function ready (AWS Lambda)");
        return run_on_lambda(state).await;
    }
    let app = Application::build(config, kv).await?;
    let (trigger, shutdown) = shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

/// The sessions user-service wrote: `REDIS_URL` is required, because a function in its own
/// process (on AWS, or behind the adapter) shares no in-process store with user-service —
/// with an empty one of its own it would refuse every token.
async fn session_store() -> Result<Kv, ConfigError> {
    if var("REDIS_URL").is_none() {
        return Err(ConfigError::new(
            "REDIS_URL",
            "required: the sessions to check tokens against live in Redis",
        ));
    }
    common::kv::from_env().await
}

/// The Lambda runtime's loop: poll the Runtime API for the next event, answer it with
/// [`handler::handle`], post the response; until the execution environment is shut down.
async fn run_on_lambda(state: AppState) -> Result<(), BoxError> {
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handler::handle(&state, req).await) }
    }))
    .await
}
