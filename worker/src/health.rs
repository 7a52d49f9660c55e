//! `GET /v1/health`: liveness, version and the providers this deployment talks to; with
//! `?check=providers`, also what the providers answer when asked everything a first turn needs
//! of them (the same checks as `mayfly doctor`).
//!
//! The checks reach the providers for real, with this deployment's keys, so they are for callers
//! with an API key: open, they would let anyone spend the deployment's provider rate limits.

use mayfly_core::providers::doctor::{all_passed, check_providers};
use mayfly_core::{ApiError, ErrorCode, Health, ProviderCheck, Verdict, VERSION};
use worker::{Env, Request, Response, Result};

use crate::config::Config;
use crate::{auth, reply};

pub(crate) async fn get(req: Request, env: &Env) -> Result<Response> {
    let config = Config::from_env(env);
    let check = req.url()?.query_pairs().find(|(name, _)| name == "check").map(|(_, value)| value.into_owned());
    let checks = match check.as_deref() {
        None => None,
        Some("providers") => {
            if let Err(err) = auth::tenant(&req, env) {
                return reply::error(&err);
            }
            Some(provider_checks(&config).await)
        }
        Some(other) => {
            let message = format!("check={other:?} is not a check; the one there is: check=providers");
            return reply::error(&ApiError::new(ErrorCode::InvalidRequest, message));
        }
    };
    let ok = checks.as_deref().is_none_or(all_passed);
    let health = Health { ok, version: VERSION.to_owned(), providers: config.public_view(), checks };
    let mut response = Response::from_json(&health)?;
    response.headers_mut().set("Cache-Control", "no-store")?;
    // A failed check is the deployment's own trouble, for monitors as much as for people.
    Ok(if ok { response } else { response.with_status(503) })
}

async fn provider_checks(config: &Config) -> Vec<ProviderCheck> {
    match &config.templates {
        Ok(templates) => check_providers(&config.e2b_client(), &config.instanode_client(), templates).await,
        Err(err) => vec![ProviderCheck {
            check: "templates".to_owned(),
            verdict: Verdict::Fail,
            detail: err.clone(),
            fix: Some("set the variable to a template name, or remove it for E2B's base".to_owned()),
        }],
    }
}
