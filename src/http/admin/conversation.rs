//! A conversation's timeline and the actions staff take on it.

#[allow(clippy::wildcard_imports)]
use super::*;
use actix_web::ResponseError;

#[derive(Serialize)]
struct ContactView {
    id: i64,
    /// The name when known, else the number as people write it.
    title: String,
    /// The number as people write it, under a name.
    phone: Option<String>,
    /// `tel:` and `sms:` targets: the E.164 number, when it is one.
    dial: Option<String>,
    business: String,
    state: String,
    urgent: bool,
    opted_out: bool,
    blocked: bool,
}

/// One bubble or event in the timeline.
#[derive(Serialize, Default)]
struct Item {
    /// `in`, `out`, `call`, `note` or `pending`.
    kind: &'static str,
    /// "14:05", in the business's zone; `full` for the tooltip.
    time: String,
    full: String,
    /// The text, escaped, with its links made clickable.
    body_html: Option<String>,
    /// Above the text: "Automatic text-back", "Keyword EMERGENCY", "Note by sam", "Missed call · no answer".
    label: Option<String>,
    /// Automatic texts are marked apart from what staff wrote.
    automatic: bool,
    /// Our bubbles: "Delivered", "Sent", "Sending"; `failed` holds the reason instead.
    delivery: Option<&'static str>,
    failed: Option<String>,
    /// The text again, for the retry button (failed texts to a contact who may still be texted).
    retry: Option<String>,
    /// Calls: the voicemail to play, and what became of the text-back.
    recording: Option<String>,
    outcome: Option<String>,
}

/// A day's heading and what happened that day.
#[derive(Serialize)]
struct Day {
    label: String,
    items: Vec<Item>,
}

#[derive(Serialize)]
struct QuickInsert {
    label: String,
    text: String,
}

#[derive(Serialize)]
struct ConversationPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    contact: ContactView,
    days: Vec<Day>,
    pending_follow_ups: usize,
    quick: Vec<QuickInsert>,
}

/// What the timeline needs besides the rows: the business's zone, the clock, why a text failed.
struct Context<'a> {
    tz: crate::zone::Tz,
    now: Millis,
    /// The contact may be texted (not opted out, not blocked): only then is a retry offered.
    can_text: bool,
    explain: &'a dyn Fn(&messages::Message) -> Option<String>,
}

/// An automatic text's label, by purpose; `None` for what staff wrote.
fn automatic_label(purpose: &str) -> Option<&'static str> {
    match purpose {
        "textback" => Some("Automatic text-back"),
        "followup" => Some("Automatic follow-up"),
        "help" => Some("Automatic answer to HELP"),
        "keyword" => Some("Automatic keyword reply"),
        "confirmation" => Some("Automatic opt-out confirmation"),
        "alert" | "test" => Some("Automatic"),
        _ => None,
    }
}

fn message_item(m: messages::Message, cx: &Context<'_>) -> Item {
    let base = Item {
        time: crate::display::clock(m.created_at, cx.tz),
        full: crate::display::full(m.created_at, cx.tz),
        body_html: Some(crate::display::linkify(&m.body)),
        ..Item::default()
    };
    if m.direction == "in" {
        return Item {
            kind: "in",
            label: m.keyword.as_ref().map(|k| format!("Keyword {k}")),
            ..base
        };
    }
    let automatic = automatic_label(&m.purpose);
    let failed = matches!(m.status.as_str(), "failed" | "undelivered").then(|| {
        (cx.explain)(&m)
            .or_else(|| m.error_message.clone())
            .or_else(|| m.error_code.as_ref().map(|c| format!("error {c}")))
            .unwrap_or_else(|| "the provider gave no reason".into())
    });
    Item {
        kind: "out",
        label: automatic.map(str::to_string),
        automatic: automatic.is_some(),
        delivery: failed
            .is_none()
            .then(|| crate::display::delivery(&m.status)),
        retry: (failed.is_some() && cx.can_text).then(|| m.body.clone()),
        failed,
        ..base
    }
}

/// Which script a text-back used and why, in words: the stored form is `setting: reason`.
fn script_used(stored: &str) -> String {
    let (setting, reason) = stored.split_once(": ").unwrap_or((stored, ""));
    let which = match setting {
        "script" => "the opening-hours script",
        "after_hours_script" => "the after-hours script",
        "returning_script" => "the returning-contact script",
        other => other,
    };
    if reason.is_empty() {
        format!("Texted back with {which}")
    } else {
        format!("Texted back with {which}, because {reason}")
    }
}

