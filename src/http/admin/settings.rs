//! Settings: each business's keys, edited in the config file and applied without a restart.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Serialize)]
struct FieldView {
    key: &'static str,
    label: &'static str,
    value: String,
    /// `input`, `script` (a text template, previewed as the text), `speech` (previewed as what callers
    /// hear) or `lines` (one item per line).
    kind: &'static str,
    /// The built-in script the file names, in words, when it is one (it can be reset to the default).
    built_in: Option<String>,
    /// A script that may be left empty (the preview then says what is used instead).
    optional: bool,
    /// The file sets something other than the default: "Reset to default" is offered.
    resettable: bool,
}

#[derive(Serialize)]
struct DayView {
    key: &'static str,
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct SectionView {
    id: &'static str,
    title: &'static str,
    fields: Vec<FieldView>,
    /// Open when the page loads: it holds what a rejected save typed.
    open: bool,
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
    sections: Vec<SectionView>,
    hours: Vec<DayView>,
    closed: String,
    alerts: Vec<String>,
    rules: Vec<String>,
}

#[derive(Serialize)]
struct SettingsPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    /// No file yet: the first save writes one.
    on_defaults: bool,
    /// The version of the file the form was rendered from; a save from an older one is refused.
    version: String,
    errors: Vec<String>,
    businesses: Vec<BusinessSettings>,
    /// `[push] contact` is set.
    push_configured: bool,
    push_users: Vec<super::notifications::PushUser>,
}

/// What a rejected save typed, shown again instead of the file's values: (business index, form fields).
type Typed<'a> = Option<(usize, &'a [(String, String)])>;

/// A URL with everything after the host hidden: `https://hooks.slack.com/…`.
fn masked_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

/// Who is alerted and how, one line each (edited in the config file).
fn alerts_of(b: &BusinessConfig) -> Vec<String> {
    let mut out = vec![];
    for p in &b.notify {
        out.push(format!(
            "Texts to {} {}{}{}",
            p.name,
            p.sms.as_deref().unwrap_or("(no SMS)"),
            p.quiet_hours
                .as_deref()
                .map(|q| format!(", quiet {q}"))
                .unwrap_or_default(),
            if p.on_call { ", on call" } else { "" }
        ));
    }
    if b.notify.is_empty() {
        out.push(format!(
            "Texts to the phones calls ring ({})",
            if b.forward_to.is_empty() {
                "none".to_string()
            } else {
                b.forward_to.join(", ")
            }
        ));
    }
    if let Some(w) = &b.alert_webhook {
        // The URL is a secret (it is the only credential of a Slack or ntfy hook): show where it goes, not it.
        out.push(format!(
            "Alert webhook ({:?}) {}",
            w.format,
            masked_url(&w.url)
        ));
    }
    out
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

fn field_view(
    b: &BusinessConfig,
    key: &'static str,
    label: &'static str,
    typed: Option<&str>,
) -> FieldView {
    let kind = match key {
        "missed_greeting" => "speech",
        "saved_replies" => "lines",
        k if crate::settings::SCRIPTS.contains(&k) => "script",
        _ => "input",
    };
    let stored = match key {
        "script" => Some(b.script.as_str()),
        "after_hours_script" => Some(b.after_hours_script.as_str()),
        "returning_script" => b.returning_script.as_deref(),
        _ => None,
    };
    FieldView {
        key,
        label,
        value: typed.map_or_else(|| crate::settings::field_value(b, key), str::to_string),
        kind,
        built_in: stored.and_then(crate::settings::built_in_name),
        optional: key == "returning_script",
        resettable: stored.is_some_and(|s| {
            crate::settings::default_script(key).is_none_or(|default| default != s)
        }),
    }
}

fn settings_view(config: &crate::config::Config, typed: Typed<'_>) -> Vec<BusinessSettings> {
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
        .map(|(index, b)| {
            let typed_here = typed.filter(|(i, _)| *i == index).map(|(_, t)| t);
            let typed_value = |key: &str| {
                typed_here.and_then(|t| t.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()))
            };
            let sections = crate::settings::SECTIONS
                .iter()
                .map(|(id, title, keys)| SectionView {
                    id,
                    title,
                    fields: keys
                        .iter()
                        .filter_map(|key| crate::settings::FIELDS.iter().find(|(k, _)| k == key))
                        .map(|(key, label)| field_view(b, key, label, typed_value(key)))
                        .collect(),
                    open: typed_here.is_some_and(|t| {
                        t.iter().any(|(k, _)| {
                            keys.contains(&k.as_str())
                                || (*id == "hours" && k.starts_with("hours."))
                        })
                    }),
                })
                .collect();
            BusinessSettings {
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
                sections,
                hours: b
                    .hours
                    .days()
                    .iter()
                    .zip(day_labels)
                    .map(|((key, spans), label)| DayView {
                        key,
                        label,
                        value: typed_value(&format!("hours.{key}"))
                            .map_or_else(|| spans.join(", "), str::to_string),
                    })
                    .collect(),
                closed: if b.closed.is_empty() {
                    "no dates".into()
                } else {
                    b.closed.join(", ")
                },
                alerts: alerts_of(b),
                rules: rules_of(b),
            }
        })
        .collect()
}

