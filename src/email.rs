//! Email through the operator's SMTP server (lettre, rustls): staff alerts and daily digests. Emails are
//! jobs in the durable queue like texts. The exchange is driven step by step so a failure is placed exactly:
//! anything that fails before the message body was handed over is safe to retry; a connection lost while the
//! server was taking the body leaves the outcome unclear, and that email is reported, not sent again.
//! Depends on config.

use crate::config::{EmailConfig, EmailTls};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;

/// One email, as queued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Email {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, when there is one.
    pub html: Option<String>,
    /// Fixed when the email is queued, so a copy that does arrive twice is recognisably the same mail.
    pub message_id: String,
}

impl Email {
    /// An email with a fresh Message-ID.
    pub fn new(to: &str, subject: &str, text: String, html: Option<String>) -> Self {
        let mut bytes = [0u8; 12];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            to: to.trim().to_string(),
            subject: subject.to_string(),
            text,
            html,
            message_id: format!("<{id}@textback.invalid>"),
        }
    }
}

/// How sending ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The server took it (its answer).
    Accepted(String),
    /// Not sent, and worth another try (the server could not be reached, or answered 4xx).
    Retry(String),
    /// Refused for good (a 5xx, a bad address).
    Rejected(String),
    /// The connection broke while the server was taking the message: it may have gone. Not resent.
    Unclear(String),
}

fn build(cfg: &EmailConfig, email: &Email) -> Result<lettre::Message, String> {
    let from: Mailbox = cfg
        .from
        .trim()
        .parse()
        .map_err(|_| format!("[email] from {:?} is not a sender", cfg.from))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|_| format!("{:?} is not an email address", email.to))?;
    let builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()))
        .date_now();
    let built = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.clone()),
        ),
    };
    built.map_err(|e| format!("the email cannot be written: {e}"))
}

/// A failure before the message was handed over: the server's 5xx is final, anything else is retried.
fn before_data(what: &str, e: &lettre::transport::smtp::Error) -> Sent {
    let message = format!("{what}: {e}");
    if e.is_permanent() {
        Sent::Rejected(message)
    } else {
        Sent::Retry(message)
    }
}

fn connect(cfg: &EmailConfig) -> Result<SmtpConnection, Sent> {
    let host = cfg.host.trim();
    let hello = ClientId::default();
    let tls = || {
        TlsParameters::new(host.to_string())
            .map_err(|e| Sent::Rejected(format!("TLS for {host} cannot be set up: {e}")))
    };
    let timeout = Some(cfg.timeout.0);
    let addr = (host, cfg.port());
    let mut conn = match cfg.tls {
        EmailTls::Implicit => SmtpConnection::connect(addr, timeout, &hello, Some(&tls()?), None),
        EmailTls::Starttls | EmailTls::None => {
            SmtpConnection::connect(addr, timeout, &hello, None, None)
        }
    }
    .map_err(|e| before_data(&format!("cannot connect to {host}:{}", cfg.port()), &e))?;
    if cfg.tls == EmailTls::Starttls {
        if !conn.can_starttls() {
            conn.abort();
            return Err(Sent::Rejected(format!(
                "{host} does not offer STARTTLS: nothing was sent (use tls = \"implicit\" if it takes TLS on port 465)"
            )));
        }
        conn.starttls(&tls()?, &hello)
            .map_err(|e| before_data("STARTTLS failed", &e))?;
    }
    if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
        conn.auth(
            &[Mechanism::Plain, Mechanism::Login],
            &Credentials::new(user.clone(), password.expose().to_string()),
        )
        .map_err(|e| before_data("the server refused the sign-in", &e))?;
    }
    Ok(conn)
}

/// Sends one email.
pub fn send(cfg: &EmailConfig, email: &Email) -> Sent {
    let message = match build(cfg, email) {
        Ok(m) => m,
        Err(why) => return Sent::Rejected(why),
    };
    let mut conn = match connect(cfg) {
        Ok(c) => c,
        Err(sent) => return sent,
    };
    let envelope = message.envelope();
    let handed_over = conn
        .command(Mail::new(envelope.from().cloned(), vec![]))
        .map_err(|e| before_data("the server refused the sender", &e))
        .and_then(|_| {
            envelope.to().iter().try_for_each(|to| {
                conn.command(Rcpt::new(to.clone(), vec![]))
                    .map(|_| ())
                    .map_err(|e| before_data("the server refused the recipient", &e))
            })
        })
        .and_then(|()| {
            conn.command(Data)
                .map_err(|e| before_data("the server refused the message", &e))
        });
    if let Err(sent) = handed_over {
        conn.abort();
        return sent;
    }
    let outcome = match conn.message(&message.formatted()) {
        Ok(resp) => Sent::Accepted(resp.message().collect::<Vec<_>>().join(" ")),
        Err(e) if e.is_transient() => Sent::Retry(format!("the server deferred the message: {e}")),
        Err(e) if e.is_permanent() => Sent::Rejected(format!("the server refused the message: {e}")),
        Err(e) => Sent::Unclear(format!(
            "the connection broke while the server was taking the message ({e}); it may have been sent, so it is not sent again"
        )),
    };
    let _ = conn.quit();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: Some(1),
            tls: EmailTls::None,
            user: None,
            password: None,
            from: "Acme alerts <alerts@example.com>".into(),
            allow_plaintext: true,
            timeout: crate::config::Dur(std::time::Duration::from_secs(1)),
            retry_backoff: crate::config::Dur(std::time::Duration::from_secs(1)),
        }
    }

    #[test]
    fn a_message_has_both_parts_and_its_fixed_message_id() {
        let email = Email::new(
            "owner@example.com",
            "Daily digest: Acme",
            "3 missed calls".into(),
            Some("<p>3 missed calls</p>".into()),
        );
        let text = String::from_utf8(build(&config(), &email).unwrap().formatted()).unwrap();
        assert!(
            text.contains(&format!("Message-ID: {}", email.message_id)),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("text/plain") && text.contains("text/html"),
            "{text}"
        );
        assert!(text.contains("To: owner@example.com"), "{text}");
    }

    #[test]
    fn an_unreachable_server_is_retried_and_a_bad_address_is_not() {
        let email = Email::new("owner@example.com", "s", "t".into(), None);
        assert!(matches!(send(&config(), &email), Sent::Retry(_)));
        let bad = Email::new("not an address", "s", "t".into(), None);
        assert!(matches!(send(&config(), &bad), Sent::Rejected(_)));
    }
}
