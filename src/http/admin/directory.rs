//! Contacts: search, details, consent history, CSV export and erasure.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Serialize)]
struct ContactRow {
    id: i64,
    name: String,
    phone: String,
    business: String,
    tags: String,
    state: String,
    opted_out: bool,
}

#[derive(Serialize)]
struct ContactsPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    q: &'a str,
    contacts: Vec<ContactRow>,
    older: Option<String>,
}

/// Contacts per page.
const PAGE: usize = 100;

/// Contacts search.
#[derive(Deserialize)]
pub struct ContactsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    erased: Option<String>,
    #[serde(default)]
    before: String,
}

/// A page of the contacts the user may see, filtered in the query before the limit.
async fn visible_contacts(
    state: &AppState,
    signed: &Signed,
    q: &str,
    before: Option<store::Cursor>,
    limit: usize,
) -> Result<store::Page<Contact>, HttpError> {
    let config = state.config.get();
    let ids: Vec<String> = visible(&config, &signed.user)
        .iter()
        .map(|b| b.id.clone())
        .collect();
    let query = q.to_string();
    read(state, move |c| {
        contacts::search(c, &ids, &query, before.as_ref(), limit)
    })
    .await
}

/// `GET /contacts?q=`: search by number or name.
pub async fn contacts_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ContactsQuery>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let before = store::Cursor::parse(&query.before, 2);
    let page = visible_contacts(&state, &signed, &query.q, before, PAGE).await?;
    let older = page.next.as_ref().map(|next| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &query.q)
            .append_pair("before", &next.to_string())
            .finish();
        format!("/contacts?{q}")
    });
    let list = page.rows;
    let all = state.config.get();
    let by_id: std::collections::HashMap<&str, &BusinessConfig> =
        all.businesses.iter().map(|b| (b.id.as_str(), b)).collect();
    let rows = list
        .into_iter()
        .map(|k| {
            let biz = by_id.get(k.business_id.as_str());
            let phone = crate::display::phone(&k.phone, biz.map_or("", |b| b.sender()));
            ContactRow {
                id: k.id,
                name: k.name.clone().unwrap_or_else(|| phone.clone()),
                business: biz.map_or(k.business_id.clone(), |b| b.name.clone()),
                phone,
                tags: k.tags,
                // The state already says "opted out" when that is the state; otherwise it is added.
                opted_out: k.opted_out_at.is_some() && k.state != "opted_out",
                state: super::inbox::state_words(&k.state, k.booked_value_cents),
            }
        })
        .collect();
    let flash = query.erased.as_ref().map(|_| "The contact was erased.");
    let ctx = ContactsPage {
        chrome: Chrome::signed(&signed, "contacts", flash, &state.config.get()),
        q: &query.q,
        contacts: rows,
        older,
    };
    Ok(html(&state, StatusCode::OK, "contacts.html", &ctx))
}

#[derive(Serialize)]
struct ContactDetail {
    id: i64,
    name: String,
    name_value: String,
    /// As people write it; `phone` (E.164) is what the erase form asks to be typed.
    formatted: String,
    phone: String,
    tags: String,
    notes: String,
    email: String,
}

#[derive(Serialize)]
struct ConsentRow {
    when: String,
    change: String,
    source: String,
}

#[derive(Serialize)]
struct ContactPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    contact: ContactDetail,
    consent: Vec<ConsentRow>,
}

/// `GET /contacts/{id}`: details, consent history, erase.
pub async fn contact_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let id = path.into_inner();
    let Some(k) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    let history = read(&state, move |c| contacts::consent_history(c, id)).await?;
    let config = state.config.get();
    let biz = config.business(&k.business_id);
    let tz = biz.map_or(crate::zone::UTC, |b| b.tz());
    let phone = crate::display::phone(&k.phone, biz.map_or("", |b| b.sender()));
    let ctx = ContactPage {
        chrome: Chrome::signed(&signed, "contacts", None, &state.config.get()),
        contact: ContactDetail {
            id,
            name: k.name.clone().unwrap_or_else(|| phone.clone()),
            name_value: k.name.clone().unwrap_or_default(),
            formatted: phone,
            phone: k.phone.clone(),
            tags: k.tags.clone(),
            notes: k.notes.clone().unwrap_or_default(),
            email: k.email.clone().unwrap_or_default(),
        },
        consent: history
            .into_iter()
            .map(|(change, source, at)| ConsentRow {
                when: crate::display::full(at, tz),
                change: change.replace('_', " "),
                source,
            })
            .collect(),
    };
    Ok(html(&state, StatusCode::OK, "contact.html", &ctx))
}

/// The contact details form.
#[derive(Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /contacts/{id}`: save name, notes and tags.
pub async fn contact_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<ContactForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let id = path.into_inner();
    if visible_contact(&state, &signed, id).await?.is_none() {
        return Ok(not_found(&state, &signed));
    }
    let clean = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (name, notes, email) = (clean(&form.name), clean(&form.notes), clean(&form.email));
    if let Some(Err(why)) = email.as_deref().map(crate::config::check_email) {
        return Ok(error_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some(&signed),
            "Not saved",
            &why,
        ));
    }
    let tags = form
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let now = state.clock.now();
    state
        .store
        .write_async(move |c| {
            contacts::set_details(c, id, name.as_deref(), notes.as_deref(), &tags, now)?;
            contacts::set_email(c, id, email.as_deref(), now)
        })
        .await?;
    Ok(redirect(&format!("/contacts/{id}")))
}

/// `POST /contacts/{id}/erase`: right to erasure, after typing the number to confirm.
pub async fn contact_erase(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<ContactForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match signed_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let id = path.into_inner();
    let Some(k) = visible_contact(&state, &signed, id).await? else {
        return Ok(not_found(&state, &signed));
    };
    if form.confirm.trim() != k.phone {
        return Ok(error_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some(&signed),
            "Not erased",
            "Type the contact's number exactly to confirm. Nothing was changed.",
        ));
    }
    state
        .store
        .write_async(move |c| contacts::erase(c, id))
        .await?;
    tracing::info!(contact = id, by = %signed.user.name, "contact erased");
    Ok(redirect("/contacts?erased=1"))
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be run as a formula by spreadsheets; a plain E.164 number is safe as it is.
    let number = s
        .strip_prefix('+')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let s = if s.starts_with(['=', '+', '-', '@']) && !number {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /contacts.csv`: every visible contact.
pub async fn contacts_csv(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    let list = visible_contacts(&state, &signed, "", None, usize::MAX)
        .await?
        .rows;
    let mut out = String::from("id,business,phone,name,tags,state,opted_out_at,booked_value\n");
    for k in list {
        let fields = [
            k.id.to_string(),
            k.business_id.clone(),
            k.phone.clone(),
            k.name.clone().unwrap_or_default(),
            k.tags.clone(),
            k.state.clone(),
            k.opted_out_at.map(format_utc).unwrap_or_default(),
            k.booked_value_cents
                .map(report::dollars)
                .unwrap_or_default(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"contacts.csv\"",
        ))
        .body(out))
}
