//! Alert webhooks for chat tools: one POST per alert, shaped for the configured format (our JSON, Slack-style
//! `{"text": …}`, or ntfy's plain body with Title and Priority headers). Synchronous (ureq).

use crate::config::WebhookFormat;
use crate::outbox::Post;
use crate::providers::SendError;
use std::time::Duration;

/// Posts an alert; 4xx answers are final, network errors, 5xx and 429 are worth retrying.
pub fn post(agent: &ureq::Agent, p: &Post) -> Result<(), SendError> {
    let req = agent.post(&p.url);
    let result = match p.format {
        WebhookFormat::Json => req.send_json(serde_json::json!({
            "text": p.text,
            "business": p.business,
            "from": p.phone,
            "body": p.body,
            "urgent": p.urgent,
            "link": p.link,
        })),
        WebhookFormat::Slack => req.send_json(serde_json::json!({ "text": p.text })),
        WebhookFormat::Ntfy => req
            .set("Title", &format!("textback: {}", p.business))
            .set("Priority", if p.urgent { "urgent" } else { "default" })
            .set(
                "Tags",
                if p.urgent {
                    "rotating_light"
                } else {
                    "speech_balloon"
                },
            )
            .set("Click", &p.link)
            .set("Content-Type", "text/plain; charset=utf-8")
            .send_string(&p.text),
    };
    match result {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, resp)) if code == 429 || code >= 500 => {
            Err(SendError::Retryable {
                message: format!("the alert webhook answered HTTP {code}"),
                retry_after: resp
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse().ok())
                    .map(Duration::from_secs),
            })
        }
        Err(ureq::Error::Status(code, _)) => Err(SendError::Rejected {
            failure: crate::model::Failure {
                reason: crate::model::FailReason::Other,
                code: Some(code.to_string()),
            },
            message: format!("the alert webhook answered HTTP {code}"),
        }),
        Err(ureq::Error::Transport(t)) => Err(SendError::Retryable {
            message: format!("the alert webhook could not be reached: {}", t.kind()),
            retry_after: None,
        }),
    }
}
