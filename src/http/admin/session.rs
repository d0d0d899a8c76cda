//! Signing in and out, and the first-run setup link that creates the owner.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Serialize)]
struct LoginPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    name: &'a str,
    error: Option<&'a str>,
}

/// `GET /login`
pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    if signed_in(&state, &req).await?.is_some() {
        return Ok(redirect("/"));
    }
    Ok(login_page(&state, StatusCode::OK, "", None))
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    name: &str,
    error: Option<&str>,
) -> HttpResponse {
    // Login CSRF: the form must echo a random value also set as a cookie (double submit).
    let token = auth::new_token();
    let ctx = LoginPage {
        chrome: Chrome::anonymous(&token),
        name,
        error,
    };
    let mut resp = html(state, status, "login.html", &ctx);
    let _ = resp.add_cookie(&cookie(state, LOGIN_COOKIE, token.clone()));
    resp
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: String,
}

/// `POST /login`: rate-limited per IP and per user name.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, HttpError> {
    let expected = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return Ok(login_page(
            &state,
            StatusCode::FORBIDDEN,
            &form.name,
            Some("The form expired; please try again."),
        ));
    }
    let now = state.clock.now();
    let client = client_address(&state, &req);
    // Names longer than any user's are cut: they name nobody, and must not grow the limiter's keys.
    let name: String = form.name.trim().chars().take(MAX_NAME).collect();
    let attempt = match state.limiter.begin(&name, &client, now) {
        Ok(a) => a,
        Err(until) => {
            let minutes = ((until - now).max(0) + 59_999) / 60_000;
            return Ok(login_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &form.name,
                Some(&format!(
                    "Too many failed attempts. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
            ));
        }
    };
    let n = name.clone();
    let user = match read(&state, move |c| users::by_name(c, &n)).await {
        Ok(u) => u,
        Err(e) => {
            state.limiter.release(&attempt);
            return Err(e);
        }
    };
    let password = form.password.clone();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let checked = state
        .hasher
        .run(move |memory| auth::verify_or_dummy(&password, hash.as_deref(), memory))
        .await;
    let verified = match checked {
        Ok(ok) => ok,
        Err(auth::Busy) => {
            state.limiter.release(&attempt);
            return Ok(login_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &form.name,
                Some("Too many sign-ins at once. Try again in a moment."),
            ));
        }
    };
    let Some(user) = user.filter(|_| verified) else {
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &form.name,
            Some("Wrong user name or password."),
        ));
    };
    state.limiter.succeeded(&attempt);
    let token = start_session(&state, user.id, now).await?;
    let mut resp = redirect("/");
    let _ = resp.add_cookie(&cookie(&state, SESSION_COOKIE, token));
    let mut gone = cookie(&state, LOGIN_COOKIE, String::new());
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
    Ok(resp)
}

/// User names are at most this long.
pub const MAX_NAME: usize = 64;

/// The address sign-in limits count a request against: the peer, or behind a trusted proxy the client it
/// forwarded for.
fn client_address(state: &AppState, req: &HttpRequest) -> String {
    super::super::client_ip(req, &state.config.get())
        .map_or_else(String::new, crate::clientip::limit_key)
}

async fn start_session(state: &AppState, user_id: i64, now: Millis) -> Result<String, HttpError> {
    let (token, csrf) = (auth::new_token(), auth::new_token());
    let hash = auth::token_hash(&token);
    state
        .store
        .write_async(move |c| users::create_session(c, &hash, user_id, &csrf, now))
        .await?;
    Ok(token)
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, HttpError> {
    if let Err(answer) = signed_form(&state, &req, &form.csrf).await? {
        return Ok(answer);
    }
    if let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let hash = auth::token_hash(&token);
        state
            .store
            .write_async(move |c| users::end_session(c, &hash))
            .await?;
    }
    let mut resp = redirect("/login");
    let mut gone = cookie(&state, SESSION_COOKIE, String::new());
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
    Ok(resp)
}

#[derive(Serialize)]
struct SetupPage<'a> {
    #[serde(flatten)]
    chrome: Chrome<'a>,
    token: &'a str,
    name: &'a str,
    error: Option<&'a str>,
}

/// `?token=` of the setup link.
#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// `GET /setup?token=…`: the one-time link `serve` prints while no user exists.
pub async fn setup_form(
    state: web::Data<AppState>,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, HttpError> {
    let (hash, now) = (auth::token_hash(&query.token), state.clock.now());
    let valid = read(&state, move |c| {
        Ok(users::count(c)? == 0 && users::setup_token_valid(c, &hash, now)?)
    })
    .await?;
    if !valid {
        return Ok(error_page(&state, StatusCode::NOT_FOUND, None, "Link expired", "This setup link was used already or has expired. Restart textback for a new one, or add a user with `textback user add`."));
    }
    let ctx = SetupPage {
        chrome: Chrome::anonymous(""),
        token: &query.token,
        name: "",
        error: None,
    };
    Ok(html(&state, StatusCode::OK, "setup.html", &ctx))
}

/// The setup form.
#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    name: String,
    password: String,
}

/// `POST /setup`: creates the first owner (once) and signs them in.
pub async fn setup(
    state: web::Data<AppState>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, HttpError> {
    let name = form.name.trim().to_string();
    let problem = if name.is_empty() {
        Some("Choose a user name.".to_string())
    } else if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        Some(format!("A user name has at most {MAX_NAME} characters."))
    } else {
        auth::check_password(&form.password).err()
    };
    if let Some(problem) = problem {
        let ctx = SetupPage {
            chrome: Chrome::anonymous(""),
            token: &form.token,
            name: &name,
            error: Some(&problem),
        };
        return Ok(html(&state, StatusCode::BAD_REQUEST, "setup.html", &ctx));
    }
    let password = form.password.clone();
    let hash = state
        .hasher
        .run(move |_| auth::hash_password(&password))
        .await
        .map_err(|busy| HttpError::TooManyRequests(busy.to_string()))?
        .map_err(HttpError::BadRequest)?;
    let (token_hash, now) = (auth::token_hash(&form.token), state.clock.now());
    let created = state
        .store
        .write_async(move |c| {
            if users::count(c)? > 0 || !users::use_setup_token(c, &token_hash, now)? {
                return Ok(None);
            }
            users::create(c, &name, &hash, "owner", &[], now).map(Some)
        })
        .await?;
    let Some(user_id) = created else {
        return Ok(error_page(
            &state,
            StatusCode::NOT_FOUND,
            None,
            "Link expired",
            "This setup link was used already or has expired.",
        ));
    };
    let token = start_session(&state, user_id, now).await?;
    let mut resp = redirect("/");
    let _ = resp.add_cookie(&cookie(&state, SESSION_COOKIE, token));
    Ok(resp)
}
