//! What the HTTP handlers share: the application, plus what only HTTP needs (the
//! Prometheus handle and the login rate limiters).

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use morningai_app::Application;
use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

pub struct Inner {
    pub app: Arc<Application>,
    pub login_by_ip: DefaultKeyedRateLimiter<String>,
    /// Keyed by email and client: a stranger's failures do not lock the owner out.
    pub login_by_email: DefaultKeyedRateLimiter<String>,
    /// Keyed by email alone, for clients without the account's known-client cookie.
    pub login_by_account: DefaultKeyedRateLimiter<String>,
    pub signup_by_ip: DefaultKeyedRateLimiter<String>,
    pub metrics: PrometheusHandle,
    /// Cancelled when the server starts shutting down: open event streams end, so the
    /// graceful shutdown does not wait for clients that never leave.
    pub closing: tokio_util::sync::CancellationToken,
}

/// The handlers' state: derefs to the [`Application`].
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Deref for Inner {
    type Target = Application;
    fn deref(&self) -> &Application {
        &self.app
    }
}

/// The process-wide Prometheus recorder (a process has one global recorder).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

fn limiter(per_minute: u32) -> DefaultKeyedRateLimiter<String> {
    RateLimiter::keyed(Quota::per_minute(
        NonZeroU32::new(per_minute.max(1)).expect("max(1) is non-zero"),
    ))
}

fn hourly(per_hour: u32) -> DefaultKeyedRateLimiter<String> {
    RateLimiter::keyed(Quota::per_hour(
        NonZeroU32::new(per_hour.max(1)).expect("max(1) is non-zero"),
    ))
}

impl AppState {
    pub fn new(app: Arc<Application>) -> Self {
        Self(Arc::new(Inner {
            login_by_ip: limiter(app.config.login_per_minute_per_ip),
            login_by_email: limiter(app.config.login_per_minute_per_email),
            login_by_account: hourly(app.config.login_per_hour_per_account),
            signup_by_ip: hourly(app.config.signup_per_hour_per_ip),
            metrics: metrics_handle(),
            closing: tokio_util::sync::CancellationToken::new(),
            app,
        }))
    }
}
