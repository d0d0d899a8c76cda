//! The words of outgoing texts: the built-in scripts, custom minijinja templates, the opt-out footer, and
//! GSM-7 / UCS-2 segment counting (what a text costs). Pure functions; depends on nothing internal.

use minijinja::{Environment, UndefinedBehavior};
use std::collections::BTreeMap;

/// The built-in scripts by name. They keep the conversation in text: none promises a call back.
pub const BUILT_IN: [(&str, &str); 3] = [
    (
        "direct_question",
        "Hi, this is {{ name }}. Sorry we missed your call! What can we help you with? \
         Reply here with a few details and we can quote or book you in right by text.",
    ),
    (
        "booking_link",
        "Hi, this is {{ name }}. Sorry we missed your call! You can grab a time that suits you here: \
         {{ booking_link }} - or just reply with what you need and we'll sort it out by text.",
    ),
    (
        "emergency_triage",
        "Hi, this is {{ name }}. Sorry we missed your call. Is this an emergency, or can it wait until \
         morning? Reply EMERGENCY for after-hours dispatch, or tell us what you need and we'll text you \
         first thing.",
    ),
];

/// The opt-out footer added to first texts that do not already say how to opt out.
pub const OPT_OUT_FOOTER: &str = "Reply STOP to opt out.";

/// The longest script source accepted, in characters: a text carries at most 1,600 characters, and a
/// template is not a program.
pub const MAX_SOURCE: usize = 2_000;
/// The longest text a script may render to: the most one SMS (of up to 10 segments) carries.
pub const MAX_OUTPUT: usize = 1_600;
/// Template instructions one render may run. A script substitutes a few fields; this is thousands of times
/// what the longest accepted one needs, and a few milliseconds of work.
const FUEL: u64 = 20_000;

/// The filters a script may use: each keeps a value about its length, so the output stays bounded.
const FILTERS: [&str; 7] = [
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "default",
    "d",
];
/// The tests a script may use.
const TESTS: [&str; 3] = ["defined", "undefined", "none"];

/// Why a script cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// A bare word that is not a built-in script name (most likely a typo).
    #[error("{0:?} is not a built-in script (direct_question, booking_link, emergency_triage); write the text itself for a custom script")]
    UnknownBuiltIn(String),
    /// The template does not parse or uses a field the business does not define.
    #[error("the script template does not render: {0}")]
    Template(String),
    /// The template rendered to nothing.
    #[error("the script renders to an empty text")]
    Empty,
    /// The template is longer than [`MAX_SOURCE`].
    #[error("the script is {0} characters long; at most {MAX_SOURCE} are allowed")]
    TooLong(usize),
    /// The template uses something scripts may not (loops, assignments, arithmetic, other filters).
    #[error("the script uses {0}, which scripts may not: use {{{{ field }}}}, the filters upper, lower, title, capitalize, trim and default, and {{% if %}}")]
    NotAllowed(String),
    /// Rendering took more than its budget of work.
    #[error("the script takes too much work to render")]
    OverBudget,
    /// The rendered text is longer than [`MAX_OUTPUT`].
    #[error("the script renders to {0} characters; one text carries at most {MAX_OUTPUT}")]
    TooLarge(usize),
}

/// The template source for a script setting: a built-in name or the template text itself.
pub fn source(script: &str) -> Result<&str, ScriptError> {
    if let Some((_, text)) = BUILT_IN.iter().find(|(name, _)| *name == script) {
        return Ok(text);
    }
    let looks_like_a_name = !script.is_empty()
        && script
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit());
    if looks_like_a_name {
        return Err(ScriptError::UnknownBuiltIn(script.to_string()));
    }
    Ok(script)
}