fn call_item(script: Option<&String>, c: calls::Call, cx: &Context<'_>) -> Item {
    let mut label = match c.state.as_str() {
        "missed" => format!(
            "Missed call · {}",
            c.miss_reason
                .as_deref()
                .unwrap_or("missed")
                .replace('-', " ")
        ),
        "answered" => "Answered call".into(),
        _ => "Call ringing".into(),
    };
    if let Some(d) = c.duration_secs.filter(|d| *d > 0) {
        label.push_str(&format!(" · {}:{:02}", d / 60, d % 60));
    }
    let outcome = match (c.textback.as_deref(), c.textback_reason.as_deref()) {
        (Some("sent"), _) => Some(script.map_or("Texted back".to_string(), |s| script_used(s))),
        (Some("scheduled"), _) => Some("Text-back scheduled".to_string()),
        (Some("suppressed" | "cancelled"), Some(r)) => Some(format!(
            "Not texted back: {}",
            crate::model::SuppressReason::parse(r).map_or(r, |r| r.describe())
        )),
        (Some(t), Some(r)) => Some(format!("Text-back {t}: {r}")),
        (Some(t), None) => Some(format!("Text-back {t}")),
        _ => None,
    };
    Item {
        kind: "call",
        time: crate::display::clock(c.started_at, cx.tz),
        full: crate::display::full(c.started_at, cx.tz),
        label: Some(label),
        // Only https links are ever played (webhooks refuse others; old rows might hold one).
        recording: c.recording_url.filter(|u| u.starts_with("https://")),
        outcome,
        ..Item::default()
    }
}

fn booking_item(b: crate::store::bookings::Booking, cx: &Context<'_>) -> Item {
    let tool = match b.source.as_str() {
        "calcom" => "Cal.com",
        "calendly" => "Calendly",
        _ => "the booking hook",
    };
    let mut label = format!("Booked through {tool}");
    if let Some(title) = &b.title {
        label.push_str(&format!(" · {title}"));
    }
    if let Some(at) = b.starts_at {
        label.push_str(&format!(" · {}", crate::display::full(at, cx.tz)));
    }
    if let Some(v) = b.value_cents {
        label.push_str(&format!(" · {}", crate::report::dollars(v)));
    }
    let outcome = match b.state.as_str() {
        "cancelled" => Some("Cancelled: the conversation no longer counts as booked".to_string()),
        "rescheduled" => Some("Rescheduled".to_string()),
        _ => None,
    };
    Item {
        kind: "call",
        time: crate::display::clock(b.created_at, cx.tz),
        full: crate::display::full(b.created_at, cx.tz),
        label: Some(label),
        outcome,
        ..Item::default()
    }
}

/// The timeline as days of bubbles and events, oldest first, in the business's time zone.
fn timeline(
    calls: Vec<calls::Call>,
    messages: Vec<messages::Message>,
    notes: Vec<(String, String, i64)>,
    pending: &[jobs::JobRow],
    bookings: Vec<crate::store::bookings::Booking>,
    cx: &Context<'_>,
) -> Vec<Day> {
    let scripts: std::collections::HashMap<i64, String> = messages
        .iter()
        .filter_map(|m| Some((m.call_id?, m.script.clone()?)))
        .collect();
    let mut items: Vec<(Millis, Item)> = Vec::new();
    items.extend(
        calls
            .into_iter()
            .map(|c| (c.started_at, call_item(scripts.get(&c.id), c, cx))),
    );
    items.extend(
        messages
            .into_iter()
            .map(|m| (m.created_at, message_item(m, cx))),
    );
    for (author, body, at) in notes {
        items.push((
            at,
            Item {
                kind: "note",
                time: crate::display::clock(at, cx.tz),
                full: crate::display::full(at, cx.tz),
                label: Some(format!("Note by {author}")),
                body_html: Some(crate::display::linkify(&body)),
                ..Item::default()
            },
        ));
    }
    for b in bookings {
        items.push((b.created_at, booking_item(b, cx)));
    }
    for j in pending
        .iter()
        .filter(|j| matches!(j.job.kind(), "follow_up" | "text_back"))
    {
        let what = if j.job.kind() == "follow_up" {
            "Automatic follow-up"
        } else {
            "Automatic text-back"
        };
        items.push((
            j.run_at,
            Item {
                kind: "pending",
                time: crate::display::clock(j.run_at, cx.tz),
                full: crate::display::full(j.run_at, cx.tz),
                label: Some(format!(
                    "{what} scheduled for {}",
                    crate::display::when(j.run_at, cx.now, cx.tz)
                )),
                automatic: true,
                ..Item::default()
            },
        ));
    }
    items.sort_by_key(|(at, _)| *at);
    let mut days: Vec<Day> = Vec::new();
    for (at, item) in items {
        let label = crate::display::day(at, cx.now, cx.tz);
        match days.last_mut() {
            Some(d) if d.label == label => d.items.push(item),
            _ => days.push(Day {
                label,
                items: vec![item],
            }),
        }
    }
    days
}

/// The composer's one-tap inserts: the booking link, then the business's saved replies.
fn quick_inserts(biz: Option<&BusinessConfig>) -> Vec<QuickInsert> {
    let Some(b) = biz else { return vec![] };
    let mut out = vec![];
    if let Some(link) = &b.booking_link {
        out.push(QuickInsert {
            label: "Booking link".into(),
            text: link.clone(),
        });
    }
    out.extend(b.saved_replies.iter().map(|r| QuickInsert {
        label: r.chars().take(24).collect::<String>()
            + if r.chars().count() > 24 { "…" } else { "" },
        text: r.clone(),
    }));
    out
}

