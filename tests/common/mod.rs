//! Shared test harness: the real `textback` binary on an ephemeral loopback port with a temp database, a
//! small fake Twilio REST API on loopback, signed webhooks, and a bounded `wait_for`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const ACCOUNT_SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const AUTH_TOKEN: &str = "test-auth-token";
pub const PUBLIC_URL: &str = "https://textback.example.com";
pub const BUSINESS_NUMBER: &str = "+16025550100";
pub const STAFF_NUMBER: &str = "+16025550199";
pub const CALLER: &str = "+14805550111";

/// Waits until `f` returns `Some`, backing off, or panics naming `what` after `secs` seconds.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

// -------------------------------------------------------------------------------------------------------------
// Fake Twilio

/// A request the fake Twilio received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Received {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer: status, body, extra headers.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Scripted {
    pub fn error(status: u16, code: i64, message: &str) -> Self {
        Self {
            status,
            body: format!(
                r#"{{"code": {code}, "message": "{message}", "more_info": "https://www.twilio.com/docs/errors/{code}", "status": {status}}}"#
            ),
            headers: vec![],
        }
    }
}

#[derive(Default)]
struct FakeState {
    received: Vec<Received>,
    created: Vec<serde_json::Value>,
    scripted: VecDeque<Scripted>,
    hold: bool,
    lose: bool,
    held: usize,
    landlines: Vec<String>,
    lookups: usize,
    next_sid: u64,
    accept_delay: Option<Duration>,
    /// The account's phone numbers (IncomingPhoneNumbers resources).
    numbers: Vec<serde_json::Value>,
    /// Messaging Services, with the `PN` ids of their numbers.
    services: Vec<(serde_json::Value, Vec<String>)>,
    /// A2P campaigns by Messaging Service, and brands by id.
    campaigns: Vec<(String, serde_json::Value)>,
    brands: Vec<(String, serde_json::Value)>,
}

/// A fake of Twilio's Messages API on 127.0.0.1: answers like Twilio (201 with the message JSON, error JSON
/// for the test magic numbers and for scripted failures) and lists what it created.
pub struct FakeTwilio {
    pub url: String,
    server: Arc<tiny_http::Server>,
    state: Arc<(Mutex<FakeState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeTwilio {
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state: Arc<(Mutex<FakeState>, Condvar)> = Arc::default();
        let (s, st) = (Arc::clone(&server), Arc::clone(&state));
        let thread = std::thread::spawn(move || {
            while let Ok(req) = s.recv() {
                let st = Arc::clone(&st);
                std::thread::spawn(move || handle(req, &st));
            }
        });
        Self {
            url,
            server,
            state,
            thread: Some(thread),
        }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.0.lock().unwrap().received.clone()
    }

    /// How many messages it created (accepted).
    pub fn created(&self) -> usize {
        self.state.0.lock().unwrap().created.len()
    }

    /// Puts `number` in the account, configured by `fields` (`voice_url`, `trunk_sid`...); returns its `PN`.
    pub fn add_number(&self, number: &str, fields: &[(&str, &str)]) -> String {
        let mut st = self.state.0.lock().unwrap();
        let sid = format!("PN{:032x}", st.numbers.len() + 1);
        let mut n = serde_json::json!({
            "sid": sid, "account_sid": ACCOUNT_SID, "phone_number": number, "friendly_name": number,
            "voice_url": null, "voice_method": "POST", "voice_fallback_url": null, "voice_application_sid": null,
            "trunk_sid": null, "sms_url": "https://demo.twilio.com/welcome/sms/reply", "sms_method": "POST",
            "sms_application_sid": "", "status_callback": "", "status_callback_method": "POST",
            "capabilities": {"voice": true, "sms": true, "mms": true, "fax": false}, "status": "in-use",
            "origin": "twilio", "api_version": "2010-04-01",
        });
        for (k, v) in fields {
            n[*k] = serde_json::Value::String((*v).to_string());
        }
        st.numbers.push(n);
        sid
    }

    /// A number of the account as it stands.
    pub fn number(&self, number: &str) -> serde_json::Value {
        let st = self.state.0.lock().unwrap();
        st.numbers
            .iter()
            .find(|n| n["phone_number"] == number)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes a number's setting as a person in the console would.
    pub fn set_number(&self, number: &str, key: &str, value: &str) {
        let mut st = self.state.0.lock().unwrap();
        if let Some(n) = st.numbers.iter_mut().find(|n| n["phone_number"] == number) {
            n[key] = serde_json::Value::String(value.to_string());
        }
    }

    /// The updates posted to numbers.
    pub fn number_updates(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.contains("/IncomingPhoneNumbers/"))
            .collect()
    }

    /// Adds a Messaging Service holding the numbers `pns`.
    pub fn add_service(&self, sid: &str, use_inbound_webhook_on_number: bool, pns: &[&str]) {
        let mut st = self.state.0.lock().unwrap();
        st.services.push((
            serde_json::json!({
                "sid": sid, "account_sid": ACCOUNT_SID, "friendly_name": "Acme texts",
                "inbound_request_url": "https://example.com/inbound", "use_inbound_webhook_on_number": use_inbound_webhook_on_number,
                "us_app_to_person_registered": true,
            }),
            pns.iter().map(|p| (*p).to_string()).collect(),
        ));
    }

    /// Gives a Messaging Service an A2P campaign in `status`, of a brand in `brand_status`.
    pub fn add_campaign(&self, service: &str, status: &str, brand_status: &str) {
        let mut st = self.state.0.lock().unwrap();
        let brand = format!("BN{:032x}", st.brands.len() + 1);
        let campaign = format!("QE{:032x}", st.campaigns.len() + 1);
        st.campaigns.push((
            service.to_string(),
            serde_json::json!({
                "sid": campaign, "brand_registration_sid": brand,
                "messaging_service_sid": service, "campaign_status": status, "campaign_id": "CFOOBAR",
                "us_app_to_person_usecase": "CUSTOMER_CARE", "errors": [],
            }),
        ));
        st.brands.push((
            brand.clone(),
            serde_json::json!({"sid": brand, "status": brand_status, "brand_type": "STANDARD"}),
        ));
    }

    /// The message-create requests received so far.
    pub fn sends(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json"))
            .collect()
    }

    /// Answers the next message-create requests with these, in order, then normally.
    pub fn script(&self, answers: Vec<Scripted>) {
        self.state.0.lock().unwrap().scripted.extend(answers);
    }

    /// Accept and record message-creates but never answer them, as when the process dies mid-request.
    pub fn hold(&self, on: bool) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap().hold = on;
        cv.notify_all();
    }