/// The settings as the file says them (what a save edits), with the file's version; the running
/// configuration when there is no file.
async fn from_file(
    state: &AppState,
) -> Result<(std::sync::Arc<crate::config::Config>, String, Vec<String>), HttpError> {
    let Some(path) = state.running.path() else {
        return Ok((state.config.get(), String::new(), vec![]));
    };
    let read = web::block(move || std::fs::read_to_string(&path).map(|t| (path, t)))
        .await
        .map_err(|_| HttpError::BadRequest("the settings could not be read".into()))?;
    match read {
        Ok((path, text)) => {
            let version = crate::settings::version(&text);
            match crate::config::parse(&text, Some(&path), &crate::providers::rules()) {
                Ok(config) => Ok((std::sync::Arc::new(config), version, vec![])),
                Err(errors) => Ok((
                    state.config.get(),
                    version,
                    errors.0.iter().map(ToString::to_string).collect(),
                )),
            }
        }
        Err(e) => Ok((
            state.config.get(),
            String::new(),
            vec![format!("cannot read the config file: {e}")],
        )),
    }
}

async fn settings_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    flash: Option<&str>,
    errors: Vec<String>,
) -> Result<HttpResponse, HttpError> {
    settings_page_typed(state, signed, status, flash, errors, None).await
}

