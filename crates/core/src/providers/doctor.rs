//! The checks a deployment passes before its first turn: E2B takes the key and has every
//! configured template; instanode answers and, in token mode, takes the token as an account's.
//! `mayfly doctor` prints them; the worker serves them at `GET /v1/health?check=providers`. Each
//! failure comes with the one thing to do about it.

use futures::future::join;

use crate::providers::e2b::templates::{variable_for, TemplateMap, MAYFLY_TEMPLATE};
use crate::providers::e2b::{E2bClient, TemplateStatus};
use crate::providers::http::HttpClient;
use crate::providers::instanode::InstanodeClient;
use crate::providers::{Clock, ProviderErrorKind};
use crate::wire::api::{Language, ProviderCheck, Verdict};

fn check(check: impl Into<String>, verdict: Verdict, detail: impl Into<String>, fix: Option<String>) -> ProviderCheck {
    ProviderCheck { check: check.into(), verdict, detail: detail.into(), fix }
}

/// Whether every check passed (warnings pass).
pub fn all_passed(checks: &[ProviderCheck]) -> bool {
    checks.iter().all(|c| c.verdict != Verdict::Fail)
}

/// Asks both providers, at once, everything a first turn will need of them.
pub async fn check_providers<H: HttpClient, C: Clock>(
    e2b: &E2bClient<H, C>,
    instanode: &InstanodeClient<H, C>,
    templates: &TemplateMap,
) -> Vec<ProviderCheck> {
    let (mut sandboxes, databases) = join(check_e2b(e2b, templates), check_instanode(instanode)).await;
    sandboxes.extend(databases);
    sandboxes
}

async fn check_e2b<H: HttpClient, C: Clock>(e2b: &E2bClient<H, C>, templates: &TemplateMap) -> Vec<ProviderCheck> {
    let url = &e2b.config().api_url;
    let key = match e2b.check_key().await {
        Ok(()) => check("e2b key", Verdict::Ok, format!("E2B at {url} accepts E2B_API_KEY"), None),
        Err(error) if matches!(error.kind(), ProviderErrorKind::Unauthorized | ProviderErrorKind::Forbidden) => check(
            "e2b key",
            Verdict::Fail,
            error.to_string(),
            Some("make an API key at https://e2b.dev/dashboard?tab=keys and set E2B_API_KEY".to_owned()),
        ),
        Err(error) => check(
            "e2b key",
            Verdict::Fail,
            error.to_string(),
            Some(format!("check E2B_API_URL ({url}) and that this machine can reach it")),
        ),
    };
    let key_ok = key.verdict == Verdict::Ok;
    let mut checks = vec![key];
    for name in templates.names() {
        let languages: Vec<Language> =
            Language::ALL.into_iter().filter(|&l| templates.for_language(l) == name).collect();
        let used_by: Vec<&str> = languages.iter().map(|l| l.as_str()).collect();
        let what = format!("e2b template {name}");
        if !key_ok {
            checks.push(check(what, Verdict::Fail, "not checked: E2B refused the key", None));
            continue;
        }
        let found = e2b.template_status(name).await;
        checks.push(match found {
            Ok(TemplateStatus::Own) => {
                check(what, Verdict::Ok, format!("your team's template, for {}", used_by.join(", ")), None)
            }
            Ok(TemplateStatus::Others) => check(
                what,
                Verdict::Ok,
                format!("exists (not your team's: usable if public, as E2B's base is), for {}", used_by.join(", ")),
                None,
            ),
            Ok(TemplateStatus::Missing) => {
                let variables: Vec<&str> = languages.iter().map(|&l| variable_for(l)).collect();
                let fix = if name == MAYFLY_TEMPLATE {
                    "build it: `python3 templates/mayfly/build.py` (README, \"E2B template\")".to_owned()
                } else {
                    format!("set {} to a template that exists (E2B's public one is base)", variables.join(", "))
                };
                check(
                    what,
                    Verdict::Fail,
                    format!("E2B has no template {name:?} ({})", variables.join(", ")),
                    Some(fix),
                )
            }
            Err(error) => check(what, Verdict::Fail, error.to_string(), None),
        });
    }
    checks
}