    /// Receive message-creates but neither process nor answer them, as when a request is lost on the way.
    pub fn lose(&self, on: bool) {
        let (lock, cv) = &*self.state;
        lock.lock().unwrap().lose = on;
        cv.notify_all();
    }

    /// Takes this long to accept each message-create: the message exists (and is listed) only after the
    /// delay, and the answer comes then, as when the provider is slow.
    pub fn accept_after(&self, delay: Option<Duration>) {
        self.state.0.lock().unwrap().accept_delay = delay;
    }

    /// Numbers Lookup reports as landlines (everything else is mobile).
    pub fn landline(&self, number: &str) {
        self.state
            .0
            .lock()
            .unwrap()
            .landlines
            .push(number.to_string());
    }

    /// How many Lookup requests it answered.
    pub fn lookups(&self) -> usize {
        self.state.0.lock().unwrap().lookups
    }

    /// The call-create requests received so far.
    pub fn calls(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/Calls.json"))
            .collect()
    }

    /// Texts sent to one number.
    pub fn sends_to(&self, to: &str) -> Vec<Received> {
        self.sends()
            .into_iter()
            .filter(|r| r.get("To") == Some(to))
            .collect()
    }

    /// How many requests are being held.
    pub fn held(&self) -> usize {
        self.state.0.lock().unwrap().held
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.hold(false);
        self.lose(false);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut req: tiny_http::Request, state: &(Mutex<FakeState>, Condvar)) {
    let mut body = String::new();
    let _ = req.as_reader().read_to_string(&mut body);
    let header = |name: &str| {
        req.headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let (path, query) = match req.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.url().to_string(), String::new()),
    };
    let received = Received {
        method: req.method().as_str().to_string(),
        path: path.clone(),
        authorization: header("Authorization"),
        content_type: header("Content-Type"),
        form: form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect(),
    };
    let (lock, cv) = state;
    let mut st = lock.lock().unwrap();
    st.received.push(received.clone());
    if let Some(delay) = st
        .accept_delay
        .filter(|_| received.method == "POST" && path.ends_with("/Messages.json"))
    {
        drop(st);
        std::thread::sleep(delay);
        st = lock.lock().unwrap();
    }
    if st.lose && received.method == "POST" {
        st.held += 1;
        while st.lose {
            st = cv.wait(st).unwrap();
        }
        return;
    }
    let messages_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json");
    let expected_auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{ACCOUNT_SID}:{AUTH_TOKEN}")
        )
    );
    let calls_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
    let account_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}");
    let authorized = received.authorization.as_deref() == Some(expected_auth.as_str());
    let json = |status: u16, v: serde_json::Value| Scripted {
        status,
        body: v.to_string(),
        headers: vec![],
    };
    let number_update = path
        .strip_prefix(&format!("{account_path}/IncomingPhoneNumbers/"))
        .and_then(|p| p.strip_suffix(".json"))
        .map(str::to_string);
    let answer = if !authorized
        && (path.starts_with(&account_path) || path.starts_with("/v1/"))
        && path != messages_path
    {
        Scripted::error(401, 20003, "Authenticate")
    } else if path == format!("{account_path}.json") {
        json(
            200,
            serde_json::json!({"sid": ACCOUNT_SID, "friendly_name": "Acme", "status": "active", "type": "Full"}),
        )
    } else if path == format!("{account_path}/IncomingPhoneNumbers.json") {
        let want: Option<String> = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "PhoneNumber")
            .map(|(_, v)| v.into_owned());
        let list: Vec<&serde_json::Value> = st
            .numbers
            .iter()
            .filter(|n| want.as_deref().is_none_or(|w| n["phone_number"] == w))
            .collect();
        json(
            200,
            serde_json::json!({"incoming_phone_numbers": list, "next_page_uri": null, "page": 0, "page_size": 50}),
        )
    } else if let (Some(pn), "POST") = (number_update, received.method.as_str()) {
        let fields = [
            ("VoiceUrl", "voice_url"),
            ("VoiceMethod", "voice_method"),
            ("StatusCallback", "status_callback"),
            ("StatusCallbackMethod", "status_callback_method"),
            ("SmsUrl", "sms_url"),
            ("SmsMethod", "sms_method"),
        ];
        let form = received.form.clone();
        match st.numbers.iter_mut().find(|n| n["sid"] == pn.as_str()) {
            Some(n) => {
                for (k, v) in &form {
                    if let Some((_, key)) = fields.iter().find(|(f, _)| f == k) {
                        n[*key] = serde_json::Value::String(v.clone());
                    }
                }
                json(200, n.clone())
            }
            None => Scripted::error(404, 20404, "The requested resource was not found"),
        }
    } else if path == "/v1/Services" {
        let list: Vec<&serde_json::Value> = st.services.iter().map(|(s, _)| s).collect();
        json(
            200,
            serde_json::json!({"services": list, "meta": {"next_page_url": null, "page": 0, "page_size": 50, "key": "services"}}),
        )
    } else if let Some(rest) = path.strip_prefix("/v1/Services/") {
        let (sid, tail) = rest.split_once('/').unwrap_or((rest, ""));
        match (st.services.iter().find(|(s, _)| s["sid"] == sid), tail) {
            (None, _) => Scripted::error(404, 20404, "The requested resource was not found"),
            (Some((_, pns)), "PhoneNumbers") => {
                let list: Vec<serde_json::Value> = pns
                    .iter()
                    .map(|pn| {
                        let number = st.numbers.iter().find(|n| n["sid"] == pn.as_str()).cloned().unwrap_or_default();
                        serde_json::json!({"sid": pn, "service_sid": sid, "phone_number": number["phone_number"], "country_code": "US"})
                    })
                    .collect();
                json(
                    200,
                    serde_json::json!({"phone_numbers": list, "meta": {"next_page_url": null, "key": "phone_numbers"}}),
                )
            }
            (Some(_), "Compliance/Usa2p") => {
                let list: Vec<&serde_json::Value> = st
                    .campaigns
                    .iter()
                    .filter(|(s, _)| s == sid)
                    .map(|(_, c)| c)
                    .collect();
                json(
                    200,
                    serde_json::json!({"compliance": list, "meta": {"next_page_url": null, "key": "compliance"}}),
                )
            }
            (Some((service, _)), "") => json(200, service.clone()),
            _ => Scripted::error(404, 20404, "The requested resource was not found"),
        }
    } else if let Some(bn) = path.strip_prefix("/v1/a2p/BrandRegistrations/") {
        match st.brands.iter().find(|(b, _)| b == bn) {
            Some((_, brand)) => json(200, brand.clone()),
            None => Scripted::error(404, 20404, "The requested resource was not found"),
        }
    } else if let Some(number) = path.strip_prefix("/v2/PhoneNumbers/") {
        st.lookups += 1;
        let number = form_urlencoded::parse(format!("n={number}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let kind = if st.landlines.contains(&number) {
            "landline"
        } else {
            "mobile"
        };
        let wants_lti = query.contains("Fields=line_type_intelligence");
        Scripted {
            status: 200,
            body: serde_json::json!({
                "calling_country_code": "1", "country_code": "US", "phone_number": number,
                "national_format": null, "valid": true, "validation_errors": null, "caller_name": null,
                "line_type_intelligence": if wants_lti {
                    serde_json::json!({"error_code": null, "mobile_country_code": null, "mobile_network_code": null,
                                       "carrier_name": "Fake Carrier", "type": kind})
                } else { serde_json::Value::Null },
                "url": format!("https://lookups.twilio.com/v2/PhoneNumbers/{number}"),
            })
            .to_string(),
            headers: vec![],
        }
    } else if path == calls_path && received.method == "POST" {
        st.next_sid += 1;
        Scripted {
            status: 201,
            body: serde_json::json!({"sid": format!("CA{:032x}", st.next_sid), "status": "queued",
                                     "to": received.get("To"), "from": received.get("From")})
            .to_string(),
            headers: vec![],
        }
    } else if path != messages_path {
        Scripted::error(404, 20404, "The requested resource was not found")
    } else if received.authorization.as_deref() != Some(expected_auth.as_str()) {
        Scripted::error(401, 20003, "Authenticate")
    } else if received.method == "GET" {
        let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let want = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let list: Vec<&serde_json::Value> = st
            .created
            .iter()
            .filter(|m| want("To").is_none_or(|t| m["to"] == t.as_str()))
            .filter(|m| want("From").is_none_or(|f| m["from"] == f.as_str()))
            .collect();
        Scripted {
            status: 200,
            body: serde_json::json!({ "messages": list, "page": 0, "page_size": 50 }).to_string(),
            headers: vec![],
        }
    } else if let Some(s) = st.scripted.pop_front() {
        s
    } else {
        match received.get("To") {
            None => Scripted::error(400, 21604, "A 'To' phone number is required."),
            Some("+15005550001") => Scripted::error(400, 21211, "Invalid 'To' Phone Number"),
            Some("+15005550004") => {
                Scripted::error(400, 21610, "Attempt to send to unsubscribed recipient")
            }
            Some("+15005550009") => {
                Scripted::error(400, 21614, "'To' number is not a valid mobile number")
            }
            Some(to) => {
                st.next_sid += 1;
                let sid = format!("SM{:032x}", st.next_sid);
                let message = serde_json::json!({
                    "account_sid": ACCOUNT_SID, "api_version": "2010-04-01",
                    "body": received.get("Body").unwrap_or_default(),
                    "date_created": chrono::Utc::now().to_rfc2822(),
                    "date_sent": null, "date_updated": chrono::Utc::now().to_rfc2822(),
                    "direction": "outbound-api", "error_code": null, "error_message": null,
                    "from": received.get("From").unwrap_or_default(), "num_media": "0", "num_segments": "1",
                    "price": null, "price_unit": "USD", "messaging_service_sid": null, "sid": sid,
                    "status": "queued", "to": to,
                    "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
                });
                st.created.push(message.clone());
                Scripted {
                    status: 201,
                    body: message.to_string(),
                    headers: vec![],
                }
            }
        }
    };
    if st.hold && received.method == "POST" {
        st.held += 1;
        while st.hold {
            st = cv.wait(st).unwrap();
        }
        return; // the connection is dropped without an answer
    }
    drop(st);
    let mut resp = tiny_http::Response::from_string(answer.body)
        .with_status_code(answer.status)
        .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap());
    for (k, v) in answer.headers {
        resp = resp.with_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = req.respond(resp);
}

