//! `GET /metrics`: Prometheus text format, for a bearer token or an allow-listed address (`[metrics]`); 404
//! while neither is configured, so nothing about the appliance is public by default.

use super::{read, AppState, HttpError};
use actix_web::{web, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

fn allowed(state: &AppState, req: &HttpRequest) -> Result<bool, HttpError> {
    let config = state.config.get();
    let m = &config.metrics;
    if !m.enabled() {
        return Err(HttpError::NotFound("metrics are off: see [metrics]".into()));
    }
    if let (Some(token), Some(given)) = (
        &m.token,
        req.headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ")),
    ) {
        if bool::from(token.expose().as_bytes().ct_eq(given.trim().as_bytes())) {
            return Ok(true);
        }
    }
    Ok(super::client_ip(req, &config)
        .is_some_and(|client| m.allow.iter().any(|c| c.contains(client))))
}

fn gauge(
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(String, String)>, f64)>,
) -> crate::metrics::Gauge {
    crate::metrics::Gauge {
        name,
        help,
        samples,
    }
}

/// `GET /metrics`
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, HttpError> {
    if !allowed(&state, &req)? {
        return Ok(HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer"))
            .body("a bearer token or an allowed address is required\n"));
    }
    let counts = read(&state, crate::store::reports::operational).await?;
    let label = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    #[allow(clippy::cast_precision_loss)]
    let as_f = |n: i64| n as f64;
    let (rss, fds) = crate::metrics::process();
    let now = state.clock.now();
    let mut gauges = vec![
        gauge(
            "textback_build_info",
            "The running version and the database schema it writes.",
            vec![(
                vec![
                    ("version".into(), env!("CARGO_PKG_VERSION").into()),
                    (
                        "schema".into(),
                        crate::store::migrations::known().to_string(),
                    ),
                ],
                1.0,
            )],
        ),
        gauge(
            "textback_jobs_pending",
            "Jobs waiting in the queue, by kind.",
            counts
                .pending
                .iter()
                .map(|(k, n)| (label("kind", k), as_f(*n)))
                .collect(),
        ),
        gauge(
            "textback_texts",
            "Texts to contacts in the database, by state (sent, delivered, failed, ...).",
            counts
                .texts
                .iter()
                .map(|(k, n)| (label("status", k), as_f(*n)))
                .collect(),
        ),
        gauge(
            "textback_calls_not_texted",
            "Missed calls that got no text-back, by reason.",
            counts
                .suppressed
                .iter()
                .map(|(k, n)| (label("reason", k), as_f(*n)))
                .collect(),
        ),
        gauge(
            "textback_event_endpoints_failing",
            "Outbound event endpoints that are paused or failing.",
            vec![(vec![], as_f(counts.failing_endpoints))],
        ),
        gauge(
            "textback_last_webhook_timestamp_seconds",
            "When the last provider webhook was recorded (a call or a text in).",
            vec![(vec![], as_f(counts.last_webhook / 1000))],
        ),
        gauge(
            "textback_scheduler_up",
            "1 while the scheduler loop runs.",
            vec![(vec![], if state.scheduler.alive(now) { 1.0 } else { 0.0 })],
        ),
    ];
    if let Some(rss) = rss {
        gauges.push(gauge(
            "process_resident_memory_bytes",
            "Resident memory.",
            vec![(vec![], rss)],
        ));
    }
    if let Some(fds) = fds {
        gauges.push(gauge(
            "process_open_fds",
            "Open file descriptors, connections included.",
            vec![(vec![], fds)],
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&gauges)))
}
