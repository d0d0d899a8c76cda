//! `textback 10dlc`: a business's A2P 10DLC campaign registration, written from its configuration so the
//! operator pastes it into the Twilio console (fields and limits: INTEGRATIONS.md §2.5), and checked against
//! the reasons campaigns get rejected (§2.6). Pure: it reads the configuration and renders the scripts.

use crate::config::BusinessConfig;
use crate::providers::{Check, Level};
use serde::Serialize;

/// The campaign registration, field by field, as `POST /v1/Services/{MessagingServiceSid}/Compliance/Usa2p`
/// names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Campaign {
    /// The use case: conversations with people who called, about what they called for.
    pub us_app_to_person_usecase: &'static str,
    /// What the campaign does: who sends, who receives, and why (40-4096 characters).
    pub description: String,
    /// How people opt in: here, by calling the business (40-2048 characters).
    pub message_flow: String,
    /// 2 to 5 real messages, 20-1024 characters each.
    pub message_samples: Vec<String>,
    /// A sample holds a link.
    pub has_embedded_links: bool,
    /// A sample holds a phone number.
    pub has_embedded_phone: bool,
    /// Words that opt back in.
    pub opt_in_keywords: Vec<&'static str>,
    /// The answer to them (20-320 characters).
    pub opt_in_message: String,
    /// Words that opt out.
    pub opt_out_keywords: Vec<&'static str>,
    /// The answer to them (20-320 characters).
    pub opt_out_message: String,
    /// Words that ask for help.
    pub help_keywords: Vec<&'static str>,
    /// The answer to them (20-320 characters).
    pub help_message: String,
}

/// A registration and what was checked about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    /// The business it is for.
    pub business: String,
    /// The fields to paste.
    pub campaign: Campaign,
    /// Each limit and rejection reason checked.
    pub checks: Vec<Check>,
}

const OPT_OUT: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];

fn render(template: &str, biz: &BusinessConfig, footer: bool) -> Option<String> {
    let text = crate::script::render(template, &biz.script_fields()).ok()?;
    Some(if footer {
        crate::script::with_opt_out(&text)
    } else {
        text
    })
}

/// Up to 5 real messages: the text-back, the after-hours one, a follow-up, a keyword reply, the HELP
/// answer, each only once.
fn samples(biz: &BusinessConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let candidates = [
        render(&biz.script, biz, true),
        render(&biz.after_hours_script, biz, true),
        biz.follow_ups
            .first()
            .and_then(|f| render(&f.script, biz, true)),
        biz.keywords
            .iter()
            .find_map(|k| k.reply.as_deref())
            .and_then(|r| render(r, biz, false)),
        Some(crate::events::help_text(biz)),
    ];
    for s in candidates.into_iter().flatten() {
        if out.len() < 5 && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn has_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("http://") || lower.contains("https://") || lower.contains("www.")
}

/// A run of 10 or more digits (spaces, dots, dashes and brackets between them allowed) reads as a phone
/// number.
fn has_phone(text: &str) -> bool {
    let mut digits = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 10 {
                return true;
            }
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')' | '+') {
            digits = 0;
        }
    }
    false
}

fn length(what: &str, text: &str, min: usize, max: usize) -> Check {
    let n = text.chars().count();
    if (min..=max).contains(&n) {
        Check::ok(format!("{what}: {n} characters ({min}-{max})"))
    } else {
        Check::fail(
            format!("{what}: {n} characters, outside {min}-{max}"),
            format!("shorten or lengthen it to {min}-{max} characters"),
        )
    }
}