/// A request a [`FakeApi`] received.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    pub fn form(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// How a [`FakeApi`] answers: from the request and those before it, a status and a JSON body, and how long
/// to wait first (longer than the client's timeout loses the answer).
pub type Answering =
    dyn Fn(&ApiRequest, &[ApiRequest]) -> (u16, String, Duration) + Send + Sync + 'static;

/// A provider's REST API on 127.0.0.1, answering as `answer` says (each provider's test writes the real
/// API's answers), recording every request.
pub struct FakeApi {
    pub url: String,
    server: Arc<tiny_http::Server>,
    received: Arc<Mutex<Vec<ApiRequest>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    pub fn start(
        answer: impl Fn(&ApiRequest, &[ApiRequest]) -> (u16, String, Duration) + Send + Sync + 'static,
    ) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let received: Arc<Mutex<Vec<ApiRequest>>> = Arc::default();
        let answer: Arc<Answering> = Arc::new(answer);
        let (s, r) = (Arc::clone(&server), Arc::clone(&received));
        let thread = std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let got = ApiRequest {
                    method: req.method().as_str().to_string(),
                    path: req.url().to_string(),
                    headers: headers_of(&req),
                    body,
                };
                let (status, body, wait) = {
                    let mut all = r.lock().unwrap();
                    let answered = answer(&got, &all);
                    all.push(got);
                    answered
                };
                std::thread::spawn(move || {
                    std::thread::sleep(wait);
                    let resp = tiny_http::Response::from_string(body)
                        .with_status_code(status)
                        .with_header(
                            tiny_http::Header::from_bytes("Content-Type", "application/json")
                                .unwrap(),
                        );
                    let _ = req.respond(resp);
                });
            }
        });
        Self {
            url,
            server,
            received,
            thread: Some(thread),
        }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<ApiRequest> {
        self.received.lock().unwrap().clone()
    }

    /// The requests with this method whose path starts with `prefix`.
    pub fn requests(&self, method: &str, prefix: &str) -> Vec<ApiRequest> {
        self.received()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A post the sink received: its headers and body.
pub type Posted = (Vec<(String, String)>, String);

/// A chat-tool webhook endpoint on 127.0.0.1 that records what it is posted.
pub struct WebhookSink {
    pub url: String,
    server: Arc<tiny_http::Server>,
    posts: Arc<Mutex<Vec<Posted>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookSink {
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
        let posts: Arc<Mutex<Vec<Posted>>> = Arc::default();
        let (s, p) = (Arc::clone(&server), Arc::clone(&posts));
        let thread = std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let headers = headers_of(&req);
                p.lock().unwrap().push((headers, body));
                let _ = req.respond(tiny_http::Response::from_string("ok"));
            }
        });
        Self {
            url,
            server,
            posts,
            thread: Some(thread),
        }
    }

    /// Bodies and headers received so far.
    pub fn posts(&self) -> Vec<Posted> {
        self.posts.lock().unwrap().clone()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// -------------------------------------------------------------------------------------------------------------
// A Web Push service

/// A push request as the fake push service received it.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Pushed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A push service on loopback: 201 for every path except those told to answer 410.
pub struct FakePush {
    pub url: String,
    server: Arc<tiny_http::Server>,
    got: Arc<Mutex<Vec<Pushed>>>,
    gone: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakePush {
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let got: Arc<Mutex<Vec<Pushed>>> = Arc::default();
        let gone: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, g, dead) = (Arc::clone(&server), Arc::clone(&got), Arc::clone(&gone));
        let thread = std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                // What was pushed, for a test in another process (the browser test reads it as JSON).
                if req.method() == &tiny_http::Method::Get && req.url() == "/_received" {
                    let list: Vec<serde_json::Value> = g
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "path": p.path,
                                "headers": p.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                                "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &p.body),
                            })
                        })
                        .collect();
                    let _ = req.respond(tiny_http::Response::from_string(
                        serde_json::Value::Array(list).to_string(),
                    ));
                    continue;
                }
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let path = req.url().to_string();
                let headers = headers_of(&req);
                g.lock().unwrap().push(Pushed {
                    path: path.clone(),
                    headers,
                    body,
                });
                let status = if dead.lock().unwrap().contains(&path) {
                    410
                } else {
                    201
                };
                let _ = req.respond(tiny_http::Response::empty(status));
            }
        });
        Self {
            url,
            server,
            got,
            gone,
            thread: Some(thread),
        }
    }

    pub fn to(&self, path: &str) -> Vec<Pushed> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.path == path)
            .cloned()
            .collect()
    }

    pub fn answer_gone(&self, path: &str) {
        self.gone.lock().unwrap().push(path.to_string());
    }
}

