//! Setting a Twilio (or SignalWire) number up from here, through the REST API (INTEGRATIONS.md §2):
//!
//! - find the number: `GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PhoneNumber=%2B…`;
//! - point it at this server: `POST …/IncomingPhoneNumbers/{PN…}.json` with `VoiceUrl`, `StatusCallback` and
//!   `SmsUrl` (POST), only the fields that differ, so running it twice changes nothing;
//! - refuse, saying what to change, where the number's configuration would ignore those URLs: a TwiML App
//!   (`voice_application_sid`, `sms_application_sid`), an Elastic SIP Trunk (`trunk_sid`), or a Messaging
//!   Service whose own inbound webhook wins (`use_inbound_webhook_on_number` false);
//! - A2P 10DLC: the number's Messaging Service, its `us_app_to_person_registered`, a campaign
//!   `VERIFIED` in `Compliance/Usa2p`, and its brand `APPROVED` (Twilio only; SignalWire keeps its own
//!   registry, not checked here).

use super::twilio::Twilio;
use super::{Change, Check, NumberPlan, NumberSetup, SetupError, Wants};
use serde_json::Value;
use std::time::SystemTime;

/// How many pages of Messaging Services to look through for a number (50 a page).
const MAX_SERVICE_PAGES: usize = 20;

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Toll-free area codes: those numbers are verified for texting, not registered for 10DLC.
fn toll_free(number: &str) -> bool {
    ["800", "833", "844", "855", "866", "877", "888"]
        .iter()
        .any(|a| number.starts_with(&format!("+1{a}")))
}

impl Twilio {
    fn provider(&self) -> &'static str {
        self.signing.provider
    }

    fn refused(&self, status: u16, body: &str) -> SetupError {
        let message = serde_json::from_str::<Value>(body)
            .ok()
            .map(|v| text(&v, "message"))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("HTTP {status}"));
        SetupError::Refused(match status {
            401 | 403 => format!(
                "{} refused the account's credentials (HTTP {status}: {message}): check the account id and its token in textback.toml",
                self.provider()
            ),
            _ => format!("{} answered HTTP {status}: {message}", self.provider()),
        })
    }

    /// A GET with the account's credentials: the JSON and the provider's `Date`.
    fn get(&self, url: &str) -> Result<(Value, Option<SystemTime>), SetupError> {
        match self
            .agent
            .get(url)
            .set("Authorization", &self.authorization())
            .call()
        {
            Ok(resp) => {
                let date = resp
                    .header("Date")
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .map(SystemTime::from);
                let value = resp.into_json::<Value>().map_err(|e| {
                    SetupError::Unreachable(format!("{} answered nonsense: {e}", self.provider()))
                })?;
                Ok((value, date))
            }
            Err(ureq::Error::Status(status, resp)) => {
                Err(self.refused(status, &resp.into_string().unwrap_or_default()))
            }
            Err(ureq::Error::Transport(t)) => Err(SetupError::Unreachable(format!(
                "cannot reach {}: {t}",
                self.provider()
            ))),
        }
    }

    fn accounts_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}", self.api_base, self.account_sid)
    }

    /// The number's resource in the account.
    fn find(&self, number: &str) -> Result<Value, SetupError> {
        let encoded: String = form_urlencoded::byte_serialize(number.as_bytes()).collect();
        let (list, _) = self.get(&format!(
            "{}/IncomingPhoneNumbers.json?PhoneNumber={encoded}",
            self.accounts_url()
        ))?;
        list.get("incoming_phone_numbers")
            .and_then(Value::as_array)
            .and_then(|items| items.iter().find(|n| text(n, "phone_number") == number))
            .cloned()
            .ok_or_else(|| {
                SetupError::Refused(format!(
                    "{number} is not a number of the {} account {}: buy or port it into that account, or correct `numbers` in textback.toml",
                    self.provider(),
                    self.account_sid
                ))
            })
    }

    /// The Messaging Service that holds the number `pn` (a `PN…` id), if any. Twilio has no reverse lookup:
    /// each service's numbers are listed.
    fn service_of(&self, pn: &str) -> Result<Option<Value>, SetupError> {
        let Some(base) = &self.messaging_base else {
            return Ok(None);
        };
        let mut next = Some(format!("{base}/v1/Services?PageSize=50"));
        for _ in 0..MAX_SERVICE_PAGES {
            let Some(url) = next.take() else { break };
            let (page, _) = self.get(&url)?;
            for service in page
                .get("services")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let sid = text(service, "sid");
                let (numbers, _) = self.get(&format!(
                    "{base}/v1/Services/{sid}/PhoneNumbers?PageSize=1000"
                ))?;
                let holds = numbers
                    .get("phone_numbers")
                    .and_then(Value::as_array)
                    .is_some_and(|list| list.iter().any(|n| text(n, "sid") == pn));
                if holds {
                    return Ok(Some(service.clone()));
                }
            }
            // The credentials go only where they came from: a next page elsewhere is not followed.
            next = page
                .get("meta")
                .and_then(|m| m.get("next_page_url"))
                .and_then(Value::as_str)
                .filter(|u| u.starts_with(&format!("{base}/")))
                .map(str::to_string);
        }
        Ok(None)
    }

    fn wanted(&self, wants: Wants) -> Vec<(&'static str, &'static str, String)> {
        let mut out = Vec::new();
        if wants.calls {
            out.push(("VoiceUrl", "voice_url", format!("{}/voice", self.hooks)));
            out.push(("VoiceMethod", "voice_method", "POST".into()));
            out.push((
                "StatusCallback",
                "status_callback",
                format!("{}/call-status", self.hooks),
            ));
            out.push((
                "StatusCallbackMethod",
                "status_callback_method",
                "POST".into(),
            ));
        }
        if wants.texts {
            out.push(("SmsUrl", "sms_url", format!("{}/sms", self.hooks)));
            out.push(("SmsMethod", "sms_method", "POST".into()));
        }
        out
    }
}

