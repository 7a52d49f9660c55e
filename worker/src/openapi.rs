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
                if key != "parameters" && key != "summary" && key != "description" {
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
}