impl Drop for FakePush {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// -------------------------------------------------------------------------------------------------------------
// The appliance under test

/// The textback binary running on a temp config and database.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub url: String,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

/// Tests run at any hour: the business is open all week.
pub const ALL_WEEK: &str = r#"[business.hours]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]
"#;

/// The default test config: a Twilio business pointed at the fake API, texting after `delay`.
pub fn twilio_config(api_base: &str, delay: &str, extra_business: &str) -> String {
    let providers = format!(
        r#"[providers.main]
kind = "twilio"
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"
api_base = "{api_base}"
messaging_base = "{api_base}"
# Tests do not wait out production delays: a second to settle, retries from 200 ms.
settle_time = "1s"
retry_backoff = "200ms""#
    );
    config_with(&providers, delay, extra_business)
}

/// A config with the `[providers...]` tables `providers` and the business "acme" on them, texting after
/// `delay`, with `extra_business` keys (a `ring_timeout` there replaces the default one).
pub fn config_with(providers: &str, delay: &str, extra_business: &str) -> String {
    let ring = if extra_business.contains("ring_timeout") {
        ""
    } else {
        "ring_timeout = \"20s\"\n"
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"

[storage]
database = "textback.db"

[log]
level = "debug"

{providers}

[[business]]
id = "acme"
name = "Acme HVAC"
numbers = ["{BUSINESS_NUMBER}"]
forward_to = ["{STAFF_NUMBER}"]
timezone = "America/Phoenix"
text_delay = "{delay}"
{ring}short_call = "5s"
repeat_window = "24h"
script = "direct_question"
# Tests run at any hour: open all week, no quiet hours, no follow-ups unless a test adds them.
quiet_hours = ""
send_rate = 50.0
follow_ups = []
{extra_business}

{ALL_WEEK}"#
    )
}

impl TestServer {
    /// Writes `config` to a temp dir and starts `textback serve` on it.
    pub fn start(config: &str) -> Self {
        Self::start_with_env(config, &[])
    }

