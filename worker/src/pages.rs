//! The web app's pages and files, served from the assets binding with the headers that keep a
//! page from being turned against its user: a Content-Security-Policy (scripts, styles and
//! connections from this origin only; WebAssembly allowed to compile), and framing rules — the
//! app's pages may be framed by nobody, the embed view only by the origins the deployment names
//! in `EMBED_ORIGINS` (see `docs/security.md` and `docs/embed.md`).

use worker::{Env, Headers, Request, Response, Result};

use crate::config::Config;

/// The assets binding (`wrangler.toml`).
const ASSETS_BINDING: &str = "ASSETS";

/// Everything a page of the app may load: its own files, its own API (HTTP and WebSocket),
/// WebAssembly compiled from its own module, the inline data: icon. No inline script or style.
const POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                      form-action 'self'";

/// The `frame-ancestors` directive for a page at `path`.
pub(crate) fn frame_ancestors(path: &str, embed_origins: &[String]) -> String {
    let embed = path == "/embed" || path.starts_with("/embed/");
    if embed && !embed_origins.is_empty() {
        format!("frame-ancestors {}", embed_origins.join(" "))
    } else {
        "frame-ancestors 'none'".to_owned()
    }
}

/// The Content-Security-Policy of the page at `path`.
pub(crate) fn content_security_policy(path: &str, embed_origins: &[String]) -> String {
    format!("{POLICY}; {}", frame_ancestors(path, embed_origins))
}

/// Serves `req` from the assets (the app's shell for any path that is not a file), with the
/// security headers on every HTML answer.
pub(crate) async fn serve(req: Request, env: &Env) -> Result<Response> {
    let path = req.path();
    let response = env.assets(ASSETS_BINDING)?.fetch_request(req).await?;
    // The asset's headers are immutable; a copy is not.
    let headers: Headers = response.headers().clone();
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    let html = headers.get("Content-Type")?.is_some_and(|t| t.starts_with("text/html"));
    if html {
        let config = Config::from_env(env);
        headers.set("Content-Security-Policy", &content_security_policy(&path, &config.embed_origins))?;
        if frame_ancestors(&path, &config.embed_origins).ends_with("'none'") {
            // For browsers that predate frame-ancestors.
            headers.set("X-Frame-Options", "DENY")?;
        }
    }
    Ok(response.with_headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_pages_are_never_framed_and_the_embed_view_only_by_the_configured_origins() {
        let origins = vec!["https://ide.example".to_owned(), "http://127.0.0.1:5173".to_owned()];
        for path in ["/", "/turns", "/turns/t_1", "/embedded", "/index.html"] {
            assert_eq!(frame_ancestors(path, &origins), "frame-ancestors 'none'", "{path}");
        }
        assert_eq!(frame_ancestors("/embed", &origins), "frame-ancestors https://ide.example http://127.0.0.1:5173");
        assert_eq!(frame_ancestors("/embed", &[]), "frame-ancestors 'none'", "no origin configured: nobody");
        let policy = content_security_policy("/", &origins);
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval';"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
}
