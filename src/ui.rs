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

/// The templates and the asset URLs, built once at start-up.
pub struct Ui {
    env: Environment<'static>,
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
    /// Loads every embedded template; fails on a template that does not parse.
    pub fn new() -> Result<Self, RenderError> {
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
        Ok(Self { env })
    }

    /// Renders a page template with its typed context.
    pub fn render<C: Serialize>(&self, name: &str, ctx: &C) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| RenderError {
                name: name.to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses_and_every_asset_has_a_hash() {
        let ui = super::Ui::new().unwrap();
        drop(ui);
        for f in super::Assets::iter() {
            assert_eq!(super::asset_hash(&f).unwrap().len(), 16, "{f}");
        }
    }
}
