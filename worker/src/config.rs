//! The worker's configuration: provider base URLs from `[vars]`, keys from secrets.

use mayfly_core::providers::e2b::{E2bClient, E2bConfig, DEFAULT_CREATE_TIMEOUT_MS};
use mayfly_core::providers::instanode::{InstanodeClient, InstanodeConfig};
use mayfly_core::providers::Providers;
use mayfly_core::turn::wall_time::MAX_SANDBOX_CREATE_TIMEOUT_S;
use mayfly_core::{redact_url, ProvidersView, SecretState, TemplateMap};
use worker::Env;

use crate::clock::WorkerClock;
use crate::fetch_client::FetchClient;

/// How long after a turn's deadline its object's safety alarm fires: the turn's own reap normally
/// ends well within it.
pub(crate) const DEADLINE_SLACK_MS: u64 = 10_000;

/// The providers of a deployment, over the runtime's `fetch`.
pub(crate) type WorkerProviders =
    Providers<E2bClient<FetchClient, WorkerClock>, InstanodeClient<FetchClient, WorkerClock>>;

/// Where the providers are. Missing values fall back to the local stack's defaults so that a
/// bare `wrangler dev` starts; `cargo xtask dev` always sets them.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) e2b_api_url: String,
    pub(crate) e2b_domain: String,
    pub(crate) e2b_api_key: Option<String>,
    /// Where envd answers when it is not at E2B's per-sandbox host: the local sandboxd serves it
    /// on its API port (`E2B_ENVD_URL`; unset for real E2B).
    pub(crate) e2b_envd_url: Option<String>,
    pub(crate) instanode_url: String,
    pub(crate) instanode_token: Option<String>,
    /// What the sweep leaves a resource past its deadline before reaping it (`SWEEP_GRACE_S`).
    pub(crate) sweep_grace_ms: u64,
    /// How many turns one tenant may have running at once (`MAX_TURNS_PER_TENANT`).
    pub(crate) max_turns_per_tenant: usize,
    /// How many checkpoints one tenant may keep at once (`MAX_CHECKPOINTS_PER_TENANT`): each holds
    /// a database at the shared provider for up to a day.
    pub(crate) max_checkpoints_per_tenant: usize,
    /// How many turns a tenant's ledger keeps, its newest (`MAX_TURN_HISTORY`).
    pub(crate) max_turn_history: u64,
    /// How many idempotency keys a tenant's ledger remembers, its newest (`MAX_IDEMPOTENCY_KEYS`).
    pub(crate) max_idempotency_keys: u64,
    /// The origins whose pages may frame the embed view (`EMBED_ORIGINS`, comma-separated); none
    /// by default.
    pub(crate) embed_origins: Vec<String>,
    /// How long a sandbox create may take (`E2B_CREATE_TIMEOUT_S`; E2B's SDK's 60 s by default, at
    /// most core's `MAX_SANDBOX_CREATE_TIMEOUT_S`).
    pub(crate) e2b_create_timeout_ms: u64,
    /// The template of each language (`E2B_TEMPLATE_PYTHON`, `_BASH`, `_NODE`; E2B's `base` by
    /// default), or what is wrong with a variable: a bad name is refused rather than replaced by
    /// the default, so a typo cannot quietly run turns somewhere else.
    pub(crate) templates: Result<TemplateMap, String>,
}

/// The sweep's grace when `SWEEP_GRACE_S` is unset or not a whole number of seconds: the turn's
/// own reap and its object's alarm come first.
const DEFAULT_SWEEP_GRACE_S: u64 = 60;

/// A tenant's running turns when `MAX_TURNS_PER_TENANT` is unset or not a positive number.
const DEFAULT_MAX_TURNS_PER_TENANT: usize = 10;
const DEFAULT_MAX_CHECKPOINTS_PER_TENANT: usize = 10;

/// The turns and the idempotency keys a tenant's ledger keeps when `MAX_TURN_HISTORY` and
/// `MAX_IDEMPOTENCY_KEYS` are unset or not positive numbers: enough for any retry and for paging
/// back through a working day, and a bound on what one tenant can make the ledger store.
const DEFAULT_MAX_TURN_HISTORY: u64 = 1000;
const DEFAULT_MAX_IDEMPOTENCY_KEYS: u64 = 1000;

