//! Settings: each business's keys, edited in the config file and applied without a restart.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Serialize)]
struct FieldView {
    key: &'static str,
    label: &'static str,
    value: String,
    long: bool,
}

#[derive(Serialize)]
struct DayView {
    key: &'static str,
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct BusinessSettings {
    index: usize,
    id: String,
    name: String,
    numbers: String,
    forward_to: String,
    timezone: String,
    provider: String,
    fields: Vec<FieldView>,
    hours: Vec<DayView>,
    rules: Vec<String>,
}

#[derive(Serialize)]
struct SettingsPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    editable: bool,
    errors: Vec<String>,
    businesses: Vec<BusinessSettings>,
    public_url: &'a str,
}

fn field_value(b: &BusinessConfig, key: &str) -> String {
    let dur = |d: crate::config::Dur| humantime::format_duration(d.0).to_string();
    match key {
        "name" => b.name.clone(),
        "script" => b.script.clone(),
        "after_hours_script" => b.after_hours_script.clone(),
        "returning_script" => b.returning_script.clone().unwrap_or_default(),
        "booking_link" => b.booking_link.clone().unwrap_or_default(),
        "missed_greeting" => b.missed_greeting.clone(),
        "text_delay" => dur(b.text_delay),
        "repeat_window" => dur(b.repeat_window),
        "quiet_hours" => b.quiet_hours.clone(),
        "quiet_hours_policy" => format!("{:?}", b.quiet_hours_policy).to_lowercase(),
        "max_deferral" => dur(b.max_deferral),
        "daily_cap" => b.daily_cap.to_string(),
        "send_rate" => b.send_rate.to_string(),
        "average_ticket" => b.average_ticket.to_string(),
        "sms_price" => b.sms_price.to_string(),
        _ => String::new(),
    }
}

/// The rules the form does not edit, one line each, so the page shows everything the file defines.
fn rules_of(b: &BusinessConfig) -> Vec<String> {
    let on = |x: bool| if x { "on" } else { "off" };
    let mut out = vec![];
    for f in &b.follow_ups {
        out.push(format!(
            "Follow-up after {}: {}",
            humantime::format_duration(f.after.0),
            f.script
        ));
    }
    for k in &b.keywords {
        let mut acts = vec![];
        if k.reply.is_some() {
            acts.push("auto-reply");
        }
        if k.urgent {
            acts.push("urgent");
        }
        if k.alert {
            acts.push("alert");
        }
        out.push(format!(
            "Keyword {} → {}",
            k.words.join(", "),
            acts.join(", ")
        ));
    }
    for p in &b.notify {
        out.push(format!(
            "Alerts to {} {}{}{}",
            p.name,
            p.sms.as_deref().unwrap_or("(no SMS)"),
            p.quiet_hours
                .as_deref()
                .map(|q| format!(", quiet {q}"))
                .unwrap_or_default(),
            if p.on_call { ", on call" } else { "" }
        ));
    }
    if let Some(w) = &b.alert_webhook {
        out.push(format!("Alert webhook ({:?}) {}", w.format, w.url));
    }
    out.push(format!(
        "Never texted besides staff: deny {}; countries {}",
        if b.deny.is_empty() {
            "none".to_string()
        } else {
            b.deny.join(", ")
        },
        b.allowed_countries().join(", ")
    ));
    out.push(format!(
        "Skip unverified caller IDs {}, instant hang-ups {}; call screening {}, machine detection {}, phone on-call for emergencies {}",
        on(b.skip_unverified_callers),
        on(b.skip_instant_hangups),
        on(b.call_screening),
        on(b.machine_detection),
        on(b.call_on_emergency)
    ));
    out.push(format!(
        "Closed on {}",
        if b.closed.is_empty() {
            "no dates".to_string()
        } else {
            b.closed.join(", ")
        }
    ));
    out
}

fn settings_view(config: &crate::config::Config) -> Vec<BusinessSettings> {
    let day_labels = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    config
        .businesses
        .iter()
        .enumerate()
        .map(|(index, b)| BusinessSettings {
            index,
            id: b.id.clone(),
            name: b.name.clone(),
            numbers: b.numbers.join(", "),
            forward_to: if b.forward_to.is_empty() {
                "nobody".into()
            } else {
                b.forward_to.join(", ")
            },
            timezone: b.timezone.clone(),
            provider: config.provider_name(b).to_string(),
            fields: crate::settings::FIELDS
                .iter()
                .map(|(key, label)| FieldView {
                    key,
                    label,
                    value: field_value(b, key),
                    long: key.ends_with("script") || *key == "missed_greeting",
                })
                .collect(),
            hours: b
                .hours
                .days()
                .iter()
                .zip(day_labels)
                .map(|((key, spans), label)| DayView {
                    key,
                    label,
                    value: spans.join(", "),
                })
                .collect(),
            rules: rules_of(b),
        })
        .collect()
}

fn owner_only(state: &AppState, signed: &Signed) -> Option<HttpResponse> {
    (signed.user.role != "owner").then(|| {
        error_page(
            state,
            StatusCode::FORBIDDEN,
            Some(signed),
            "Owners only",
            "Only an owner can see and change settings.",
        )
    })
}

fn settings_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    flash: Option<&str>,
    errors: Vec<String>,
) -> HttpResponse {
    let config = state.config.get();
    let ctx = SettingsPage {
        chrome: Chrome::signed(signed, "settings", flash, &state.config.get()),
        editable: state.config_path.is_some(),
        errors,
        businesses: settings_view(&config),
        public_url: &state.public_url,
    };
    html(state, status, "settings.html", &ctx)
}