/// The registration for `biz`.
pub fn packet(biz: &BusinessConfig) -> Packet {
    let numbers = biz.numbers.join(", ");
    let delay = humantime::format_duration(biz.text_delay.0).to_string();
    let message_samples = samples(biz);
    let follow = match biz.follow_ups.len() {
        0 => "Further texts are only answers to what the customer writes.".to_string(),
        n => format!(
            "If the customer does not answer, at most {n} follow-up text(s) are sent; any reply, STOP or a booking ends them. Otherwise further texts are answers to what the customer writes."
        ),
    };
    let description = format!(
        "{name} is a local service business. When someone calls {name} at {numbers} and nobody can take the call, {name} sends that caller one text asking what they need, so the job can be booked or the question answered by text. The texts go only to people who called the business themselves, and only about the call they made; staff at {name} continue the conversation by text. Volume follows missed calls: a few to a few dozen a day.",
        name = biz.name
    );
    let message_flow = format!(
        "Consent is given by calling: a customer calls {name} at {numbers}. If the call is missed, {name} texts the calling number once, {delay} later, with its name and how to opt out, e.g. \"{first}\" {follow} Numbers are never bought, shared or imported: only callers' own numbers are texted. Reply STOP (also END, QUIT, CANCEL, UNSUBSCRIBE) to opt out, HELP for help. Msg & data rates may apply.",
        name = biz.name,
        first = message_samples.first().cloned().unwrap_or_default(),
    );
    let campaign = Campaign {
        us_app_to_person_usecase: "CUSTOMER_CARE",
        description,
        message_flow,
        has_embedded_links: message_samples.iter().any(|s| has_link(s)),
        has_embedded_phone: message_samples.iter().any(|s| has_phone(s)),
        message_samples,
        opt_in_keywords: vec!["START", "UNSTOP", "YES"],
        opt_in_message: format!(
            "{}: you're subscribed again to texts about your calls. Reply HELP for help, STOP to opt out. Msg & data rates may apply.",
            biz.name
        ),
        opt_out_keywords: OPT_OUT.to_vec(),
        opt_out_message: crate::events::opt_out_confirmation(biz),
        help_keywords: vec!["HELP", "INFO"],
        help_message: crate::events::help_text(biz),
    };
    let checks = check(biz, &campaign);
    Packet {
        business: biz.id.clone(),
        campaign,
        checks,
    }
}