    /// `textback serve` on the `textback.toml` already in `dir`.
    pub fn start_in(dir: tempfile::TempDir) -> Self {
        let config = dir.path().join("textback.toml");
        let mut s = Self {
            dir,
            config,
            url: String::new(),
            child: None,
            env: Vec::new(),
        };
        s.spawn();
        s
    }

    /// [`TestServer::start`] with extra environment variables (systemd's NOTIFY_SOCKET, say).
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("textback.toml");
        std::fs::write(&path, config).unwrap();
        let mut s = Self {
            dir,
            config: path,
            url: String::new(),
            child: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        };
        s.spawn();
        s
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; its exit status, or `None` (then it
    /// is killed).
    pub fn terminate_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_textback"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().map(Result::unwrap).unwrap_or_default();
        let Some(addr) = first.split("listening on ").nth(1) else {
            let _ = child.kill();
            panic!("server did not start: {first:?}\n{}", self.log());
        };
        self.url = addr.trim().to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kills the server with SIGKILL (no shutdown at all) and waits for it to die.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Stops with SIGTERM and waits; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same config and database.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("textback.db")
    }

    /// Runs a query returning one integer against the database.
    pub fn count(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Runs a query returning one text value (or None).
    pub fn text(&self, sql: &str) -> Option<String> {
        let conn = rusqlite::Connection::open_with_flags(
            self.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).ok()
    }

    /// Posts a webhook signed as Twilio would sign it for this server's public URL.
    pub fn post_signed(&self, path: &str, params: &[(&str, &str)]) -> Response {
        self.post_signed_with(path, params, AUTH_TOKEN, PUBLIC_URL, &[])
    }

    /// Posts a webhook signed with `token` over `public` + `path`, with extra headers.
    pub fn post_signed_with(
        &self,
        path: &str,
        params: &[(&str, &str)],
        token: &str,
        public: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let sig = textback::providers::twilio::signature(token, &format!("{public}{path}"), &owned);
        let mut all = vec![("X-Twilio-Signature", sig.as_str())];
        all.extend_from_slice(headers);
        self.post_form(path, params, &all)
    }

    /// Posts a form with the given headers (no signature unless given).
    pub fn post_form(
        &self,
        path: &str,
        params: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = ureq::post(&format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        response(req.send_form(params))
    }

    /// Posts a raw body with a content type.
    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = ureq::post(&format!("{}{path}", self.url)).set("Content-Type", content_type);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        response(req.send_string(body))
    }

    pub fn get(&self, path: &str) -> Response {
        response(ureq::get(&format!("{}{path}", self.url)).call())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        self.kill9();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

fn response(r: Result<ureq::Response, ureq::Error>) -> Response {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    Response {
        status: resp.status(),
        content_type: resp.header("Content-Type").unwrap_or_default().to_string(),
        body: resp.into_string().unwrap(),
    }
}

/// A request's headers as (name, value) pairs, for the fakes to record.
fn headers_of(req: &tiny_http::Request) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect()
}

// -------------------------------------------------------------------------------------------------------------
// Webhook shapes

pub fn voice(call_sid: &str, from: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", ACCOUNT_SID.into()),
        ("ApiVersion", "2010-04-01".into()),
        ("CallSid", call_sid.into()),
        ("CallStatus", "ringing".into()),
        ("Direction", "inbound".into()),
        ("From", from.into()),
        ("To", BUSINESS_NUMBER.into()),
        ("Caller", from.into()),
        ("Called", BUSINESS_NUMBER.into()),
    ]
}

/// A Twilio recording callback for a call's voicemail at `url`.
pub fn recording(call_sid: &str, from: &str, url: &str) -> Vec<(&'static str, String)> {
    let mut rec = voice(call_sid, from);
    rec.push(("RecordingUrl", url.into()));
    rec.push(("RecordingSid", "RE1".into()));
    rec
}

pub fn borrow<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

impl TestServer {
    /// The voice webhook for a call from `from`.
    pub fn ring(&self, call_sid: &str, from: &str) -> Response {
        self.post_signed("/hooks/twilio/voice", &borrow(&voice(call_sid, from)))
    }