async fn settings_page_typed(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    flash: Option<&str>,
    mut errors: Vec<String>,
    typed: Typed<'_>,
) -> Result<HttpResponse, HttpError> {
    let (config, version, problems) = from_file(state).await?;
    errors.extend(problems);
    let running = state.config.get();
    let ctx = SettingsPage {
        chrome: Chrome::signed(signed, "settings", flash, &running),
        on_defaults: state.running.path().is_none(),
        version,
        errors,
        push_configured: running.push.contact.is_some(),
        push_users: super::notifications::push_users(state).await?,
        businesses: settings_view(&config, typed),
    };
    Ok(html(state, status, "settings.html", &ctx))
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
    settings_page(&state, &signed, StatusCode::OK, flash, vec![]).await
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
    let signed = match owner_form(&state, &req, given).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let index = path.into_inner();
    let changes = form.into_inner();
    // Shown again if the save is refused, so nothing typed is lost.
    let typed = changes.clone();
    let mut version = changes
        .iter()
        .find(|(k, _)| k == "version")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // On the built-in defaults the first save writes them to a file (`textback init`'s text) beside the
    // database, where the next start from that folder finds it, then edits it.
    let mut written = None;
    let file = match state.running.path() {
        Some(file) => file,
        None => {
            let target = state
                .store
                .path()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
                .join(crate::config::SEARCH_PATHS[0]);
            let running = std::sync::Arc::clone(&state.running);
            let adopted = web::block(move || running.adopt_file(&target))
                .await
                .map_err(|_| HttpError::BadRequest("the save did not finish".into()))?;
            match adopted {
                Ok((file, wrote)) => {
                    if wrote {
                        tracing::info!(file = %file.display(), by = %signed.user.name, "wrote the built-in defaults to a config file");
                        version = crate::settings::version(crate::config::EXAMPLE);
                        written = Some(file.clone());
                    }
                    file
                }
                Err(e) => {
                    return settings_page(
                        &state,
                        &signed,
                        StatusCode::BAD_REQUEST,
                        Some("Not saved: nothing was changed."),
                        vec![e.to_string()],
                    )
                    .await
                }
            }
        }
    };
    let running = std::sync::Arc::clone(&state.running);
    let result = web::block(move || {
        running.edit(&file, &version, |text| {
            crate::settings::apply(text, index, &changes)
        })
    })
    .await
    .map_err(|_| HttpError::BadRequest("the save did not finish".into()))?;
    let (status, errors) = match result {
        Ok(report) => {
            state.scheduler.wake();
            tracing::info!(by = %signed.user.name, business = index, changes = %report.summary(), "settings saved");
            if let Some(file) = &written {
                let mut note = format!(
                    "Saved and applied. The settings are now in {}: textback reads that file from now on, and at every start from its folder.",
                    file.display()
                );
                if !report.restart_needed.is_empty() {
                    note.push_str(&format!(
                        " It also changes {}, which take effect after a restart.",
                        report.restart_needed.join(", ")
                    ));
                }
                return settings_page(&state, &signed, StatusCode::OK, Some(&note), vec![]).await;
            }
            if report.restart_needed.is_empty() {
                return Ok(redirect("/settings?saved=1"));
            }
            let note = format!(
                "Saved and applied. The file also changes {}, which take effect after a restart.",
                report.restart_needed.join(", ")
            );
            return settings_page(&state, &signed, StatusCode::OK, Some(&note), vec![]).await;
        }
        Err(crate::settings::SaveError::Stale) => (
            StatusCode::CONFLICT,
            vec![crate::settings::SaveError::Stale.to_string()],
        ),
        Err(crate::settings::SaveError::Invalid(errors)) => (
            StatusCode::BAD_REQUEST,
            errors.0.iter().map(ToString::to_string).collect(),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, vec![e.to_string()]),
    };
    let flash = match &written {
        Some(file) => format!(
            "Not saved: the built-in defaults were written to {} unchanged, and your change was not applied.",
            file.display()
        ),
        None => "Not saved: nothing was changed. What you typed is still in the form.".into(),
    };
    settings_page_typed(
        &state,
        &signed,
        status,
        Some(&flash),
        errors,
        Some((index, &typed)),
    )
    .await
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
    let signed = match owner_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let config = state.config.get();
    let Some(biz) = config.businesses.get(path.into_inner()).cloned() else {
        return Ok(not_found(&state, &signed));
    };
    let to = match crate::model::PhoneNumber::parse(&form.to) {
        Ok(n) => n,
        Err(e) => {
            return settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not sent."),
                vec![e.to_string()],
            )
            .await
        }
    };
    let (script, fields) = (biz.script.clone(), biz.script_fields());
    let rendered = render_off_workers(move || crate::script::render(&script, &fields)).await?;
    let body = match rendered {
        Ok(b) => crate::script::with_opt_out(&format!("[test] {b}")),
        Err(e) => {
            return settings_page(
                &state,
                &signed,
                StatusCode::BAD_REQUEST,
                Some("Not sent."),
                vec![e.to_string()],
            )
            .await
        }
    };
    let (public, now) = (state.public_url.clone(), state.clock.now());
    state
        .store
        .write_async(move |c| {
            let env = Env::of(&config, &biz, &public);
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
