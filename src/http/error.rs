//! The one mapping from errors to HTTP statuses. Clients get a short reason; the log gets the detail.

use crate::store;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An error a handler answers with.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request is malformed (missing or invalid parameters).
    #[error("{0}")]
    BadRequest(String),
    /// The signature is missing or wrong.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The number or resource is not configured here.
    #[error("{0}")]
    NotFound(String),
    /// Webhooks must be form-encoded.
    #[error("expected Content-Type application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    /// The data could not be committed; the provider should retry.
    #[error("temporarily unavailable, please retry")]
    Unavailable(#[source] store::Error),
}

impl From<store::Error> for HttpError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound => Self::NotFound("not found".into()),
            other => Self::Unavailable(other),
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unavailable(cause) = self {
            tracing::error!(error = %cause, "request failed");
        }
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}