impl NumberSetup for Twilio {
    fn account(&self) -> Result<Option<SystemTime>, SetupError> {
        let (_, date) = self.get(&format!("{}.json", self.accounts_url()))?;
        Ok(date)
    }

    fn plan(
        &self,
        number: &str,
        wants: Wants,
        _managed: &[String],
    ) -> Result<NumberPlan, SetupError> {
        let found = self.find(number)?;
        let id = text(&found, "sid");
        let changes = self
            .wanted(wants)
            .into_iter()
            .filter_map(|(field, key, wanted)| {
                let now = text(&found, key);
                let same = if field.ends_with("Method") {
                    now.eq_ignore_ascii_case(&wanted)
                } else {
                    now == wanted
                };
                (!same).then(|| Change {
                    target: id.clone(),
                    field,
                    now,
                    wanted,
                })
            })
            .collect();
        let mut blockers = Vec::new();
        let set = |key: &str| Some(text(&found, key)).filter(|v| !v.is_empty());
        if wants.calls {
            if let Some(app) = set("voice_application_sid") {
                blockers.push(format!(
                    "its calls go to the TwiML App {app} (VoiceApplicationSid), which overrides VoiceUrl: in the console, configure the number's voice with \"Webhook\" instead of the TwiML App"
                ));
            }
            if let Some(trunk) = set("trunk_sid") {
                blockers.push(format!(
                    "it belongs to the Elastic SIP Trunk {trunk} (TrunkSid), which takes its calls: remove it from the trunk, or have the PBX behind the trunk report missed calls (kind = \"pbx\") and connect only its texts"
                ));
            }
        }
        if wants.texts {
            if let Some(app) = set("sms_application_sid") {
                blockers.push(format!(
                    "its texts go to the TwiML App {app} (SmsApplicationSid), which overrides SmsUrl: in the console, configure the number's messaging with \"Webhook\""
                ));
            }
            // Credentials that may not read Messaging Services (a restricted API key) cannot tell; the
            // doctor's 10DLC check says so.
            let service = match self.service_of(&id) {
                Ok(service) => service,
                Err(SetupError::Refused(why)) if why.contains("HTTP 403") => None,
                Err(e) => return Err(e),
            };
            if let Some(service) = service {
                let defers = service
                    .get("use_inbound_webhook_on_number")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if !defers {
                    blockers.push(format!(
                        "it is in the Messaging Service {} ({}), whose own incoming-message webhook receives its texts: in the service's Integration settings choose \"Defer to sender's webhook\" (UseInboundWebhookOnNumber), or set the service's incoming-message webhook to {}/sms",
                        text(&service, "sid"),
                        text(&service, "friendly_name"),
                        self.hooks
                    ));
                }
            }
        }
        Ok(NumberPlan {
            number: number.to_string(),
            id,
            changes,
            blockers,
        })
    }

