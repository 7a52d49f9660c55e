//! Which providers a native turn talks to: real E2B / instanode when their environment variables
//! are set, otherwise the local stack (a running `mayfly stack`, or one started for the turn).

use mayfly_core::providers::e2b::templates::{TemplateMap, MAYFLY_TEMPLATE};
use mayfly_core::providers::e2b::{E2bClient, E2bConfig};
use mayfly_core::providers::instanode::{InstanodeClient, InstanodeConfig};
use mayfly_core::providers::Providers;

use crate::clock::SystemClock;
use crate::http::ReqwestHttpClient;
use crate::stack::StackEndpoints;

/// The providers of a native caller.
pub type NativeProviders =
    Providers<E2bClient<ReqwestHttpClient, SystemClock>, InstanodeClient<ReqwestHttpClient, SystemClock>>;

/// Provider settings read from the environment; `None` for a provider that is not configured.
#[derive(Debug, Clone, Default)]
pub struct EnvProviders {
    pub e2b: Option<E2bConfig>,
    pub instanode: Option<InstanodeConfig>,
}

impl EnvProviders {
    /// `E2B_API_KEY` (with optional `E2B_API_URL`, `E2B_DOMAIN`, `E2B_ENVD_URL`) selects E2B; `INSTANODE_URL` or
    /// `INSTANODE_TOKEN` selects instanode (token mode with a token, anonymous without).
    pub fn from_env() -> EnvProviders {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let e2b = var("E2B_API_KEY").map(|key| {
            let mut config = E2bConfig::new(key);
            if let Some(url) = var("E2B_API_URL") {
                config.api_url = url;
            }
            if let Some(domain) = var("E2B_DOMAIN") {
                config.domain = domain;
            }
            // Every sandbox's envd at one address, as the local sandboxd serves it; real E2B
            // derives each sandbox's from the domain.
            config.envd_url = var("E2B_ENVD_URL");
            config
        });
        let instanode = (var("INSTANODE_URL").is_some() || var("INSTANODE_TOKEN").is_some()).then(|| InstanodeConfig {
            base_url: var("INSTANODE_URL").unwrap_or_else(|| "https://api.instanode.dev".to_owned()),
            token: var("INSTANODE_TOKEN"),
        });
        EnvProviders { e2b, instanode }
    }

    /// Whether every provider is configured, so no local stack is needed.
    pub fn is_complete(&self) -> bool {
        self.e2b.is_some() && self.instanode.is_some()
    }
}

/// The template of each language: E2B's defaults against real E2B, the local sandboxd's `mayfly`
/// (the name a deployment that built `templates/mayfly` uses) against the local stack; either way
/// with each language `overrides` names (by variable, `E2B_TEMPLATE_PYTHON` …) set to it.
pub fn templates(env: &EnvProviders, overrides: impl FnMut(&str) -> Option<String>) -> anyhow::Result<TemplateMap> {
    let defaults = if env.e2b.is_some() { TemplateMap::default() } else { local_templates() };
    defaults.overridden_by(overrides).map_err(anyhow::Error::msg)
}

/// What the local sandboxd offers every language: `mayfly`, the template a real deployment builds.
pub fn local_templates() -> TemplateMap {
    TemplateMap::all(MAYFLY_TEMPLATE)
}

/// E2B settings for a local sandboxd: envd is served on the same port, routed by headers.
pub fn local_e2b(endpoints: &StackEndpoints) -> E2bConfig {
    let mut config = E2bConfig::new(endpoints.sandboxd_api_key.clone());
    config.api_url = endpoints.sandboxd_url.clone();
    config.domain = "localhost".to_owned();
    config.envd_url = Some(endpoints.sandboxd_url.clone());
    config
}

/// instanode settings for a local scratchdb, in token mode so databases are deleted per turn.
pub fn local_instanode(endpoints: &StackEndpoints) -> InstanodeConfig {
    InstanodeConfig { base_url: endpoints.scratchdb_url.clone(), token: Some(endpoints.scratchdb_token.clone()) }
}

/// The worker's provider settings (`[vars]` and secrets of `worker/wrangler.toml`) for a local
/// stack, as `wrangler dev --var NAME:VALUE` pairs. The keys are the stack's own local keys.
pub fn worker_vars(endpoints: &StackEndpoints) -> Vec<(&'static str, String)> {
    vec![
        ("E2B_API_URL", endpoints.sandboxd_url.clone()),
        ("E2B_ENVD_URL", endpoints.sandboxd_url.clone()),
        ("E2B_DOMAIN", "localhost".to_owned()),
        ("E2B_API_KEY", endpoints.sandboxd_api_key.clone()),
        ("INSTANODE_URL", endpoints.scratchdb_url.clone()),
        ("INSTANODE_TOKEN", endpoints.scratchdb_token.clone()),
    ]
    .into_iter()
    .chain(local_templates().variables())
    .collect()
}

/// Clients for the configured providers, with the local stack filling in what the environment
/// does not name.
pub fn build(env: &EnvProviders, local: Option<&StackEndpoints>) -> anyhow::Result<NativeProviders> {
    let e2b = match (&env.e2b, local) {
        (Some(config), _) => config.clone(),
        (None, Some(endpoints)) => local_e2b(endpoints),
        (None, None) => anyhow::bail!("no sandbox provider: set E2B_API_KEY or run `mayfly stack`"),
    };
    let instanode = match (&env.instanode, local) {
        (Some(config), _) => config.clone(),
        (None, Some(endpoints)) => local_instanode(endpoints),
        (None, None) => anyhow::bail!("no database provider: set INSTANODE_URL or run `mayfly stack`"),
    };
    let http = ReqwestHttpClient::default();
    Ok(Providers {
        sandboxes: E2bClient::new(http.clone(), SystemClock, e2b),
        databases: InstanodeClient::new(http, SystemClock, instanode),
    })
}