/// `GET /conversations/{id}`: the whole timeline of a contact.
pub async fn conversation(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let id = path.into_inner();
    let Some(contact) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    let (calls, msgs, notes, pending, bookings) = read(&state, move |c| {
        let pending: Vec<jobs::JobRow> = jobs::pending_for_contact(c, id)?;
        Ok((
            calls::for_contact(c, id)?,
            messages::for_contact(c, id)?,
            contacts::notes(c, id)?,
            pending,
            crate::store::bookings::of_contact(c, id)?,
        ))
    })
    .await?;
    if contact.unread {
        state
            .store
            .write_async(move |c| contacts::mark_read(c, id))
            .await?;
    }
    let pending_follow_ups = pending
        .iter()
        .filter(|j| j.job.kind() == "follow_up")
        .count();
    let config = state.config.get();
    let biz = config.business(&contact.business_id);
    let (tz, sender) = biz.map_or((crate::zone::UTC, ""), |b| (b.tz(), b.sender()));
    let formatted = crate::display::phone(&contact.phone, sender);
    let view = ContactView {
        id,
        title: contact.name.clone().unwrap_or_else(|| formatted.clone()),
        phone: contact.name.is_some().then(|| formatted.clone()),
        dial: contact
            .phone
            .starts_with('+')
            .then(|| contact.phone.clone()),
        business: biz.map_or(contact.business_id.clone(), |b| b.name.clone()),
        state: super::inbox::state_words(&contact.state, contact.booked_value_cents),
        urgent: contact.urgent,
        opted_out: contact.opted_out_at.is_some(),
        blocked: contact.blocked_at.is_some(),
    };
    let explain = |m: &messages::Message| {
        let code = m.error_code.as_deref()?;
        state
            .providers
            .get(&m.provider)
            .and_then(|p| p.explain(code))
            .map(str::to_string)
    };
    let cx = Context {
        tz,
        now: state.clock.now(),
        can_text: !view.opted_out && !view.blocked,
        explain: &explain,
    };
    let ctx = ConversationPage {
        chrome: Chrome::signed(&signed, "inbox", None, &config),
        days: timeline(calls, msgs, notes, &pending, bookings, &cx),
        contact: view,
        pending_follow_ups,
        quick: quick_inserts(biz),
    };
    Ok(html(&state, StatusCode::OK, "conversation.html", &ctx))
}

/// Any action form on a conversation.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    urgent: String,
    #[serde(default)]
    blocked: String,
}

/// `POST /conversations/{id}/{action}`: reply, booked, lost, urgent, block, note, cancel-follow-ups.
pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, HttpError> {
    let config = state.config.get();
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let (id, action) = path.into_inner();
    let Some(contact) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    let Some(biz) = config.business(&contact.business_id).cloned() else {
        return Ok(not_found(&state, &signed));
    };
    let now = state.clock.now();
    let form = form.into_inner();
    let value = if action == "booked" && !form.value.trim().is_empty() {
        match crate::staff::parse_money(&form.value) {
            Ok(v) => Some(v),
            Err(e) => {
                return Ok(error_page(
                    &state,
                    StatusCode::BAD_REQUEST,
                    Some(&signed),
                    "Not an amount",
                    &e.to_string(),
                ))
            }
        }
    } else {
        None
    };
    let (public, author) = (state.public_url.clone(), signed.user.name.clone());
    let phone = contact.phone.clone();
    let result = state
        .store
        .write_async(move |c| {
            let env = Env::of(&config, &biz, &public);
            match action.as_str() {
                "reply" => events::staff_reply(c, &env, &phone, &form.body, now).map(Some),
                "booked" => events::mark_booked(c, &biz, &phone, value, now).map(|_| None),
                "lost" => events::mark_lost(c, &biz, &phone, now).map(|_| None),
                "urgent" => {
                    Ok(contacts::set_urgent(c, id, form.urgent == "1", now).map(|()| None)?)
                }
                "block" => {
                    events::set_blocked(c, &biz, &phone, form.blocked == "1", now).map(|_| None)
                }
                "note" if !form.body.trim().is_empty() => {
                    Ok(contacts::add_note(c, id, &author, form.body.trim(), now).map(|()| None)?)
                }
                "cancel-follow-ups" => {
                    Ok(events::cancel_follow_ups_by_staff(c, id, now).map(|()| None)?)
                }
                _ => Err(events::Error::Store(store::Error::NotFound)),
            }
        })
        .await;
    match result {
        Ok(due) => {
            if due.is_some() {
                state.scheduler.wake();
            }
            let _ = state.live.send(contact.business_id.clone());
            Ok(redirect(&format!("/conversations/{id}")))
        }
        Err(events::Error::Store(store::Error::NotFound)) => Ok(not_found(&state, &signed)),
        Err(e) => match HttpError::from(e) {
            // A refusal is shown on a page the user can go back from; an unusable store is a 503.
            HttpError::Unavailable(cause) => Err(HttpError::Unavailable(cause)),
            refusal => Ok(error_page(
                &state,
                refusal.status_code(),
                Some(&signed),
                "Not done",
                &refusal.to_string(),
            )),
        },
    }
}