/// `?saved=1` after a save.
#[derive(Deserialize)]
pub struct SettingsQuery {
    #[serde(default)]
    saved: Option<String>,
    #[serde(default)]
    sent: Option<String>,
}

/// `GET /settings`: every business's settings, editable by owners.
pub async fn settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SettingsQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let flash = if query.saved.is_some() {
        Some("Saved and applied.")
    } else if query.sent.is_some() {
        Some("Test text queued.")
    } else {
        None
    };
    Ok(settings_page(
        &state,
        &signed,
        StatusCode::OK,
        flash,
        vec![],
    ))
}

/// `POST /settings/{index}`: validate, write the file atomically keeping its comments, apply at once.
pub async fn settings_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<usize>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, HttpError> {
    let given = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let signed = match signed_form(&state, &req, given).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let index = path.into_inner();
    let file = state.config_path.clone();
    let changes = form.into_inner();
    let result = web::block(move || {
        let path = file.ok_or(crate::settings::SaveError::NoFile)?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            crate::settings::SaveError::Io(format!("cannot read {}: {e}", path.display()))
        })?;
        let edited = crate::settings::apply(&text, index, &changes)?;
        crate::settings::save(Some(&path), &edited)
    })
    .await
    .map_err(|_| HttpError::BadRequest("the save did not finish".into()))?;
    match result {
        Ok(mut config) => {
            // The running server keeps the URL it bound to when none is configured.
            if config.server.public_url.is_none() {
                config.server.public_url = Some(state.public_url.clone());
            }
            state.config.set(config);
            state.scheduler.wake();
            tracing::info!(by = %signed.user.name, business = index, "settings saved");
            Ok(redirect("/settings?saved=1"))
        }
        Err(crate::settings::SaveError::Invalid(errors)) => {
            let list = errors.0.iter().map(ToString::to_string).collect();
            Ok(settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not saved: nothing was changed."),
                list,
            ))
        }
        Err(e) => Ok(settings_page(
            &state,
            &signed,
            StatusCode::BAD_REQUEST,
            Some("Not saved: nothing was changed."),
            vec![e.to_string()],
        )),
    }
}

/// The preview request.
#[derive(Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    business: usize,
    #[serde(default)]
    script: String,
}

/// `POST /settings/preview`: a script rendered with the business's fields, with its segment count. Owners
/// only (scripts are settings); the render runs on the blocking pool on a bounded budget.
pub async fn settings_preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PreviewForm>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(HttpResponse::Unauthorized().finish());
    };
    if !csrf_ok(&signed, &form.csrf) {
        return Ok(HttpResponse::Forbidden()
            .json(serde_json::json!({ "error": "the page expired; reload it" })));
    }
    if signed.user.role != "owner" {
        return Ok(HttpResponse::Forbidden()
            .json(serde_json::json!({ "error": "only an owner can preview scripts" })));
    }
    let config = state.config.get();
    let Some(fields) = config
        .businesses
        .get(form.business)
        .map(BusinessConfig::script_fields)
    else {
        return Ok(
            HttpResponse::NotFound().json(serde_json::json!({ "error": "no such business" }))
        );
    };
    let script = form.into_inner().script;
    let rendered = render_off_workers(move || crate::script::render(&script, &fields)).await?;
    let body = match rendered {
        Ok(text) => crate::script::with_opt_out(&text),
        Err(e) => return Ok(HttpResponse::Ok().json(serde_json::json!({ "error": e.to_string() }))),
    };
    let s = crate::script::segments(&body);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "text": body,
        "segments": s.count,
        "encoding": if s.encoding == crate::script::Encoding::Gsm7 { "GSM-7" } else { "UCS-2" },
    })))
}

/// Runs an operator-written template on the blocking pool, never on an async worker.
async fn render_off_workers<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HttpError> {
    web::block(f)
        .await
        .map_err(|_| HttpError::BadRequest("the script could not be rendered".into()))
}

/// The test text form.
#[derive(Deserialize)]
pub struct TestTextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
}

/// `POST /settings/{index}/test-text`: texts the missed-call script to a number of the owner's choosing.
pub async fn settings_test_text(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<usize>,
    form: web::Form<TestTextForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let config = state.config.get();
    let Some(biz) = config.businesses.get(path.into_inner()).cloned() else {
        return Ok(not_found(&state, &signed));
    };
    let to = match crate::model::PhoneNumber::parse(&form.to) {
        Ok(n) => n,
        Err(e) => {
            return Ok(settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not sent."),
                vec![e.to_string()],
            ))
        }
    };
    let (script, fields) = (biz.script.clone(), biz.script_fields());
    let rendered = render_off_workers(move || crate::script::render(&script, &fields)).await?;
    let body = match rendered {
        Ok(b) => crate::script::with_opt_out(&format!("[test] {b}")),
        Err(e) => {
            return Ok(settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not sent."),
                vec![e.to_string()],
            ))
        }
    };
    let (provider, public, now) = (
        config.provider_name(&biz).to_string(),
        state.public_url.clone(),
        state.clock.now(),
    );
    state
        .store
        .write_async(move |c| {
            let env = Env {
                biz: &biz,
                provider: &provider,
                public_url: &public,
            };
            events::queue_message(
                c,
                &env,
                None,
                to.as_str(),
                &body,
                crate::model::Purpose::Alert,
                now,
                now,
            )
        })
        .await?;
    state.scheduler.wake();
    Ok(redirect("/settings?sent=1"))
}
