//! The dashboard: the funnel, the money and when calls are missed.

#[allow(clippy::wildcard_imports)]
use super::*;

/// A booking reported by a booking tool.
#[derive(Serialize)]
struct BookingLine {
    who: String,
    tool: &'static str,
    when: String,
    state: &'static str,
    link: Option<String>,
}

#[derive(Serialize)]
struct FunnelView {
    missed: u32,
    texted: u32,
    delivered: u32,
    replied: u32,
    booked: u32,
    suppressed: u32,
    rate: String,
}

#[derive(Serialize)]
struct MoneyView {
    recovered: String,
    spend: String,
    segments: i64,
    roi: String,
}

/// What an owner asks first: this calendar month's recovered money and jobs, and what needs someone now.
#[derive(Serialize)]
struct HeadlineView {
    month: String,
    recovered: String,
    jobs: u32,
    rate: String,
    needs_reply: i64,
    urgent: i64,
    failed: i64,
}

#[derive(Serialize)]
struct DashboardPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    days: u32,
    business: String,
    businesses: Vec<BusinessOption>,
    headline: HeadlineView,
    funnel: FunnelView,
    money: MoneyView,
    daily_chart: String,
    daily_phone: String,
    heatmap: String,
    heatmap_phone: String,
    bookings: Vec<BookingLine>,
}

/// Midnight on the first of this month in `tz`, and the month's name.
fn month_start(now: crate::clock::Millis, tz: crate::zone::Tz) -> (crate::clock::Millis, String) {
    use chrono::Datelike;
    let local = tz.local(now);
    let start = local
        .date()
        .with_day(1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| tz.instants(d).earliest())
        .unwrap_or(now);
    let name = local.format("%B").to_string();
    (start, name)
}

/// Dashboard query string.
#[derive(Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    business: String,
}

/// `n` of `of` as a whole percentage, or a dash when there is nothing to divide by.
fn percent_of(n: u32, of: u32) -> String {
    if of == 0 {
        "–".to_string()
    } else {
        format!("{:.0}%", f64::from(n) * 100.0 / f64::from(of))
    }
}

/// `GET /dashboard`: the funnel, the money and when calls are missed.
pub async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<DashboardQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let days = query.days.unwrap_or(30).clamp(1, 366);
    let config = state.config.get();
    let businesses = visible(&config, &signed.user);
    let chosen: Vec<&BusinessConfig> = businesses
        .iter()
        .copied()
        .filter(|b| query.business.is_empty() || b.id == query.business)
        .collect();
    let ids: Vec<String> = chosen.iter().map(|b| b.id.clone()).collect();
    let tz = chosen.first().map_or(crate::zone::UTC, |b| b.tz());
    let now = state.clock.now();
    let (since, month) = month_start(now, tz);
    let this_month = super::super::figures_since(&state, ids.clone(), since, 1, tz).await?;
    let week_ago = now - 7 * 24 * 3_600_000;
    let attention_ids = ids.clone();
    let (attention, recent_bookings) = read(&state, move |c| {
        Ok((
            store::reports::attention(c, &attention_ids, week_ago)?,
            store::bookings::recent(c, &attention_ids, 10)?,
        ))
    })
    .await?;
    let bookings: Vec<BookingLine> = recent_bookings
        .into_iter()
        .map(|b| {
            let sender = config.business(&b.business_id).map_or("", |k| k.sender());
            BookingLine {
                who: b
                    .name
                    .clone()
                    .or_else(|| b.phone.as_ref().map(|p| crate::display::phone(p, sender)))
                    .or(b.email.clone())
                    .unwrap_or_else(|| "someone".into()),
                tool: match b.source.as_str() {
                    "calcom" => "Cal.com",
                    "calendly" => "Calendly",
                    _ => "booking hook",
                },
                when: crate::display::when(b.created_at, now, tz),
                state: match (b.state.as_str(), b.contact_id) {
                    ("booked", Some(_)) => "booked from a text-back conversation",
                    ("booked", None) => "booked, not from a text-back",
                    ("cancelled", _) => "cancelled",
                    _ => "rescheduled",
                },
                link: b.contact_id.map(|id| format!("/conversations/{id}")),
            }
        })
        .collect();
    let d = super::super::figures(&state, ids, days, tz).await?;
    let f = d.funnel;
    let percent = percent_of;
    let spend_cents = (d.money.spend_centicents + 50) / 100;
    #[allow(clippy::cast_precision_loss)]
    let roi = if spend_cents == 0 {
        "–".to_string()
    } else {
        format!(
            "{:.0}×",
            d.money.recovered_cents as f64 / spend_cents as f64
        )
    };
    let ctx = DashboardPage {
        chrome: Chrome::signed(&signed, "dashboard", None, &state.config.get()),
        days,
        business: query.business.clone(),
        businesses: businesses
            .iter()
            .map(|b| BusinessOption {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect(),
        headline: HeadlineView {
            month,
            recovered: report::dollars(this_month.money.recovered_cents),
            jobs: this_month.funnel.booked,
            rate: percent_of(this_month.funnel.booked, this_month.funnel.missed),
            needs_reply: attention.needs_reply,
            urgent: attention.urgent,
            failed: attention.failed,
        },
        funnel: FunnelView {
            missed: f.missed,
            texted: f.texted,
            delivered: f.delivered,
            replied: f.replied,
            booked: f.booked,
            suppressed: f.suppressed,
            rate: percent(f.booked, f.missed),
        },
        money: MoneyView {
            recovered: report::dollars(d.money.recovered_cents),
            spend: report::dollars(spend_cents),
            segments: d.money.segments,
            roi,
        },
        daily_chart: crate::charts::daily(&d.daily, crate::charts::Width::Wide),
        daily_phone: crate::charts::daily(&d.daily, crate::charts::Width::Narrow),
        heatmap: crate::charts::heatmap(&d.heat, crate::charts::Width::Wide),
        heatmap_phone: crate::charts::heatmap(&d.heat, crate::charts::Width::Narrow),
        bookings,
    };
    Ok(html(&state, StatusCode::OK, "dashboard.html", &ctx))
}
