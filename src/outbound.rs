//! Signed outbound events for the rest of the business (CRMs, Zapier, Make, n8n): the event types, the JSON
//! document every endpoint receives (schema version 1), and one delivery attempt over HTTP, signed like
//! Stripe's webhooks: `Textback-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
//!
//! Events are recorded and their deliveries queued in the transaction of the change they report (see
//! `events::emit`); the scheduler delivers them. Depends on model, clock and bookings (the signature).

use crate::clock::Millis;
use std::time::Duration;

/// The schema version of the event document; a change that could break a receiver raises it.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call to the business went unanswered.
    CallMissed,
    /// A text to a contact went to the provider.
    TextSent,
    /// The carrier delivered it.
    TextDelivered,
    /// It failed for good.
    TextFailed,
    /// An automatic text was not sent, by a rule (opted out, answered, quiet hours…).
    TextSuppressed,
    /// The contact texted.
    ReplyReceived,
    /// The contact opted out (STOP).
    ContactOptedOut,
    /// The contact opted back in (START).
    ContactOptedIn,
    /// The conversation became a booking.
    ConversationBooked,
    /// A booking was cancelled: the conversation no longer counts as booked.
    ConversationUnbooked,
    /// Staff marked the conversation lost.
    ConversationLost,
    /// A keyword marked the conversation urgent.
    ConversationUrgent,
    /// A test an owner sent from the admin page.
    Test,
}

impl Kind {
    /// Every type an endpoint can subscribe to.
    pub const ALL: [Kind; 13] = [
        Kind::CallMissed,
        Kind::TextSent,
        Kind::TextDelivered,
        Kind::TextFailed,
        Kind::TextSuppressed,
        Kind::ReplyReceived,
        Kind::ContactOptedOut,
        Kind::ContactOptedIn,
        Kind::ConversationBooked,
        Kind::ConversationUnbooked,
        Kind::ConversationLost,
        Kind::ConversationUrgent,
        Kind::Test,
    ];

    /// The type's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallMissed => "call.missed",
            Self::TextSent => "text.sent",
            Self::TextDelivered => "text.delivered",
            Self::TextFailed => "text.failed",
            Self::TextSuppressed => "text.suppressed",
            Self::ReplyReceived => "reply.received",
            Self::ContactOptedOut => "contact.opted_out",
            Self::ContactOptedIn => "contact.opted_in",
            Self::ConversationBooked => "conversation.booked",
            Self::ConversationUnbooked => "conversation.unbooked",
            Self::ConversationLost => "conversation.lost",
            Self::ConversationUrgent => "conversation.urgent",
            Self::Test => "test",
        }
    }
}

/// The contact an event is about, as receivers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The contact's row id (stable; receivers may key on it with the business).
    pub id: i64,
    /// E.164.
    pub phone: String,
    /// The name staff gave them.
    pub name: Option<String>,
}

/// A new event's public id: `evt_` and 128 random bits, so receivers can deduplicate on it.
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("evt_{hex}")
}

/// The document every endpoint receives.
pub fn document(
    uid: &str,
    kind: Kind,
    at: Millis,
    business: (&str, &str),
    contact: Option<&Subject>,
    data: serde_json::Value,
) -> String {
    let contact = contact.map(|s| {
        serde_json::json!({
            "id": s.id,
            "phone": s.phone,
            "name": s.name,
        })
    });
    serde_json::json!({
        "id": uid,
        "type": kind.as_str(),
        "version": SCHEMA_VERSION,
        "created_at": crate::clock::format_rfc3339(at),
        "business": { "id": business.0, "name": business.1 },
        "contact": contact,
        "data": data,
    })
    .to_string()
}

/// One delivery attempt, ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The job.
    pub job_id: i64,
    /// Its attempt number.
    pub attempt: u32,
    /// The delivery's row.
    pub delivery_id: i64,
    /// The business whose endpoint it is.
    pub business_id: String,
    /// The endpoint.
    pub url: String,
    /// The signing key.
    pub secret: crate::config::Secret,
    /// The event's id and type (also sent as headers, for receivers that route before parsing).
    pub event_uid: String,
    /// The event's type.
    pub event_type: String,
    /// The JSON document.
    pub body: String,
    /// When the event happened: retries stop 24 hours after it.
    pub created_at: Millis,
    /// The first retry's wait.
    pub backoff: Millis,
}

/// How long an event is retried.
pub const RETRY_FOR_MS: Millis = 24 * 3_600_000;

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// A 2xx.
    Delivered(u16),
    /// Worth another try (network error, timeout, 5xx, 429, 408), no sooner than `retry_after`.
    Retry {
        /// The HTTP status, if one came back.
        code: Option<u16>,
        /// What went wrong.
        message: String,
        /// The receiver's Retry-After.
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the receiver wants no more; the endpoint is paused.
    Gone,
    /// Refused for good (another 4xx, or a redirect: endpoints must be given as their final URL).
    Refused {
        /// The HTTP status.
        code: u16,
        /// What it means.
        message: String,
    },
}