    /// The dial action: the forwarded leg ended with `status` (and `duration` when answered).
    pub fn dial_ended(
        &self,
        call_sid: &str,
        from: &str,
        status: &str,
        duration: Option<u64>,
    ) -> Response {
        let mut p = voice(call_sid, from);
        p.retain(|(k, _)| *k != "CallStatus");
        p.push(("CallStatus", "in-progress".into()));
        p.push(("DialCallSid", format!("{call_sid}-leg")));
        p.push(("DialCallStatus", status.into()));
        if let Some(d) = duration {
            p.push(("DialCallDuration", d.to_string()));
        }
        self.post_signed("/hooks/twilio/dial", &borrow(&p))
    }

    /// The call status callback.
    pub fn call_status(&self, call_sid: &str, from: &str, status: &str, duration: u64) -> Response {
        let mut p = voice(call_sid, from);
        p.retain(|(k, _)| *k != "CallStatus");
        p.push(("CallStatus", status.into()));
        p.push(("CallDuration", duration.to_string()));
        self.post_signed("/hooks/twilio/call-status", &borrow(&p))
    }

    /// A missed call the usual way: ringing, dial action no-answer, then status completed.
    pub fn missed_call(&self, call_sid: &str, from: &str) {
        assert_eq!(self.ring(call_sid, from).status, 200);
        assert_eq!(
            self.dial_ended(call_sid, from, "no-answer", None).status,
            200
        );
        assert_eq!(
            self.call_status(call_sid, from, "completed", 21).status,
            200
        );
    }

