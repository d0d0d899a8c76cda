//! Which country an E.164 number belongs to (ISO 3166 alpha-2), from its calling code and, inside the North
//! American Numbering Plan, its area code. Covers the countries a service business is likely to hear from;
//! a number it cannot place has no country. Pure data; depends on nothing internal.

/// Canadian area codes (NANP +1).
const CANADA: &[u16] = &[
    204, 226, 236, 249, 250, 257, 263, 289, 306, 343, 354, 365, 367, 368, 382, 387, 403, 416, 418,
    428, 431, 437, 438, 450, 460, 468, 474, 506, 514, 519, 548, 579, 581, 584, 587, 600, 604, 613,
    622, 639, 647, 672, 683, 705, 709, 742, 753, 778, 780, 782, 807, 819, 825, 867, 873, 879, 902,
    905, 942,
];

/// Other NANP members and US territories with their own country codes, by area code.
const NANP_OTHERS: &[(u16, &str)] = &[
    (242, "BS"),
    (246, "BB"),
    (264, "AI"),
    (268, "AG"),
    (284, "VG"),
    (340, "VI"),
    (345, "KY"),
    (441, "BM"),
    (473, "GD"),
    (649, "TC"),
    (658, "JM"),
    (664, "MS"),
    (670, "MP"),
    (671, "GU"),
    (684, "AS"),
    (721, "SX"),
    (758, "LC"),
    (767, "DM"),
    (784, "VC"),
    (787, "PR"),
    (809, "DO"),
    (829, "DO"),
    (849, "DO"),
    (868, "TT"),
    (869, "KN"),
    (876, "JM"),
    (939, "PR"),
];

/// Calling codes outside NANP, longest first where they share a prefix.
const CODES: &[(&str, &str)] = &[
    ("351", "PT"),
    ("352", "LU"),
    ("353", "IE"),
    ("354", "IS"),
    ("356", "MT"),
    ("357", "CY"),
    ("358", "FI"),
    ("359", "BG"),
    ("370", "LT"),
    ("371", "LV"),
    ("372", "EE"),
    ("380", "UA"),
    ("381", "RS"),
    ("385", "HR"),
    ("386", "SI"),
    ("420", "CZ"),
    ("421", "SK"),
    ("852", "HK"),
    ("853", "MO"),
    ("886", "TW"),
    ("971", "AE"),
    ("972", "IL"),
    ("966", "SA"),
    ("974", "QA"),
    ("234", "NG"),
    ("254", "KE"),
    ("233", "GH"),
    ("212", "MA"),
    ("20", "EG"),
    ("27", "ZA"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("36", "HU"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("51", "PE"),
    ("52", "MX"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("58", "VE"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("86", "CN"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("7", "RU"),
];

/// The country of an E.164 number such as `+16025550100` (`US`), or `None` when it cannot be placed.
pub fn of(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if let Some(national) = digits.strip_prefix('1') {
        let area: u16 = national.get(..3)?.parse().ok()?;
        if CANADA.contains(&area) {
            return Some("CA");
        }
        if let Some((_, c)) = NANP_OTHERS.iter().find(|(a, _)| *a == area) {
            return Some(c);
        }
        return Some("US");
    }
    CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map(|(_, c)| *c)
}

/// A number as people write it in forms (`(480) 555-0123`, `480.555.0123`, `+1 480 555 0123`,
/// `0044 20 7946 0958`, `020 7946 0958`) in E.164, reading national numbers as numbers of the country of
/// `home` (the business's own E.164 number). `None` when it cannot be one.
pub fn normalize(raw: &str, home: &str) -> Option<String> {
    let trimmed = raw.trim();
    let plus = trimmed.starts_with('+');
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let allowed = |ch: char| ch.is_ascii_digit() || " +-.()/\u{a0}".contains(ch);
    if digits.is_empty() || !trimmed.chars().all(allowed) {
        return None;
    }
    let e164 = if plus {
        format!("+{digits}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else {
        let code = calling_code(home)?;
        if code == "1" {
            match digits.len() {
                10 => format!("+1{digits}"),
                11 if digits.starts_with('1') => format!("+{digits}"),
                _ => return None,
            }
        } else {
            format!("+{code}{}", digits.strip_prefix('0').unwrap_or(&digits))
        }
    };
    crate::model::PhoneNumber::parse(&e164)
        .ok()
        .map(|n| n.as_str().to_string())
}

/// The calling code of an E.164 number (`1` for the North American Numbering Plan), when it is one this
/// table knows.
pub fn calling_code(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if digits.starts_with('1') {
        return Some("1");
    }
    CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map(|(code, _)| *code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_calling_codes() {
        let cases: &[(&str, Option<&str>)] = &[
            ("+16025550100", Some("1")),
            ("+442071838750", Some("44")),
            ("+353015550100", Some("353")),
            ("+4930123456", Some("49")),
            ("+99912345678", None),
            ("16025550100", None),
        ];
        for (n, want) in cases {
            assert_eq!(super::calling_code(n), *want, "{n}");
        }
    }

    #[test]
    fn places_numbers() {
        let cases: &[(&str, Option<&str>)] = &[
            ("+16025550100", Some("US")),
            ("+14165550100", Some("CA")),
            ("+17875550100", Some("PR")),
            ("+18765550100", Some("JM")),
            ("+442071838750", Some("GB")),
            ("+353015550100", Some("IE")),
            ("+61255501000", Some("AU")),
            ("+4930123456", Some("DE")),
            ("+74951234567", Some("RU")),
            ("+99912345678", None),
            ("16025550100", None),
        ];
        for (n, want) in cases {
            assert_eq!(super::of(n), *want, "{n}");
        }
    }

    #[test]
    fn numbers_from_forms_become_e164() {
        let us = "+16025550100";
        let uk = "+442079460000";
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("+14805550123", us, Some("+14805550123")),
            ("(480) 555-0123", us, Some("+14805550123")),
            ("480.555.0123", us, Some("+14805550123")),
            ("1-480-555-0123", us, Some("+14805550123")),
            ("+1 480 555 0123", us, Some("+14805550123")),
            ("555-0123", us, None),
            ("020 7946 0958", uk, Some("+442079460958")),
            ("0044 20 7946 0958", us, Some("+442079460958")),
            ("", us, None),
            ("call me", us, None),
            ("480-555-0123 ext 4", us, None),
        ];
        for (raw, home, want) in cases {
            assert_eq!(super::normalize(raw, home).as_deref(), *want, "{raw}");
        }
    }
}
