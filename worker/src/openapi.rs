//! `GET /v1/openapi.json`: the edge API's OpenAPI 3.1 document. It is a static file
//! (`worker/openapi.json`) compiled in; a unit test keeps it and the route table in
//! [`crate::router`] in step, both ways, and the tests in `openapi/types.rs` keep its schemas in
//! step with core's types.

use worker::{Response, Result};

/// The document, as committed.
const DOCUMENT: &str = include_str!("../openapi.json");

pub(crate) fn get() -> Result<Response> {
    let mut response = Response::ok(DOCUMENT)?;
    response.headers_mut().set("Content-Type", "application/json")?;
    Ok(response)
}

// Native only: the schema validator it uses is a native dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod types;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::DOCUMENT;

    /// The router's routes as (method, OpenAPI path), read from its source: every
    /// `.get(`/`.post_async(`/... call and the path literal that follows it (rustfmt may put it on
    /// the next line). The catch-all (`or_else_any_method`) is not a route.
    fn router_routes() -> BTreeSet<(String, String)> {
        let source = include_str!("router.rs");
        let mut routes = BTreeSet::new();
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            for suffix in ["(", "_async("] {
                let call = format!(".{method}{suffix}");
                for (at, _) in source.match_indices(&call) {
                    let rest = &source[at + call.len()..];
                    let start = rest.find('"').expect("a path literal after the method") + 1;
                    let end = start + rest[start..].find('"').expect("the end of the path literal");
                    routes.insert((method.to_owned(), openapi_path(&rest[start..end])));
                }
            }
        }
        routes
    }

    /// `/v1/turns/:id` → `/v1/turns/{id}`.
    fn openapi_path(route: &str) -> String {
        route
            .split('/')
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => format!("{{{name}}}"),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn document_routes() -> BTreeSet<(String, String)> {
        let document: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        let paths = document["paths"].as_object().expect("paths");
        let mut routes = BTreeSet::new();
        for (path, item) in paths {
            for key in item.as_object().expect("a path item").keys() {
                // `OPTIONS` is answered before the route table, for every path (`crate::cors`).
                if !["parameters", "summary", "description", "options"].contains(&key.as_str()) {
                    routes.insert((key.clone(), path.clone()));
                }
            }
        }
        routes
    }

    #[test]
    fn the_document_has_exactly_the_routes_of_the_router() {
        let router = router_routes();
        let document = document_routes();
        assert!(router.len() >= 6, "the route table was not parsed: {router:?}");
        let undocumented: Vec<_> = router.difference(&document).collect();
        assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
        let unrouted: Vec<_> = document.difference(&router).collect();
        assert!(unrouted.is_empty(), "openapi.json describes routes the router lacks: {unrouted:?}");
    }

    #[test]
    fn every_path_describes_the_preflight_the_router_answers_before_its_routes() {
        let document: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            let preflight = &item["options"]["responses"];
            assert_eq!(preflight["204"]["$ref"], "#/components/responses/Preflight", "{path}");
            for status in ["403", "405"] {
                assert!(preflight[status].is_object(), "{path}: OPTIONS {status} is not described");
            }
        }
        let allowed = &document["components"]["responses"]["Preflight"]["headers"];
        assert_eq!(allowed["Access-Control-Allow-Methods"]["schema"]["const"], crate::cors::ALLOW_METHODS);
        assert_eq!(allowed["Access-Control-Allow-Headers"]["schema"]["const"], crate::cors::ALLOW_HEADERS);
        assert_eq!(allowed["Access-Control-Max-Age"]["schema"]["const"], crate::cors::MAX_AGE_S);
    }

    #[test]
    fn every_reference_resolves_and_errors_have_the_one_shape() {
        let document: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        for (at, _) in DOCUMENT.match_indices("\"$ref\": \"#/") {
            let rest = &DOCUMENT[at + "\"$ref\": \"#".len()..];
            let pointer = &rest[..rest.find('"').unwrap()];
            assert!(document.pointer(pointer).is_some(), "dangling $ref {pointer}");
        }
        let error = &document["components"]["schemas"]["ErrorBody"]["properties"]["error"];
        assert_eq!(error["required"], serde_json::json!(["code", "message"]));
    }

    #[test]
    fn the_documented_limits_are_the_ones_enforced() {
        let document: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let timeout = &document["components"]["schemas"]["CreateTurnRequest"]["properties"]["timeout_s"];
        let limits = mayfly_core::Limits::default();
        assert_eq!(timeout["minimum"], limits.min_timeout_s);
        assert_eq!(timeout["maximum"], limits.max_timeout_s);
        assert_eq!(timeout["default"], limits.default_timeout_s);
        let parameters = document["paths"]["/v1/turns"]["get"]["parameters"].as_array().unwrap();
        let limit = parameters.iter().find(|p| p["name"] == "limit").expect("the limit parameter");
        assert_eq!(limit["schema"]["maximum"], crate::paging::MAX_PAGE);
        assert_eq!(limit["schema"]["default"], crate::paging::MAX_PAGE);
        let parameters = document["paths"]["/v1/turns"]["post"]["parameters"].as_array().unwrap();
        let key = parameters.iter().find(|p| p["name"] == crate::idempotency::HEADER).expect("the key header");
        assert_eq!(key["schema"]["maxLength"], crate::idempotency::MAX_KEY_LEN);
    }
}