    fn apply(&self, plan: &NumberPlan) -> Result<(), SetupError> {
        if !plan.blockers.is_empty() {
            return Err(SetupError::Refused(plan.blockers.join("; ")));
        }
        if plan.changes.is_empty() {
            return Ok(());
        }
        let fields: Vec<(&str, &str)> = plan
            .changes
            .iter()
            .map(|c| (c.field, c.wanted.as_str()))
            .collect();
        let url = format!(
            "{}/IncomingPhoneNumbers/{}.json",
            self.accounts_url(),
            plan.id
        );
        match self
            .agent
            .post(&url)
            .set("Authorization", &self.authorization())
            .send_form(&fields)
        {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(status, resp)) => {
                Err(self.refused(status, &resp.into_string().unwrap_or_default()))
            }
            Err(ureq::Error::Transport(t)) => Err(SetupError::Unreachable(format!(
                "cannot reach {}: {t}",
                self.provider()
            ))),
        }
    }

    fn a2p(&self, number: &str) -> Vec<Check> {
        if !number.starts_with("+1") {
            return vec![Check::ok(format!(
                "{number}: A2P 10DLC registration applies to US numbers only"
            ))];
        }
        if toll_free(number) {
            return vec![Check::warn(
                format!("{number} is toll-free: US carriers filter its texts until it is verified"),
                "submit toll-free verification in the console (Messaging, Regulatory Compliance)",
            )];
        }
        let Some(base) = self.messaging_base.clone() else {
            return vec![Check::warn(
                format!(
                    "{number}: 10DLC registration is not checked from here for {}",
                    self.provider()
                ),
                "make sure the number is in a registered 10DLC campaign in your space",
            )];
        };
        let register = "register a brand and a campaign in the console; `textback 10dlc` writes the campaign text to paste";
        let result = (|| -> Result<Vec<Check>, SetupError> {
            let found = self.find(number)?;
            let Some(service) = self.service_of(&text(&found, "sid"))? else {
                return Ok(vec![Check::warn(
                    format!("{number} is in no Messaging Service: US carriers filter unregistered 10DLC texts (error 30034)"),
                    format!("add it to a Messaging Service with a registered campaign; {register}"),
                )]);
            };
            let sid = text(&service, "sid");
            if service
                .get("us_app_to_person_registered")
                .and_then(Value::as_bool)
                == Some(false)
            {
                return Ok(vec![Check::warn(
                    format!("{number}: its Messaging Service {sid} is not registered for A2P 10DLC: US carriers filter its texts"),
                    register,
                )]);
            }
            let (compliance, _) =
                self.get(&format!("{base}/v1/Services/{sid}/Compliance/Usa2p"))?;
            let campaigns: Vec<Value> = compliance
                .get("compliance")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let Some(campaign) = campaigns
                .iter()
                .find(|c| text(c, "campaign_status") == "VERIFIED")
                .or_else(|| campaigns.first())
            else {
                return Ok(vec![Check::warn(
                    format!("{number}: its Messaging Service {sid} has no 10DLC campaign: US carriers filter its texts"),
                    register,
                )]);
            };
            let status = text(campaign, "campaign_status");
            let mut checks = vec![if status == "VERIFIED" {
                Check::ok(format!(
                    "{number}: 10DLC campaign {} verified",
                    text(campaign, "campaign_id")
                ))
            } else {
                Check::warn(
                    format!("{number}: its 10DLC campaign is {status}, not verified yet: US carriers filter its texts until it is"),
                    "wait for the review (often several business days), or see the campaign's errors in the console",
                )
            }];
            let brand = text(campaign, "brand_registration_sid");
            if !brand.is_empty() {
                let (b, _) = self.get(&format!("{base}/v1/a2p/BrandRegistrations/{brand}"))?;
                let status = text(&b, "status");
                checks.push(if status == "APPROVED" {
                    Check::ok(format!("{number}: 10DLC brand {brand} approved"))
                } else {
                    Check::warn(
                        format!("{number}: its 10DLC brand {brand} is {status}"),
                        "see the brand's feedback in the console (Messaging, Regulatory Compliance)",
                    )
                });
            }
            Ok(checks)
        })();
        result.unwrap_or_else(|e| {
            vec![Check::warn(
                format!("{number}: 10DLC registration could not be checked: {e}"),
                "check it in the console",
            )]
        })
    }
}
