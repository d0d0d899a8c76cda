//! `/healthz`: 200 while the database answers and the scheduler loop runs, 503 otherwise.

use super::AppState;
use actix_web::{web, HttpResponse};

/// `GET /healthz`
pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    let store = state.store.clone();
    let database = web::block(move || store.healthy()).await.unwrap_or(false);
    let scheduler = state.scheduler.alive(state.clock.now());
    let body = serde_json::json!({
        "status": if database && scheduler { "ok" } else { "unhealthy" },
        "database": database,
        "scheduler": scheduler,
    });
    if database && scheduler {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
