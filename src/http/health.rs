//! `/healthz`: 200 while the database answers and takes writes and the scheduler loop runs, 503 otherwise;
//! with the version and the database's schema version.

use super::AppState;
use actix_web::{web, HttpResponse};

/// `GET /healthz`
pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let (database, schema) = web::block(move || (store.healthy(), store.schema_version().ok()))
        .await
        .unwrap_or((false, None));
    let scheduler = state.scheduler.alive(state.clock.now());
    let body = serde_json::json!({
        "status": if database && scheduler { "ok" } else { "unhealthy" },
        "database": database,
        "scheduler": scheduler,
        "version": env!("CARGO_PKG_VERSION"),
        "schema": schema,
    });
    if database && scheduler {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
