//! The admin UI's rendering: a minijinja environment over the templates embedded in the binary (HTML
//! auto-escaped, undefined values are errors), and content-hashed URLs for the embedded static files.

use minijinja::{Environment, UndefinedBehavior};
use rust_embed::RustEmbed;
use serde::Serialize;
use std::collections::HashMap;

/// The page templates (`assets/templates`).
#[derive(RustEmbed)]
#[folder = "assets/templates"]
struct Templates;

/// The static files (`assets/static`): CSS, a little JS, the icon.
#[derive(RustEmbed)]
#[folder = "assets/static"]
pub struct Assets;

/// A template failed to render.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {source}")]
pub struct RenderError {
    name: String,
    #[source]
    source: minijinja::Error,
}

/// The templates and the asset URLs, compiled at the first page rendered: an appliance whose admin UI nobody
/// opens keeps neither the compiled templates nor the compiler in memory. (A test compiles every template, so
/// a broken one never ships.)
pub struct Ui {
    env: std::sync::OnceLock<Result<Environment<'static>, String>>,
}

/// The first 16 hex digits of a static file's SHA-256: its URL changes when it does, so it can be cached forever.
pub fn asset_hash(file: &str) -> Option<String> {
    Assets::get(file).map(|f| {
        f.metadata
            .sha256_hash()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

impl Ui {
    /// The UI; its templates are compiled when the first page is rendered.
    pub fn new() -> Result<Self, RenderError> {
        Ok(Self {
            env: std::sync::OnceLock::new(),
        })
    }

    /// Renders a page template with its typed context.
    pub fn render<C: Serialize>(&self, name: &str, ctx: &C) -> Result<String, RenderError> {
        let env = self
            .env
            .get_or_init(|| build().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|why| RenderError {
                name: name.to_string(),
                source: minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, why.clone()),
            })?;
        env.get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| RenderError {
                name: name.to_string(),
                source,
            })
    }
}

/// Compiles every embedded template; fails on a template that does not parse.
fn build() -> Result<Environment<'static>, RenderError> {
    {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for name in Templates::iter() {
            let Some(file) = Templates::get(&name) else {
                continue;
            };
            let source = String::from_utf8_lossy(&file.data).into_owned();
            env.add_template_owned(name.to_string(), source)
                .map_err(|source| RenderError {
                    name: name.to_string(),
                    source,
                })?;
        }
        let urls: HashMap<String, String> = Assets::iter()
            .filter_map(|f| asset_hash(&f).map(|h| (f.to_string(), format!("/static/{h}/{f}"))))
            .collect();
        env.add_function(
            "asset",
            move |file: String| -> Result<String, minijinja::Error> {
                urls.get(&file).cloned().ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("no asset {file}"),
                    )
                })
            },
        );
        env.add_filter("code", |text: String| {
            minijinja::Value::from_safe_string(code(&text))
        });
        Ok(env)
    }
}

/// A message for a page: HTML-escaped, with each `quoted` span (a command, a key) set as code, so messages
/// written for the terminal read right in the browser.
pub fn code(text: &str) -> String {
    let escaped = minijinja::HtmlEscape(text).to_string();
    let mut out = String::with_capacity(escaped.len());
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    // An unpaired backtick drops out with the split, and the text after it shows as code.
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_show_quoted_spans_as_code_and_escape_the_rest() {
        let cases = [
            (
                "add a user with `textback user add`.",
                "add a user with <code>textback user add</code>.",
            ),
            (
                "unknown key `nmae`: did you mean `name`?",
                "unknown key <code>nmae</code>: did you mean <code>name</code>?",
            ),
            (
                "<script>`x`</script>",
                "&lt;script&gt;<code>x</code>&lt;&#x2f;script&gt;",
            ),
            ("no quotes", "no quotes"),
        ];
        for (text, want) in cases {
            assert_eq!(super::code(text), want, "{text}");
        }
    }

    #[test]
    fn every_template_parses_and_every_asset_has_a_hash() {
        super::build().unwrap();
        for f in super::Assets::iter() {
            assert_eq!(super::asset_hash(&f).unwrap().len(), 16, "{f}");
        }
    }
}