impl Config {
    pub(crate) fn from_env(env: &Env) -> Config {
        let optional = |name: &str| env.var(name).ok().map(|v| v.to_string());
        let var = |name: &str, default: &str| optional(name).unwrap_or_else(|| default.to_owned());
        let secret = |name: &str| env.secret(name).ok().map(|v| v.to_string()).filter(|v| !v.is_empty());
        Config {
            e2b_api_url: var("E2B_API_URL", "http://127.0.0.1:49982"),
            e2b_domain: var("E2B_DOMAIN", "localhost"),
            e2b_api_key: secret("E2B_API_KEY"),
            e2b_envd_url: optional("E2B_ENVD_URL").filter(|v| !v.is_empty()),
            instanode_url: var("INSTANODE_URL", "http://127.0.0.1:49983"),
            instanode_token: secret("INSTANODE_TOKEN"),
            sweep_grace_ms: sweep_grace_s(optional("SWEEP_GRACE_S").as_deref()) * 1000,
            max_turns_per_tenant: max_turns_per_tenant(optional("MAX_TURNS_PER_TENANT").as_deref()),
            max_checkpoints_per_tenant: positive(optional("MAX_CHECKPOINTS_PER_TENANT").as_deref())
                .map_or(DEFAULT_MAX_CHECKPOINTS_PER_TENANT, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_turn_history: positive(optional("MAX_TURN_HISTORY").as_deref()).unwrap_or(DEFAULT_MAX_TURN_HISTORY),
            max_idempotency_keys: positive(optional("MAX_IDEMPOTENCY_KEYS").as_deref())
                .unwrap_or(DEFAULT_MAX_IDEMPOTENCY_KEYS),
            embed_origins: origins("EMBED_ORIGINS", optional("EMBED_ORIGINS").as_deref()),
            e2b_create_timeout_ms: e2b_create_timeout_ms(optional("E2B_CREATE_TIMEOUT_S").as_deref()),
            templates: TemplateMap::from_lookup(optional),
        }
    }

    /// The E2B client of this deployment, over the runtime's `fetch`.
    pub(crate) fn e2b_client(&self) -> E2bClient<FetchClient, WorkerClock> {
        let mut e2b = E2bConfig::new(self.e2b_api_key.clone().unwrap_or_default());
        e2b.api_url = self.e2b_api_url.clone();
        e2b.domain = self.e2b_domain.clone();
        e2b.envd_url = self.e2b_envd_url.clone();
        e2b.create_timeout_ms = self.e2b_create_timeout_ms;
        E2bClient::new(FetchClient, WorkerClock, e2b)
    }

    /// The instanode client of this deployment, over the runtime's `fetch`.
    pub(crate) fn instanode_client(&self) -> InstanodeClient<FetchClient, WorkerClock> {
        let instanode = InstanodeConfig { base_url: self.instanode_url.clone(), token: self.instanode_token.clone() };
        InstanodeClient::new(FetchClient, WorkerClock, instanode)
    }

    /// Both providers of this deployment.
    pub(crate) fn providers(&self) -> WorkerProviders {
        Providers { sandboxes: self.e2b_client(), databases: self.instanode_client() }
    }

    /// The configuration as it may be shown to anyone: URLs without credentials, keys as set/unset.
    pub(crate) fn public_view(&self) -> ProvidersView {
        ProvidersView {
            e2b_api_url: redact_url(&self.e2b_api_url),
            e2b_domain: self.e2b_domain.clone(),
            e2b_api_key: SecretState::of(self.e2b_api_key.as_deref()),
            instanode_url: redact_url(&self.instanode_url),
            instanode_token: SecretState::of(self.instanode_token.as_deref()),
            templates: self.templates.as_ref().map(TemplateMap::by_language).unwrap_or_default(),
        }
    }
}

/// The sweep's grace in seconds from `SWEEP_GRACE_S`; never below the alarm's slack, so that a
/// sweep cannot race a turn's own reap.
fn sweep_grace_s(value: Option<&str>) -> u64 {
    value.and_then(|v| v.trim().parse::<u64>().ok()).map_or(DEFAULT_SWEEP_GRACE_S, |s| s.max(MIN_SWEEP_GRACE_S))
}

/// A sandbox create's patience from `E2B_CREATE_TIMEOUT_S`: E2B's default when unset or not a
/// positive number, and never past core's cap, beyond which provisioning at its slowest (four
/// attempts) would outlast the longest timeout and cut a turn off at its alarm's limit.
fn e2b_create_timeout_ms(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(DEFAULT_CREATE_TIMEOUT_MS, |s| s.min(MAX_SANDBOX_CREATE_TIMEOUT_S) * 1000)
}

fn max_turns_per_tenant(value: Option<&str>) -> usize {
    value.and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_MAX_TURNS_PER_TENANT)
}

