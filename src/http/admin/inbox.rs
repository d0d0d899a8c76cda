//! The inbox: conversations, urgent and needs-reply first, with filters.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Serialize)]
struct InboxItem {
    id: i64,
    name: String,
    /// The formatted number under a name.
    phone: Option<String>,
    state: String,
    urgent: bool,
    needs_reply: bool,
    unread: bool,
    last: String,
    business: String,
    when: String,
}

#[derive(Serialize)]
struct FilterLink {
    label: &'static str,
    href: String,
    active: bool,
}

#[derive(Serialize)]
struct InboxPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    filter: &'a str,
    business: &'a str,
    businesses: Vec<BusinessOption>,
    /// More than one business is shown: rows say which.
    many: bool,
    filters: Vec<FilterLink>,
    conversations: Vec<InboxItem>,
    /// The link to the next, older page, if there is one.
    older: Option<String>,
}

/// Conversations per inbox page.
const PAGE: usize = 100;

/// Inbox query string.
#[derive(Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    filter: String,
    #[serde(default)]
    business: String,
    #[serde(default)]
    before: String,
}

/// A conversation's state as the inbox says it: "booked $385.00", "opted out".
pub(super) fn state_words(state: &str, booked_cents: Option<i64>) -> String {
    match (state, booked_cents) {
        ("booked", Some(cents)) => format!("booked {}", report::dollars(cents)),
        _ => crate::display::state(state).to_string(),
    }
}

/// `GET /`: conversations, urgent and needs-reply first.
pub async fn inbox(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let filter = InboxFilter::parse(&query.filter);
    let config = state.config.get();
    let businesses = visible(&config, &signed.user);
    // Tenancy is a filter in the query, before the page limit: another business's traffic never pushes
    // this user's conversations off the page.
    let shown: Vec<String> = businesses
        .iter()
        .filter(|b| query.business.is_empty() || b.id == query.business)
        .map(|b| b.id.clone())
        .collect();
    let before = store::Cursor::parse(&query.before, 4);
    let page = read(&state, move |c| {
        contacts::inbox(c, &shown, filter, before.as_ref(), PAGE)
    })
    .await?;
    let all = state.config.get();
    let by_id: std::collections::HashMap<&str, &BusinessConfig> =
        all.businesses.iter().map(|b| (b.id.as_str(), b)).collect();
    let now = state.clock.now();
    let older = page.next.as_ref().map(|next| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &query.filter)
            .append_pair("business", &query.business)
            .append_pair("before", &next.to_string())
            .finish();
        format!("/?{q}")
    });
    let conversations = page
        .rows
        .into_iter()
        .map(|r| {
            let biz = by_id.get(r.business_id.as_str());
            let tz = biz.map_or(crate::zone::UTC, |b| b.tz());
            let formatted = crate::display::phone(&r.phone, biz.map_or("", |b| b.sender()));
            let last = match r.last_body {
                Some(body) if r.last_from_us => format!("You: {body}"),
                Some(body) => body,
                None => "Missed call".into(),
            };
            InboxItem {
                id: r.id,
                name: r.name.clone().unwrap_or_else(|| formatted.clone()),
                phone: r.name.is_some().then_some(formatted),
                state: state_words(&r.state, r.booked_value_cents),
                urgent: r.urgent,
                needs_reply: r.needs_reply,
                unread: r.unread,
                last,
                business: biz.map_or(r.business_id.clone(), |b| b.name.clone()),
                when: crate::display::when(r.last_at, now, tz),
            }
        })
        .collect();
    let b = if query.business.is_empty() {
        String::new()
    } else {
        format!("&business={}", query.business)
    };
    let filters = [
        ("All", ""),
        ("Needs reply", "needs-reply"),
        ("Urgent", "urgent"),
        ("Booked", "booked"),
        ("Opted out", "opted-out"),
    ]
    .into_iter()
    .map(|(label, key)| FilterLink {
        label,
        href: format!("/?filter={key}{b}"),
        active: query.filter == key,
    })
    .collect();
    let ctx = InboxPage {
        chrome: Chrome::signed(&signed, "inbox", None, &state.config.get()),
        filter: &query.filter,
        business: &query.business,
        businesses: visible(&config, &signed.user)
            .iter()
            .map(|b| BusinessOption {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect(),
        many: businesses.len() > 1,
        filters,
        conversations,
        older,
    };
    Ok(html(&state, StatusCode::OK, "inbox.html", &ctx))
}