    /// An inbound text.
    pub fn text_in(&self, message_sid: &str, from: &str, body: &str) -> Response {
        self.post_signed(
            "/hooks/twilio/sms",
            &[
                ("AccountSid", ACCOUNT_SID),
                ("ApiVersion", "2010-04-01"),
                ("Body", body),
                ("From", from),
                ("MessageSid", message_sid),
                ("NumMedia", "0"),
                ("SmsStatus", "received"),
                ("To", BUSINESS_NUMBER),
            ],
        )
    }

    /// A delivery receipt.
    pub fn receipt(
        &self,
        message_sid: &str,
        to: &str,
        status: &str,
        error: Option<&str>,
    ) -> Response {
        let mut p = vec![
            ("AccountSid", ACCOUNT_SID),
            ("ApiVersion", "2010-04-01"),
            ("From", BUSINESS_NUMBER),
            ("MessageSid", message_sid),
            ("MessageStatus", status),
            ("SmsSid", message_sid),
            ("SmsStatus", status),
            ("To", to),
        ];
        if let Some(e) = error {
            p.push(("ErrorCode", e));
        }
        self.post_signed("/hooks/twilio/message-status", &p)
    }
}

/// Runs the textback CLI with args in `dir`; returns (exit code, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(args)
        .current_dir(dir)
        .env_remove("TEXTBACK_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The password test users get.
pub const PASSWORD: &str = "correct horse battery";

/// Creates an admin user with `textback user add`, the password on standard input.
pub fn add_user(s: &TestServer, name: &str, args: &[&str]) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["user", "add", name, "--config", s.config.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two businesses, as an agency would run them.
pub fn agency(api: &str) -> String {
    let mut config = twilio_config(api, "0s", "");
    config.push_str(
        r#"
[[business]]
id = "bolt"
name = "Bolt Locksmiths"
numbers = ["+16025550300"]
forward_to = ["+16025550399"]
quiet_hours = ""
send_rate = 50.0
follow_ups = []
"#,
    );
    config
}

/// A bearer token for `user`, made with `textback token create`.
pub fn create_token(s: &TestServer, user: &str) -> String {
    let cfg = s.config.to_str().unwrap().to_string();
    let (code, out, err) = cli(
        s.dir.path(),
        &[
            "token", "create", "zapier", "--user", user, "--config", &cfg,
        ],
    );
    assert_eq!(code, 0, "{err}");
    out.lines().next().unwrap().trim().to_string()
}

/// A GET on the JSON API; the status and the JSON.
pub fn api(s: &TestServer, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = ureq::get(&format!("{}{path}", s.url));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let resp = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    (
        status,
        serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
    )
}

/// The value of the first hidden or text field named `name` in a page.
pub fn form_value(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field"))
        + marker.len();
    body[at..].split('"').next().unwrap().to_string()
}

/// A config on the simulator provider, open all week, texting at once.
pub fn simulator_config() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[providers.simulator]
kind = "simulator"
[[business]]
id = "demo"
name = "Demo Plumbing"
numbers = ["+16025550100"]
forward_to = ["+16025550199"]
text_delay = "0s"
quiet_hours = ""
{ALL_WEEK}"#
    )
}

// -------------------------------------------------------------------------------------------------------------
// The admin UI as a browser sees it

/// A browser without redirects, keeping its cookies.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub agent: ureq::Agent,
    pub cookies: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Browser {
    pub fn new(s: &TestServer) -> Self {
        Self::at(&s.url)
    }

    /// A browser for a server started some other way.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_string(),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            cookies: Vec::new(),
        }
    }

