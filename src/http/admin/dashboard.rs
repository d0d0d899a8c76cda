//! The dashboard: the funnel, the money and when calls are missed.

#[allow(clippy::wildcard_imports)]
use super::*;

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

#[derive(Serialize)]
struct DashboardPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    days: u32,
    business: String,
    businesses: Vec<BusinessOption>,
    funnel: FunnelView,
    money: MoneyView,
    daily_chart: String,
    heatmap: String,
    connect: Vec<ConnectView>,
}

/// Dashboard query string.
#[derive(Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    business: String,
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
    let tz = chosen.first().map_or(chrono_tz::UTC, |b| b.tz());
    let d = super::super::figures(&state, ids, days, tz).await?;
    let f = d.funnel;
    let percent = |n: u32, of: u32| {
        if of == 0 {
            "–".to_string()
        } else {
            format!("{:.0}%", f64::from(n) * 100.0 / f64::from(of))
        }
    };
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
        daily_chart: crate::charts::daily(&d.daily),
        heatmap: crate::charts::heatmap(&d.heat),
        connect: connect_views(&state, &config, &businesses),
    };
    Ok(html(&state, StatusCode::OK, "dashboard.html", &ctx))
}
