//! `GET /v1/health`: liveness, version and the providers this deployment talks to.

use mayfly_core::{Health, VERSION};
use worker::{Env, Response, Result};

use crate::config::Config;

pub(crate) fn get(env: &Env) -> Result<Response> {
    let health = Health { ok: true, version: VERSION.to_owned(), providers: Config::from_env(env).public_view() };
    let mut response = Response::from_json(&health)?;
    response.headers_mut().set("Cache-Control", "no-store")?;
    Ok(response)
}