/// POSTs one event, signed at `now_secs`.
pub fn post(agent: &ureq::Agent, d: &Delivery, now_secs: i64) -> Posted {
    let signature = crate::bookings::signature_header(
        d.secret.expose().as_bytes(),
        now_secs,
        d.body.as_bytes(),
    );
    let result = agent
        .post(&d.url)
        .set("Content-Type", "application/json")
        .set(
            "User-Agent",
            concat!("textback/", env!("CARGO_PKG_VERSION")),
        )
        .set(crate::bookings::SIGNATURE_HEADER, &signature)
        .set("Textback-Event-Id", &d.event_uid)
        .set("Textback-Event-Type", &d.event_type)
        .send_string(&d.body);
    match result {
        Ok(resp) => classify(resp.status(), None),
        Err(ureq::Error::Status(code, resp)) => {
            let retry_after = resp
                .header("Retry-After")
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs);
            classify(code, retry_after)
        }
        Err(ureq::Error::Transport(t)) => Posted::Retry {
            code: None,
            message: format!("the endpoint could not be reached: {}", t.kind()),
            retry_after: None,
        },
    }
}

/// What an HTTP status means for a delivery.
pub fn classify(code: u16, retry_after: Option<Duration>) -> Posted {
    match code {
        200..=299 => Posted::Delivered(code),
        410 => Posted::Gone,
        408 | 429 | 500..=599 => Posted::Retry {
            code: Some(code),
            message: format!("the endpoint answered HTTP {code}"),
            retry_after,
        },
        300..=399 => Posted::Refused {
            code,
            message: format!(
                "the endpoint answered HTTP {code}, a redirect: redirects are not followed; configure the URL it points to"
            ),
        },
        _ => Posted::Refused {
            code,
            message: format!("the endpoint answered HTTP {code}"),
        },
    }
}

/// When to try again after a failed attempt, or `None` when retries are over (24 hours after the event).
pub fn next_attempt(
    d: &Delivery,
    retry_after: Option<Duration>,
    jitter: f64,
    now: Millis,
) -> Option<Millis> {
    let after = retry_after.map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX));
    let at = now + crate::policy::retry_delay_ms(d.attempt, d.backoff, after, jitter);
    (at <= d.created_at + RETRY_FOR_MS).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_happens_next() {
        let cases: &[(u16, &str)] = &[
            (200, "delivered"),
            (204, "delivered"),
            (299, "delivered"),
            (301, "refused"),
            (307, "refused"),
            (400, "refused"),
            (401, "refused"),
            (404, "refused"),
            (408, "retry"),
            (410, "gone"),
            (422, "refused"),
            (429, "retry"),
            (500, "retry"),
            (502, "retry"),
            (503, "retry"),
        ];
        for (code, want) in cases {
            let got = match classify(*code, None) {
                Posted::Delivered(_) => "delivered",
                Posted::Retry { .. } => "retry",
                Posted::Gone => "gone",
                Posted::Refused { .. } => "refused",
            };
            assert_eq!(got, *want, "HTTP {code}");
        }
    }

    fn delivery(attempt: u32, created_at: Millis) -> Delivery {
        Delivery {
            job_id: 1,
            attempt,
            delivery_id: 1,
            business_id: "acme".into(),
            url: "https://example.com/hook".into(),
            secret: crate::config::Secret::literal("0123456789abcdef"),
            event_uid: "evt_1".into(),
            event_type: "text.sent".into(),
            body: "{}".into(),
            created_at,
            backoff: 30_000,
        }
    }

    #[test]
    fn retries_back_off_and_stop_a_day_after_the_event() {
        let hour = 3_600_000;
        // (attempt, event age at this failure, retry after, expected wait or None when retries are over)
        let cases: &[(u32, Millis, Option<u64>, Option<Millis>)] = &[
            (1, 0, None, Some(30_000)),
            (2, 0, None, Some(60_000)),
            (3, 0, None, Some(120_000)),
            (12, 0, None, Some(15 * 60_000)),
            (1, 0, Some(600), Some(600_000)),
            (40, 23 * hour, None, Some(15 * 60_000)),
            (41, 24 * hour - 60_000, None, None),
            (2, 24 * hour, None, None),
        ];
        let now = 1_800_000_000_000;
        for (attempt, age, retry_after, want) in cases {
            let d = delivery(*attempt, now - age);
            let got = next_attempt(&d, retry_after.map(Duration::from_secs), 0.0, now);
            assert_eq!(
                got.map(|at| at - now),
                *want,
                "attempt {attempt}, age {age}"
            );
        }
    }

    #[test]
    fn the_document_carries_id_type_time_business_contact_and_data() {
        let contact = Subject {
            id: 7,
            phone: "+14805550123".into(),
            name: Some("Dana".into()),
        };
        let doc = document(
            "evt_abc",
            Kind::ReplyReceived,
            1_800_000_000_000,
            ("acme", "Acme HVAC"),
            Some(&contact),
            serde_json::json!({ "body": "yes please" }),
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["id"], "evt_abc");
        assert_eq!(v["type"], "reply.received");
        assert_eq!(v["version"], 1);
        assert_eq!(v["created_at"], "2027-01-15T08:00:00.000Z");
        assert_eq!(v["business"]["id"], "acme");
        assert_eq!(v["business"]["name"], "Acme HVAC");
        assert_eq!(v["contact"]["phone"], "+14805550123");
        assert_eq!(v["contact"]["name"], "Dana");
        assert_eq!(v["data"]["body"], "yes please");
        assert!(new_uid().starts_with("evt_") && new_uid().len() == 36);
        assert_ne!(new_uid(), new_uid());
    }
}