/// Renders a script over the business's fields. Undefined fields are errors, so a typo never reaches a caller.
///
/// Scripts are written by operators and staff with settings access, so they are untrusted: a script is
/// checked before it runs to use only field substitution, a few length-keeping filters and `if`, which
/// bounds its output by its own length (no loops, assignments or string arithmetic, which could take
/// minutes or gigabytes); it runs on a fuel budget; and what it renders must fit in one text.
pub fn render(script: &str, fields: &BTreeMap<String, String>) -> Result<String, ScriptError> {
    let src = source(script)?;
    let chars = src.chars().count();
    if chars > MAX_SOURCE {
        return Err(ScriptError::TooLong(chars));
    }
    check(src)?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    let out = env.render_str(src, fields).map_err(|e| {
        if e.kind() == minijinja::ErrorKind::OutOfFuel {
            return ScriptError::OverBudget;
        }
        let mut why = template_error(&e);
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            why.push_str(&format!(" (the fields are {})", names.join(", ")));
        }
        ScriptError::Template(why)
    })?;
    let out = collapse_spaces(out.trim());
    if out.is_empty() {
        return Err(ScriptError::Empty);
    }
    let len = out.chars().count();
    if len > MAX_OUTPUT {
        return Err(ScriptError::TooLarge(len));
    }
    Ok(out)
}

/// Refuses a template that uses anything beyond field substitution, the allowed filters and tests,
/// comparisons, `and`/`or`/`not` and `if`.
fn check(src: &str) -> Result<(), ScriptError> {
    use minijinja::machinery::ast::Stmt;
    let tree = minijinja::machinery::parse(
        src,
        "script",
        minijinja::syntax::SyntaxConfig,
        minijinja::machinery::WhitespaceConfig::default(),
    )
    .map_err(|e| ScriptError::Template(template_error(&e)))?;
    fn stmts(list: &[Stmt<'_>]) -> Result<(), ScriptError> {
        list.iter().try_for_each(stmt)
    }
    fn stmt(s: &Stmt<'_>) -> Result<(), ScriptError> {
        match s {
            Stmt::Template(t) => stmts(&t.children),
            Stmt::EmitRaw(_) => Ok(()),
            Stmt::EmitExpr(e) => expr(&e.expr),
            Stmt::IfCond(i) => {
                expr(&i.expr)?;
                stmts(&i.true_body)?;
                stmts(&i.false_body)
            }
            Stmt::ForLoop(_) => Err(not_allowed("{% for %}")),
            Stmt::Set(_) | Stmt::SetBlock(_) => Err(not_allowed("{% set %}")),
            _ => Err(not_allowed("a block statement other than {% if %}")),
        }
    }
    fn expr(e: &minijinja::machinery::ast::Expr<'_>) -> Result<(), ScriptError> {
        use minijinja::machinery::ast::{BinOpKind, CallArg, Expr};
        let args = |list: &[CallArg<'_>]| {
            list.iter().try_for_each(|a| match a {
                CallArg::Pos(x) | CallArg::Kwarg(_, x) => expr(x),
                _ => Err(not_allowed("argument unpacking")),
            })
        };
        match e {
            Expr::Var(_) | Expr::Const(_) => Ok(()),
            Expr::UnaryOp(u) => expr(&u.expr),
            Expr::BinOp(b) => match b.op {
                BinOpKind::ScAnd
                | BinOpKind::ScOr
                | BinOpKind::Eq
                | BinOpKind::Ne
                | BinOpKind::Lt
                | BinOpKind::Lte
                | BinOpKind::Gt
                | BinOpKind::Gte => {
                    expr(&b.left)?;
                    expr(&b.right)
                }
                _ => Err(not_allowed("arithmetic or joining (+ - * / ~ in)")),
            },
            Expr::Compare(c) => {
                expr(&c.expr)?;
                c.ops.iter().try_for_each(|o| expr(&o.expr))
            }
            Expr::IfExpr(i) => {
                expr(&i.test_expr)?;
                expr(&i.true_expr)?;
                i.false_expr.as_ref().map_or(Ok(()), expr)
            }
            Expr::Filter(f) if FILTERS.contains(&f.name) => {
                f.expr.as_ref().map_or(Ok(()), expr)?;
                args(&f.args)
            }
            Expr::Filter(f) => Err(not_allowed(&format!("the filter {}", f.name))),
            Expr::Test(t) if TESTS.contains(&t.name) => {
                expr(&t.expr)?;
                args(&t.args)
            }
            Expr::Test(t) => Err(not_allowed(&format!("the test {}", t.name))),
            Expr::Call(_) => Err(not_allowed("a function call")),
            Expr::List(_) | Expr::Map(_) => Err(not_allowed("a list or map")),
            Expr::Slice(_) | Expr::GetAttr(_) | Expr::GetItem(_) => {
                Err(not_allowed("attribute or item access"))
            }
        }
    }
    stmt(&tree)
}

fn not_allowed(what: &str) -> ScriptError {
    ScriptError::NotAllowed(what.to_string())
}

fn template_error(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{} ({d})", e.kind()),
        None => e.kind().to_string(),
    }
}

fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        if c == ' ' {
            if !last_space {
                out.push(c);
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// Whether a text already tells the reader how to opt out.
pub fn has_opt_out_language(body: &str) -> bool {
    let lower = body.to_lowercase();
    [
        "reply stop",
        "text stop",
        "opt out",
        "opt-out",
        "unsubscribe",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

/// Appends the opt-out footer unless the text already has opt-out language.
pub fn with_opt_out(body: &str) -> String {
    if has_opt_out_language(body) {
        body.to_string()
    } else {
        format!("{} {OPT_OUT_FOOTER}", body.trim_end())
    }
}

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The GSM 03.38 7-bit alphabet: 160 characters in one segment, 153 per part.
    Gsm7,
    /// UTF-16: 70 units in one segment, 67 per part.
    Ucs2,
}

/// The size of a text as carriers count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// The encoding the whole text needs.
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Billable segments.
    pub count: usize,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Counts segments: a single character outside GSM-7 makes the whole text UCS-2; extension characters cost
/// two septets; escape pairs and surrogate pairs are never split across parts.
pub fn segments(body: &str) -> Segments {
    let gsm: Option<Vec<usize>> = body
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect();
    match gsm {
        Some(costs) => pack(Encoding::Gsm7, &costs, 160, 153),
        None => {
            let costs: Vec<usize> = body.chars().map(char::len_utf16).collect();
            pack(Encoding::Ucs2, &costs, 70, 67)
        }
    }
}

fn pack(encoding: Encoding, costs: &[usize], single: usize, part: usize) -> Segments {
    let units: usize = costs.iter().sum();
    if units <= single {
        return Segments {
            encoding,
            units,
            count: usize::from(units > 0),
        };
    }
    let mut count = 1;
    let mut used = 0;
    for &c in costs {
        if used + c > part {
            count += 1;
            used = 0;
        }
        used += c;
    }
    Segments {
        encoding,
        units,
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("name".into(), "Acme HVAC".into());
        f.insert(
            "booking_link".into(),
            "https://book.example.com/acme".into(),
        );
        f.insert("area".into(), "Phoenix".into());
        f
    }

    #[test]
    fn renders_built_in_and_custom_scripts() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            (
                "direct_question",
                Ok("Hi, this is Acme HVAC. Sorry we missed your call! What can we help you with?"),
            ),
            ("booking_link", Ok("https://book.example.com/acme")),
            ("emergency_triage", Ok("Reply EMERGENCY")),
            (
                "Hi from {{ name }} in {{ area }}!",
                Ok("Hi from Acme HVAC in Phoenix!"),
            ),
            ("Hi from {{ nmae }}", Err(())),
            ("Hi from {{ name ", Err(())),
            ("direct_questoin", Err(())),
            ("{{ '' }}", Err(())),
            (
                "{% if booking_link %}Book: {{ booking_link }}{% else %}Reply here{% endif %}",
                Ok("Book: https://book.example.com/acme"),
            ),
            (
                "Hi {{ name|upper }} {{ nope|default('friend')|title }}",
                Ok("Hi ACME HVAC Friend"),
            ),
        ];
        for (script, want) in cases {
            let got = render(script, &fields());
            match want {
                Ok(part) => assert!(got.as_ref().unwrap().contains(part), "{script}: {got:?}"),
                Err(()) => assert!(got.is_err(), "{script}: {got:?}"),
            }
        }
    }

    #[test]
    fn scripts_are_bounded_in_work_memory_and_length() {
        let bomb = "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}";
        let long_name = {
            let mut f = fields();
            f.insert("name".into(), "A".repeat(200));
            f
        };
        let cases: &[(&str, &BTreeMap<String, String>, &str)] = &[
            (bomb, &fields(), "{% for %}"),
            ("{% set a = 'x' * 100000000 %}{{ a }}", &fields(), "{% set %}"),
            ("{{ 'x' * 100000000 }}", &fields(), "arithmetic"),
            ("{{ name ~ name ~ name }}", &fields(), "arithmetic"),
            ("{{ range(100000)|join }}", &fields(), "filter join"),
            ("{{ range(100000) }}", &fields(), "function call"),
            ("{{ name|replace('A', name) }}", &fields(), "filter replace"),
            ("{{ [name, name] }}", &fields(), "list"),
            ("{{ name.upper() }}", &fields(), "function call"),
            // Macros are not even compiled in (the feature is off): a syntax error.
            ("{% macro m() %}x{% endmacro %}", &fields(), "unknown statement macro"),
            ("{% include 'x' %}", &fields(), "block statement"),
            ("{{ name }}{{ name }}{{ name }}{{ name }}{{ name }}{{ name }}{{ name }}{{ name }}{{ name }}", &long_name, "1800 characters"),
        ];
        for (script, f, want) in cases {
            let started = std::time::Instant::now();
            let err = render(script, f).unwrap_err().to_string();
            assert!(err.contains(want), "{script}: {err}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{script}"
            );
        }
        let huge = format!("Hi {}", "x".repeat(MAX_SOURCE));
        assert!(matches!(
            render(&huge, &fields()),
            Err(ScriptError::TooLong(_))
        ));
    }

    #[test]
    fn built_in_scripts_keep_it_in_text_and_fit_few_segments() {
        for (name, _) in BUILT_IN {
            let body = with_opt_out(&render(name, &fields()).unwrap());
            let lower = body.to_lowercase();
            assert!(!lower.contains("call you back"), "{name}");
            assert!(!lower.contains("call back"), "{name}");
            assert!(body.ends_with(OPT_OUT_FOOTER), "{name}");
            assert!(segments(&body).count <= 2, "{name}: {body}");
            assert_eq!(segments(&body).encoding, Encoding::Gsm7, "{name}");
        }
    }

    #[test]
    fn adds_the_footer_only_once() {
        let cases = [
            ("Hi", "Hi Reply STOP to opt out."),
            ("Hi. Reply STOP to opt out", "Hi. Reply STOP to opt out"),
            ("Hi. Text STOP to end.", "Hi. Text STOP to end."),
            ("Hi, opt-out any time", "Hi, opt-out any time"),
        ];
        for (body, want) in cases {
            assert_eq!(with_opt_out(body), want);
        }
    }

    #[test]
    fn counts_segments_like_carriers() {
        let a160 = "a".repeat(160);
        let a161 = "a".repeat(161);
        let brace80 = "{".repeat(80);
        let brace81 = "{".repeat(81);
        let e70 = "é".repeat(70); // é is GSM-7
        let u70 = "ç".repeat(70); // ç is not
        let u71 = "ç".repeat(71);
        let emoji = "👍".repeat(35);
        let cases: &[(&str, Encoding, usize, usize)] = &[
            ("", Encoding::Gsm7, 0, 0),
            ("hello", Encoding::Gsm7, 5, 1),
            (&a160, Encoding::Gsm7, 160, 1),
            (&a161, Encoding::Gsm7, 161, 2),
            (&brace80, Encoding::Gsm7, 160, 1),
            (&brace81, Encoding::Gsm7, 162, 2),
            (&e70, Encoding::Gsm7, 70, 1),
            (&u70, Encoding::Ucs2, 70, 1),
            (&u71, Encoding::Ucs2, 71, 2),
            (&emoji, Encoding::Ucs2, 70, 1),
            ("“quoted”", Encoding::Ucs2, 8, 1),
            ("price: 10€", Encoding::Gsm7, 11, 1),
        ];
        for (body, enc, units, count) in cases {
            let s = segments(body);
            assert_eq!(
                (s.encoding, s.units, s.count),
                (*enc, *units, *count),
                "{body:?}"
            );
        }
    }
}
