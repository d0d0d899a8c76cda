//! Settings, Integrations (owners): each business's outbound event endpoints with their recent deliveries
//! (state, HTTP status, attempts, next retry), a button that sends a test event, and one that resumes an
//! endpoint paused by a 410; the booking hooks' URLs; the emails that failed lately.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::store::outbound;

#[derive(Serialize)]
struct DeliveryLine {
    when: String,
    event_type: String,
    event_uid: String,
    state: String,
    attempts: u32,
    response_code: Option<u16>,
    next: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct EndpointView {
    index: usize,
    url: String,
    events: String,
    health: outbound::Health,
    failing: bool,
    deliveries: Vec<DeliveryLine>,
}

#[derive(Serialize)]
struct BusinessView {
    id: String,
    name: String,
    endpoints: Vec<EndpointView>,
    hooks: Vec<(String, String, bool)>,
    digest: Option<String>,
}

#[derive(Serialize)]
struct IntegrationsPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    businesses: Vec<BusinessView>,
    email: Option<String>,
    failed_emails: Vec<(String, String, String)>,
}

/// `?sent=1` after a test, `?resumed=1` after a resume.
#[derive(Deserialize)]
pub struct IntegrationsQuery {
    #[serde(default)]
    sent: Option<String>,
    #[serde(default)]
    resumed: Option<String>,
}

/// `GET /settings/integrations`
pub async fn integrations(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<IntegrationsQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let config = state.config.get();
    let now = state.clock.now();
    let shown: Vec<BusinessConfig> = visible(&config, &signed.user)
        .into_iter()
        .cloned()
        .collect();
    let public = state.public_url.clone();
    let (businesses, failed) = read(&state, move |c| {
        let mut out = Vec::new();
        for biz in &shown {
            let tz = biz.tz();
            let mut endpoints = Vec::new();
            for (index, w) in biz.webhooks.iter().enumerate() {
                let deliveries = outbound::recent(c, &biz.id, &w.url, 20)?
                    .into_iter()
                    .map(|d| DeliveryLine {
                        when: crate::display::when(d.created_at, now, tz),
                        event_type: d.event_type,
                        event_uid: d.event_uid,
                        state: d.state.clone(),
                        attempts: d.attempts,
                        response_code: d.response_code,
                        next: d
                            .next_at
                            .filter(|_| d.state == "pending")
                            .map(|at| crate::display::when(at, now, tz)),
                        error: d.last_error,
                    })
                    .collect();
                let health = outbound::health(c, &biz.id, &w.url, now - 24 * 3_600_000)?;
                endpoints.push(EndpointView {
                    index,
                    url: w.url.clone(),
                    events: if w.events.is_empty() {
                        "all events".into()
                    } else {
                        w.events.join(", ")
                    },
                    failing: health.failing(),
                    health,
                    deliveries,
                });
            }
            let hooks = [
                ("Cal.com", "calcom", biz.bookings.calcom_secret.is_some()),
                (
                    "Calendly",
                    "calendly",
                    biz.bookings.calendly_signing_key.is_some(),
                ),
                ("Any other tool", "generic", biz.bookings.secret.is_some()),
            ]
            .into_iter()
            .map(|(label, tool, on)| {
                (
                    label.to_string(),
                    format!("{public}/hooks/booking/{tool}/{}", biz.id),
                    on,
                )
            })
            .collect();
            out.push(BusinessView {
                id: biz.id.clone(),
                name: biz.name.clone(),
                endpoints,
                hooks,
                digest: biz.digest.clone(),
            });
        }
        let failed = crate::store::jobs::failed_since(c, "email", now - 7 * 24 * 3_600_000, 20)?
            .into_iter()
            .filter_map(|j| match j.job {
                crate::model::Job::Email(e) => Some((
                    crate::clock::format_utc(j.updated_at),
                    e.to,
                    j.last_error.unwrap_or_default(),
                )),
                _ => None,
            })
            .collect();
        Ok((out, failed))
    })
    .await?;
    let flash = if query.sent.is_some() {
        Some("Test event queued: it shows below within a few seconds.")
    } else if query.resumed.is_some() {
        Some("Endpoint resumed: new events go to it again.")
    } else {
        None
    };
    let ctx = IntegrationsPage {
        chrome: Chrome::signed(&signed, "settings", flash, &config),
        businesses,
        email: config
            .email
            .as_ref()
            .map(|e| format!("{}:{} as {}", e.host, e.port(), e.from)),
        failed_emails: failed,
    };
    Ok(html(&state, StatusCode::OK, "integrations.html", &ctx))
}

/// The form of the endpoint buttons.
#[derive(Deserialize)]
pub struct EndpointForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    business: String,
    #[serde(default)]
    endpoint: usize,
}

fn endpoint_of<'a>(
    config: &'a crate::config::Config,
    signed: &Signed,
    form: &EndpointForm,
) -> Option<(&'a BusinessConfig, &'a crate::config::EventWebhook)> {
    let biz = config
        .business(&form.business)
        .filter(|b| signed.user.can_see(&b.id))?;
    Some((biz, biz.webhooks.get(form.endpoint)?))
}

/// `POST /settings/integrations/{action}`: `test` sends a test event to one endpoint, `resume` resumes a
/// paused one.
pub async fn integrations_act(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<EndpointForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match owner_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let config = state.config.get();
    let Some((biz, endpoint)) = endpoint_of(&config, &signed, &form) else {
        return Ok(error_page(
            &state,
            StatusCode::NOT_FOUND,
            Some(&signed),
            "Not found",
            "There is no such endpoint.",
        ));
    };
    let (biz, url, now) = (biz.clone(), endpoint.url.clone(), state.clock.now());
    let by = signed.user.name.clone();
    match path.as_str() {
        "test" => {
            state
                .store
                .write_async(move |c| {
                    crate::events::emit_to(
                        c,
                        &biz,
                        None,
                        crate::outbound::Kind::Test,
                        serde_json::json!({ "message": "A test event from textback", "sent_by": by }),
                        &[url.as_str()],
                        now,
                    )
                })
                .await?;
            state.scheduler.wake();
            Ok(redirect("/settings/integrations?sent=1"))
        }
        "resume" => {
            state
                .store
                .write_async(move |c| outbound::resume(c, &biz.id, &url))
                .await?;
            tracing::info!(by = %signed.user.name, "event endpoint resumed");
            Ok(redirect("/settings/integrations?resumed=1"))
        }
        _ => Ok(error_page(
            &state,
            StatusCode::NOT_FOUND,
            Some(&signed),
            "Not found",
            "There is no such action.",
        )),
    }
}