fn positive(value: Option<&str>) -> Option<u64> {
    value.and_then(|v| v.trim().parse::<u64>().ok()).filter(|n| *n > 0)
}

/// The origins whose pages may call the API (`CORS_ORIGINS`, comma-separated; none by default),
/// read alone: every answer of the API needs them, and nothing else of the configuration.
pub(crate) fn cors_origins(env: &Env) -> Vec<String> {
    origins("CORS_ORIGINS", env.var("CORS_ORIGINS").ok().map(|v| v.to_string()).as_deref())
}

/// The origins in the variable `name` (`EMBED_ORIGINS`, `CORS_ORIGINS`): each `scheme://host[:port]`
/// with nothing after it. Anything else is left out (and logged), so that a typo cannot widen who
/// may frame the embed view or call the API.
fn origins(name: &str, value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .filter(|origin| {
            let valid = is_origin(origin);
            if !valid {
                worker::console_error!("config: {name}: {origin:?} is not an origin (scheme://host[:port]); ignored");
            }
            valid
        })
        .map(str::to_owned)
        .collect()
}

fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    let host_ok = !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    matches!(scheme, "https" | "http") && host_ok
}

/// The shortest grace: a little past the moment a turn's safety alarm fires.
const MIN_SWEEP_GRACE_S: u64 = DEADLINE_SLACK_MS / 1000 + 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_grace_defaults_and_never_undercuts_the_alarm() {
        assert_eq!(sweep_grace_s(None), 60);
        assert_eq!(sweep_grace_s(Some("")), 60);
        assert_eq!(sweep_grace_s(Some("soon")), 60);
        assert_eq!(sweep_grace_s(Some("-5")), 60);
        assert_eq!(sweep_grace_s(Some("0")), 15);
        assert_eq!(sweep_grace_s(Some(" 20 ")), 20);
        assert_eq!(sweep_grace_s(Some("600")), 600);
    }

    #[test]
    fn the_turn_cap_defaults_and_refuses_zero() {
        assert_eq!(max_turns_per_tenant(None), 10);
        assert_eq!(max_turns_per_tenant(Some("0")), 10);
        assert_eq!(max_turns_per_tenant(Some("many")), 10);
        assert_eq!(max_turns_per_tenant(Some(" 3 ")), 3);
        assert_eq!((positive(None), positive(Some("0")), positive(Some(" 3 "))), (None, None, Some(3)));
    }

    #[test]
    fn the_create_timeout_defaults_and_is_capped_to_fit_the_alarm() {
        assert_eq!(e2b_create_timeout_ms(None), 60_000);
        assert_eq!(e2b_create_timeout_ms(Some("0")), 60_000);
        assert_eq!(e2b_create_timeout_ms(Some("soon")), 60_000);
        assert_eq!(e2b_create_timeout_ms(Some(" 10 ")), 10_000);
        assert_eq!(e2b_create_timeout_ms(Some("120")), 120_000);
        assert_eq!(e2b_create_timeout_ms(Some("600")), 120_000);
    }

    #[test]
    fn origin_lists_keep_only_origins() {
        assert!(origins("EMBED_ORIGINS", None).is_empty());
        assert_eq!(
            origins("CORS_ORIGINS", Some("https://ide.example, http://127.0.0.1:5173 ,")),
            ["https://ide.example", "http://127.0.0.1:5173"]
        );
        for bad in
            ["*", "https://ide.example/path", "ide.example", "javascript://x", "https://a b", "https://x;script-src"]
        {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
