//! The one mapping from errors to HTTP statuses. Clients get a short reason; the log gets the detail.
//! A refusal (invalid input, a rule, a conflict) is a 4xx, which a provider does not retry; only a store
//! that cannot be used answers 503, so the provider retries a webhook we could not record.

use crate::{events, store};
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
    /// The request is not signed, or not signed with the key configured.
    #[error("{0}")]
    Unauthorized(String),
    /// The number or resource is not configured here.
    #[error("{0}")]
    NotFound(String),
    /// The request is valid but refused: a rule or a conflicting row.
    #[error("{0}")]
    Conflict(String),
    /// The body is in a format the route does not take.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// [`HttpError::UnsupportedMediaType`] with a message made at run time.
    #[error("{0}")]
    UnsupportedMediaTypeOwned(String),
    /// Too many requests of this kind right now.
    #[error("{0}")]
    TooManyRequests(String),
    /// The data could not be committed; the provider should retry.
    #[error("temporarily unavailable, please retry")]
    Unavailable(#[source] store::Error),
}

impl From<store::Error> for HttpError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NotFound => Self::NotFound("not found".into()),
            store::Error::Conflict(why) => Self::Conflict(why),
            other => Self::Unavailable(other),
        }
    }
}

impl From<events::Error> for HttpError {
    fn from(e: events::Error) -> Self {
        match e {
            events::Error::Invalid(why) => Self::BadRequest(why),
            events::Error::Refused(why) => Self::Conflict(why),
            events::Error::Store(e) => e.into(),
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::UnsupportedMediaType(_) | Self::UnsupportedMediaTypeOwned(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unavailable(cause) = self {
            tracing::error!(error = %cause, "request failed");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if let Self::Unavailable(_) = self {
            resp.insert_header(("Retry-After", "5"));
        }
        resp.content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_4xx_and_only_an_unusable_store_is_503() {
        let cases: Vec<(HttpError, u16)> = vec![
            (events::Error::Invalid("bad number".into()).into(), 400),
            (events::Error::Refused("opted out".into()).into(), 409),
            (events::Error::Store(store::Error::NotFound).into(), 404),
            (store::Error::Conflict("name taken".into()).into(), 409),
            (store::Error::NotFound.into(), 404),
            (store::Error::WriterGone.into(), 503),
            (
                store::Error::Commit("database is locked".into()).into(),
                503,
            ),
            (
                events::Error::Store(store::Error::Commit("locked".into())).into(),
                503,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.status_code().as_u16(), want, "{err:?}");
        }
    }
}