async fn check_instanode<H: HttpClient, C: Clock>(instanode: &InstanodeClient<H, C>) -> Vec<ProviderCheck> {
    let url = &instanode.config().base_url;
    if let Err(error) = instanode.check_reachable().await {
        return vec![check(
            "instanode reachable",
            Verdict::Fail,
            error.to_string(),
            Some(format!("check INSTANODE_URL ({url}) and that this machine can reach it")),
        )];
    }
    let reachable = check("instanode reachable", Verdict::Ok, format!("instanode answers at {url}"), None);
    let token = if instanode.config().token.is_none() {
        check(
            "instanode token",
            Verdict::Warn,
            "no INSTANODE_TOKEN: databases are anonymous — they cannot be deleted after a turn and \
             expire after 24 h, and past instanode's daily share a turn fails rather than get an \
             earlier turn's database",
            Some("set INSTANODE_TOKEN to a personal access token of your instanode account".to_owned()),
        )
    } else {
        match instanode.whoami().await {
            Ok(me) if !me.team_id.is_empty() => {
                let team = me.team_name.clone().unwrap_or_else(|| me.team_id.clone());
                let tier = me.plan_tier.as_deref().unwrap_or("unknown");
                check("instanode token", Verdict::Ok, format!("INSTANODE_TOKEN is team {team}'s (tier {tier})"), None)
            }
            Ok(_) => check(
                "instanode token",
                Verdict::Fail,
                "INSTANODE_TOKEN belongs to no team: its databases would be anonymous",
                Some("make a personal access token in a team of your instanode account".to_owned()),
            ),
            Err(error) if error.kind() == ProviderErrorKind::Unauthorized => check(
                "instanode token",
                Verdict::Fail,
                format!("{error}: with this token, instanode would make anonymous databases mayfly cannot delete"),
                Some("make a new personal access token in your instanode account and set INSTANODE_TOKEN".to_owned()),
            ),
            Err(error) => check("instanode token", Verdict::Fail, error.to_string(), None),
        }
    };
    vec![reachable, token]
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;
    use crate::providers::e2b::E2bConfig;
    use crate::providers::fakes::{run_virtual, VirtualClock};
    use crate::providers::http::{HttpResponse, StatusCode};
    use crate::providers::instanode::InstanodeConfig;
    use crate::providers::memory::MemoryHttpClient;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Answers each path from `routes` (path suffix → status and body), else 404.
    fn server(routes: &'static [(&'static str, u16, &'static str)]) -> MemoryHttpClient {
        MemoryHttpClient::new(move |request| {
            let path = request.url.split('?').next().unwrap_or_default();
            let (_, status, body) = routes.iter().find(|(suffix, _, _)| path.ends_with(suffix)).unwrap_or(&(
                "",
                404,
                r#"{"code":404,"message":"not found"}"#,
            ));
            Ok(HttpResponse::from_bytes(StatusCode::from_u16(*status).unwrap(), *body))
        })
    }

    fn doctor(routes: &'static [(&'static str, u16, &'static str)], token: Option<&str>, map: &TemplateMap) -> String {
        let http = server(routes);
        let clock = VirtualClock::new();
        let mut e2b = E2bConfig::new("e2b_key");
        e2b.api_url = "https://api.e2b.test".into();
        let e2b = E2bClient::new(&http, clock.clone(), e2b);
        let config = InstanodeConfig { base_url: "https://api.instanode.test".into(), token: token.map(str::to_owned) };
        let instanode = InstanodeClient::new(&http, clock.clone(), config);
        let checks = run_virtual(&clock, check_providers(&e2b, &instanode, map));
        let mut out = format!("passed: {}\n", all_passed(&checks));
        for c in checks {
            out.push_str(&format!("{:?} {}: {}\n", c.verdict, c.check, c.detail));
            if let Some(fix) = c.fix {
                out.push_str(&format!("  fix: {fix}\n"));
            }
        }
        out
    }

    fn check_output(got: String, want: Expect) {
        want.assert_eq(&got);
    }

    const HEALTHY: &[(&str, u16, &str)] = &[
        ("/v2/sandboxes", 200, "[]"),
        ("/templates/aliases/mayfly", 200, r#"{"templateID":"t1","public":false}"#),
        ("/templates/aliases/base", 403, r#"{"code":403,"message":"You don't have access to this template alias"}"#),
        ("/healthz", 200, r#"{"ok":true}"#),
        ("/api/v1/whoami", 200, r#"{"ok":true,"user_id":"u1","team_id":"t-9","team_name":"acme","plan_tier":"pro"}"#),
    ];

    #[test]
    fn a_healthy_deployment_passes_every_check() {
        let map = TemplateMap::from_lookup(|v| (v == "E2B_TEMPLATE_PYTHON").then(|| "mayfly".to_owned())).unwrap();
        check_output(
            doctor(HEALTHY, Some("ink_tok"), &map),
            expect![[r#"
                passed: true
                Ok e2b key: E2B at https://api.e2b.test accepts E2B_API_KEY
                Ok e2b template mayfly: your team's template, for python
                Ok e2b template base: exists (not your team's: usable if public, as E2B's base is), for bash, node
                Ok instanode reachable: instanode answers at https://api.instanode.test
                Ok instanode token: INSTANODE_TOKEN is team acme's (tier pro)
            "#]],
        );
    }

    #[test]
    fn each_failure_says_what_to_do() {
        const BROKEN: &[(&str, u16, &str)] = &[
            ("/v2/sandboxes", 401, r#"{"code":401,"message":"Invalid API key"}"#),
            ("/healthz", 200, r#"{"ok":true}"#),
            ("/api/v1/whoami", 401, r#"{"ok":false,"error":"unauthorized","message":"invalid token"}"#),
        ];
        check_output(
            doctor(BROKEN, Some("ink_bad"), &TemplateMap::all("mayfly")),
            expect![[r#"
                passed: false
                Fail e2b key: e2b answered 401: unauthenticated: Invalid API key
                  fix: make an API key at https://e2b.dev/dashboard?tab=keys and set E2B_API_KEY
                Fail e2b template mayfly: not checked: E2B refused the key
                Ok instanode reachable: instanode answers at https://api.instanode.test
                Fail instanode token: instanode answered 401: unauthorized: invalid token: with this token, instanode would make anonymous databases mayfly cannot delete
                  fix: make a new personal access token in your instanode account and set INSTANODE_TOKEN
            "#]],
        );
    }

    #[test]
    fn a_missing_template_and_an_anonymous_or_teamless_database_account_are_told_apart() {
        const NO_TEMPLATE: &[(&str, u16, &str)] = &[
            ("/v2/sandboxes", 200, "[]"),
            ("/healthz", 200, r#"{"ok":true}"#),
            ("/api/v1/whoami", 200, r#"{"ok":true,"user_id":"u1","team_id":""}"#),
        ];
        check_output(
            doctor(NO_TEMPLATE, None, &TemplateMap::all("mayfly")),
            expect![[r#"
                passed: false
                Ok e2b key: E2B at https://api.e2b.test accepts E2B_API_KEY
                Fail e2b template mayfly: E2B has no template "mayfly" (E2B_TEMPLATE_PYTHON, E2B_TEMPLATE_BASH, E2B_TEMPLATE_NODE)
                  fix: build it: `python3 templates/mayfly/build.py` (README, "E2B template")
                Ok instanode reachable: instanode answers at https://api.instanode.test
                Warn instanode token: no INSTANODE_TOKEN: databases are anonymous — they cannot be deleted after a turn and expire after 24 h, and past instanode's daily share a turn fails rather than get an earlier turn's database
                  fix: set INSTANODE_TOKEN to a personal access token of your instanode account
            "#]],
        );
        check_output(
            doctor(NO_TEMPLATE, Some("ink_tok"), &TemplateMap::all("custom")),
            expect![[r#"
            passed: false
            Ok e2b key: E2B at https://api.e2b.test accepts E2B_API_KEY
            Fail e2b template custom: E2B has no template "custom" (E2B_TEMPLATE_PYTHON, E2B_TEMPLATE_BASH, E2B_TEMPLATE_NODE)
              fix: set E2B_TEMPLATE_PYTHON, E2B_TEMPLATE_BASH, E2B_TEMPLATE_NODE to a template that exists (E2B's public one is base)
            Ok instanode reachable: instanode answers at https://api.instanode.test
            Fail instanode token: INSTANODE_TOKEN belongs to no team: its databases would be anonymous
              fix: make a personal access token in a team of your instanode account
        "#]],
        );
    }
}
