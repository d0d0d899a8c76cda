//! The Setup page (owners): `textback doctor`'s checks, run live with the fix for each, and the buttons for
//! `connect` and `send-test`, so a first-time owner goes live without the terminal.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::providers::Check;

#[derive(Serialize)]
struct GoLivePage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    checks: Vec<Check>,
    failed: usize,
    report: Option<String>,
    businesses: Vec<BusinessOption>,
    public_url: &'a str,
    /// Each account's webhook URLs, for setting numbers up by hand.
    connect: Vec<ConnectView>,
}

#[derive(Serialize)]
struct TestPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    to: String,
    outcome: Option<String>,
    delivered: bool,
}

/// Runs the doctor's checks against the running server.
async fn checks(state: &AppState) -> Result<Vec<Check>, HttpError> {
    let config = state.config.get();
    let source = state.running.path().map_or_else(
        || "the built-in defaults".to_string(),
        |p| p.display().to_string(),
    );
    let (store, providers) = (state.store.clone(), state.providers.clone());
    let database = store.path().to_path_buf();
    web::block(move || {
        let http = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(10))
            .build();
        crate::setup::doctor(
            &config,
            &source,
            &database,
            &store,
            &providers,
            &http,
            crate::setup::PAGE_BUDGET,
        )
    })
    .await
    .map_err(|_| HttpError::BadRequest("the checks did not finish".into()))
}

async fn page(
    state: &AppState,
    signed: &Signed,
    report: Option<String>,
) -> Result<HttpResponse, HttpError> {
    let checks = checks(state).await?;
    let config = state.config.get();
    let ctx = GoLivePage {
        chrome: Chrome::signed(signed, "golive", None, &config),
        failed: checks
            .iter()
            .filter(|c| c.level == crate::providers::Level::Fail)
            .count(),
        checks,
        report,
        businesses: config
            .businesses
            .iter()
            .map(|b| BusinessOption {
                id: b.id.clone(),
                name: b.name.clone(),
            })
            .collect(),
        public_url: &state.public_url,
        connect: connect_views(
            state,
            &config,
            &config.businesses.iter().collect::<Vec<_>>(),
        ),
    };
    Ok(html(state, StatusCode::OK, "golive.html", &ctx))
}

/// `GET /golive`: the checks, live.
pub async fn golive(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    page(&state, &signed, None).await
}

/// The Setup page's forms.
#[derive(Deserialize)]
pub struct GoLiveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    business: String,
    #[serde(default)]
    number: String,
}

/// `POST /golive/connect`: points every number here, then shows what was done and the checks again.
pub async fn golive_connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<GoLiveForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match owner_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let (config, providers) = (state.config.get(), state.providers.clone());
    let by = signed.user.name.clone();
    let report = web::block(move || {
        let all: Vec<&BusinessConfig> = config.businesses.iter().collect();
        let steps = crate::setup::connect(&config, &providers, &all, true);
        let manual = crate::setup::by_hand(&config, &providers, &all);
        crate::setup::render_connect(&steps, &manual, true).0
    })
    .await
    .map_err(|_| HttpError::BadRequest("connect did not finish".into()))?;
    tracing::info!(%by, report = %report.trim_end(), "numbers connected from the Setup page");
    page(&state, &signed, Some(report)).await
}

/// `POST /golive/test-text`: queues a test text, then follows it on its own page.
pub async fn golive_test_text(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<GoLiveForm>,
) -> Result<HttpResponse, HttpError> {
    let signed = match owner_form(&state, &req, &form.csrf).await? {
        Ok(signed) => signed,
        Err(answer) => return Ok(answer),
    };
    let config = state.config.get();
    let chosen = if form.business.is_empty() {
        config.businesses.first()
    } else {
        config.business(&form.business)
    };
    let Some(biz) = chosen.cloned() else {
        return Ok(not_found(&state, &signed));
    };
    let to = match phone_or_page(&state, &signed, &form.number) {
        Ok(n) => n,
        Err(page) => return Ok(*page),
    };
    let (store, now) = (state.store.clone(), state.clock.now());
    let id = web::block(move || crate::setup::queue_test(&store, &config, &biz, &to, now))
        .await
        .map_err(|_| HttpError::BadRequest("the test text was not queued".into()))??;
    state.scheduler.wake();
    Ok(redirect(&format!("/golive/test/{id}")))
}

/// `GET /golive/test/{id}`: where a test text stands; the page polls until its receipt.
pub async fn golive_test(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, HttpError> {
    let Some(signed) = signed_in(&state, &req).await? else {
        return Ok(redirect("/login"));
    };
    if let Some(refused) = owner_only(&state, &signed) {
        return Ok(refused);
    }
    let id = path.into_inner();
    let m = read(&state, move |c| messages::get(c, id)).await?;
    // Only test texts are shown here.
    if m.purpose != crate::model::Purpose::Test.as_str() {
        return Ok(not_found(&state, &signed));
    }
    let explain = m.error_code.as_deref().and_then(|code| {
        state
            .providers
            .get(&m.provider)
            .and_then(|p| p.explain(code))
    });
    let outcome = crate::setup::test_outcome(&m, explain);
    let ctx = TestPage {
        chrome: Chrome::signed(&signed, "golive", None, &state.config.get()),
        to: m.to_number.clone(),
        delivered: outcome.as_ref().is_some_and(|(d, _)| *d),
        outcome: outcome.map(|(_, said)| said),
    };
    Ok(html(&state, StatusCode::OK, "golive_test.html", &ctx))
}