/// The limits of each field and the usual rejection reasons, checked.
fn check(biz: &BusinessConfig, c: &Campaign) -> Vec<Check> {
    let mut checks = vec![
        length("Description", &c.description, 40, 4096),
        length("MessageFlow", &c.message_flow, 40, 2048),
        length("OptInMessage", &c.opt_in_message, 20, 320),
        length("OptOutMessage", &c.opt_out_message, 20, 320),
        length("HelpMessage", &c.help_message, 20, 320),
    ];
    let n = c.message_samples.len();
    checks.push(if (2..=5).contains(&n) {
        Check::ok(format!("MessageSamples: {n} samples (2-5)"))
    } else {
        Check::fail(
            format!("MessageSamples: {n} sample(s), 2-5 needed"),
            "give the business an after_hours_script or a follow-up different from its script",
        )
    });
    for (i, s) in c.message_samples.iter().enumerate() {
        let check = length(&format!("MessageSamples[{i}]"), s, 20, 1024);
        if check.level != Level::Ok {
            checks.push(check);
        }
    }
    // Error 30893 asks for a sample that names the business and says how to opt out; the first text a
    // caller gets (the text-back) is the one that must, as CTIA asks of any first message.
    let first = c.message_samples.first().map_or("", String::as_str);
    checks.push(
        if first.contains(&biz.name) && first.to_ascii_uppercase().contains("STOP") {
            Check::ok("the text-back names the business and says how to opt out (error 30893)")
        } else {
            Check::fail(
                "the text-back does not both name the business and say \"Reply STOP to opt out\" (error 30893)",
                "put the business's name ({{ name }}) in the script",
            )
        },
    );
    // Error 30889: declared links and phone numbers must show in the samples; they are read from them.
    checks.push(Check::ok(format!(
        "embedded links {}, embedded phone numbers {}: read from the samples, so they match (error 30889)",
        yes_no(c.has_embedded_links),
        yes_no(c.has_embedded_phone)
    )));
    if c.has_embedded_links {
        checks.push(Check::warn(
            "a sample holds a link: reviewers check that it is the business's own domain, not a link shortener",
            "use the business's own booking or website address",
        ));
    }
    // Error 30919: the website must say mobile numbers are not shared or sold.
    checks.push(Check::warn(
        "reviewers open the business's website: it must name the business and have a privacy policy saying mobile opt-in data is never shared or sold (error 30919)",
        "add that sentence to the privacy policy before submitting",
    ));
    checks
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The packet as text, field by field, for pasting.
pub fn render_text(p: &Packet) -> String {
    let c = &p.campaign;
    let mut out = format!(
        "A2P 10DLC campaign registration for {}\n(Twilio console: Messaging, Regulatory Compliance, Campaigns; or POST /v1/Services/{{MessagingServiceSid}}/Compliance/Usa2p)\n\n",
        p.business
    );
    let mut field = |name: &str, value: &str| out.push_str(&format!("{name}:\n{value}\n\n"));
    field(
        "Use case (UsAppToPersonUsecase)",
        c.us_app_to_person_usecase,
    );
    field("Campaign description (Description)", &c.description);
    field("How do end-users consent (MessageFlow)", &c.message_flow);
    for (i, s) in c.message_samples.iter().enumerate() {
        field(&format!("Sample message #{} (MessageSamples)", i + 1), s);
    }
    field(
        "Messages include embedded links (HasEmbeddedLinks)",
        yes_no(c.has_embedded_links),
    );
    field(
        "Messages include phone numbers (HasEmbeddedPhone)",
        yes_no(c.has_embedded_phone),
    );
    field(
        "Opt-in keywords (OptInKeywords)",
        &c.opt_in_keywords.join(", "),
    );
    field("Opt-in message (OptInMessage)", &c.opt_in_message);
    field(
        "Opt-out keywords (OptOutKeywords)",
        &c.opt_out_keywords.join(", "),
    );
    field("Opt-out message (OptOutMessage)", &c.opt_out_message);
    field("Help keywords (HelpKeywords)", &c.help_keywords.join(", "));
    field("Help message (HelpMessage)", &c.help_message);
    let (checks, _) = crate::setup::render_checks(&p.checks);
    out.push_str("Checked against the limits and the usual rejection reasons:\n");
    out.push_str(&checks);
    out.push_str("\nCampaigns are reviewed by hand, often over several business days; `textback doctor` shows when it is verified.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn biz(extra: &str) -> BusinessConfig {
        toml::from_str(&format!(
            "id = \"acme\"\nname = \"Acme HVAC\"\nnumbers = [\"+16025550100\"]\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn the_packet_is_built_from_the_real_scripts_within_the_limits() {
        let p = packet(&biz(""));
        let c = &p.campaign;
        assert!((2..=5).contains(&c.message_samples.len()), "{c:?}");
        assert!(
            c.message_samples[0].starts_with("Hi, this is Acme HVAC."),
            "{c:?}"
        );
        assert!(c
            .message_samples
            .iter()
            .all(|s| (20..=1024).contains(&s.chars().count())));
        assert!(
            c.description.contains("+16025550100")
                && c.message_flow.contains("Consent is given by calling")
        );
        assert!(!c.has_embedded_links && !c.has_embedded_phone);
        assert!(
            p.checks.iter().all(|k| k.level != Level::Fail),
            "{:#?}",
            p.checks
        );
        let json = serde_json::to_value(c).unwrap();
        for key in [
            "UsAppToPersonUsecase",
            "Description",
            "MessageFlow",
            "MessageSamples",
            "HasEmbeddedLinks",
            "HasEmbeddedPhone",
            "OptOutKeywords",
            "HelpMessage",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
    }

    #[test]
    fn links_and_phone_numbers_are_read_from_the_samples() {
        let p = packet(&biz(
            "script = \"booking_link\"\nbooking_link = \"https://book.example.com/acme\"\nafter_hours_script = \"Closed now, {{ name }}. Call 602-555-0100 tomorrow. Reply STOP to opt out.\"",
        ));
        assert!(p.campaign.has_embedded_links, "{:?}", p.campaign);
        assert!(p.campaign.has_embedded_phone, "{:?}", p.campaign);
        assert!(p
            .checks
            .iter()
            .any(|k| k.level == Level::Warn && k.what.contains("holds a link")));
    }

    #[test]
    fn a_script_without_the_business_name_is_flagged() {
        let p = packet(&biz(
            "script = \"Sorry we missed you, what do you need?\"\nafter_hours_script = \"We are closed, what do you need?\"",
        ));
        assert!(
            p.checks
                .iter()
                .any(|k| k.level == Level::Fail && k.what.contains("30893")),
            "{:#?}",
            p.checks
        );
    }

    #[test]
    fn phone_numbers_are_runs_of_ten_digits() {
        let cases = [
            ("call 602-555-0100", true),
            ("call (602) 555 0100", true),
            ("+16025550100", true),
            ("order 12345", false),
            ("2026-11-28 at 10:30", false),
        ];
        for (text, want) in cases {
            assert_eq!(has_phone(text), want, "{text}");
        }
    }
}