    pub fn keep(&mut self, page: &Page) {
        for c in &page.set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn answer(r: Result<ureq::Response, ureq::Error>) -> Page {
        let resp = match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| (n.clone(), resp.header(&n).unwrap_or_default().to_string()))
            .collect();
        Page {
            status: resp.status(),
            location: resp.header("Location").map(str::to_string),
            set_cookies: resp
                .all("Set-Cookie")
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            headers,
            // minijinja escapes "/" in text as an entity; a browser reads it back as "/".
            body: resp.into_string().unwrap().replace("&#x2f;", "/"),
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        let page = Self::answer(
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie_header())
                .call(),
        );
        self.keep(&page);
        page
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let page = Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie_header())
                .send_form(form),
        );
        self.keep(&page);
        page
    }

    pub fn post_json(&mut self, path: &str, json: &serde_json::Value) -> Page {
        let page = Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie_header())
                .send_json(json),
        );
        self.keep(&page);
        page
    }

    pub fn csrf(page: &Page) -> String {
        form_value(&page.body, "csrf")
    }

    pub fn login(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/login");
        let csrf = Self::csrf(&form);
        self.post(
            "/login",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
    }
}

/// The wall clock in unix seconds, for signing timestamped requests.
pub fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// An RFC 3339 time as unix milliseconds, for manual clocks.
pub fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// The scheduler in-process on a manual clock at `start` (unix ms), over a config written as `text` and a
/// database in `dir`: periodic work is checked by moving the clock, not by waiting.
pub fn manual_scheduler(
    dir: &tempfile::TempDir,
    text: &str,
    start: i64,
) -> (
    textback::scheduler::Deps,
    std::sync::Arc<textback::clock::ManualClock>,
) {
    let config = textback::config::parse(text, None, &textback::providers::rules()).unwrap();
    let store = textback::store::Store::open(&dir.path().join("t.db")).unwrap();
    let providers = textback::providers::Providers::from_config(
        &config,
        &textback::providers::SimulatorToken::default(),
    );
    let clock = std::sync::Arc::new(textback::clock::ManualClock::new(start));
    let deps = textback::scheduler::Deps::new(
        store,
        providers,
        textback::config::Shared::new(config),
        "https://textback.example.com".into(),
        clock.clone(),
    );
    (deps, clock)
}

/// Moves the clock to `when` (unix ms), queues periodic work and does what is due, as the scheduler loop
/// does. Two passes: periodic work (a digest) queues its emails due at once, and the second pass sends them.
pub fn tick(deps: &textback::scheduler::Deps, clock: &textback::clock::ManualClock, when: i64) {
    clock.set(when);
    textback::scheduler::periodic(deps, when);
    textback::scheduler::run_due(deps, when).unwrap();
    textback::scheduler::run_due(deps, when).unwrap();
}
