//! scratchdb's extensions as the client uses them (`docs/protocols/instanode.md` §12): a fork takes
//! the create's body and answer, a freeze goes to its own route, and a server without it (hosted
//! instanode) gets its credentials rotated instead, and a fork there is `Unsupported`, for the turn
//! to copy the checkpoint with the URL its credentials read gives.

use super::tests::{check, instanode, json, request, AUTHENTICATED};
use super::*;
use crate::providers::fakes::run_virtual;
use crate::providers::memory::MemoryHttpClient;
use expect_test::expect;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn a_fork_goes_to_the_extension_with_the_create_body_and_a_freeze_to_its_own() {
    let http = MemoryHttpClient::new(|request| match request.url.ends_with("/fork") {
        true => Ok(json(201, AUTHENTICATED)),
        false => Ok(json(200, r#"{"ok":true}"#)
            .with_header(header_name("x-scratchdb-extension"), HeaderValue::from_static("freeze"))),
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let database = run_virtual(&clock, client.fork("src-tok", request())).unwrap();
    assert_eq!(database.token, "3f2a-tok");
    check(
        &http.requests()[0],
        expect![[r#"
            POST https://api.instanode.test/api/v1/resources/src-tok/fork
            accept: application/json
            authorization: Bearer ink_pat
            content-type: application/json
            idempotency-key: turn-t_1-db

            {"name":"mayfly-1700000030-t_1"}"#]],
    );
    run_virtual(&clock, client.freeze("3f2a-tok")).unwrap();
    assert!(http.requests()[1].url.ends_with("/api/v1/resources/3f2a-tok/freeze"));
    assert_eq!(http.requests().len(), 2);
    // Without an account there is nothing to fork or freeze with.
    let (anonymous, clock) = instanode(&http, None);
    let error = run_virtual(&clock, anonymous.fork("src-tok", request())).unwrap_err();
    assert_eq!(error, ProviderError::Unsupported { provider: "instanode", operation: "fork a database" });
}

#[test]
fn hosted_instanode_has_no_freeze_so_its_credentials_are_rotated_instead() {
    // Hosted instanode's answer to a route it does not have: a 404 without the extension header.
    let http = MemoryHttpClient::new(|request| match request.url.ends_with("/freeze") {
        true => Ok(json(404, r#"{"ok":false,"error":"not_found","message":"no such route"}"#)),
        false => Ok(json(200, r#"{"ok":true,"connection_url":"postgres://usr_3f2a:n3wPw@h:5432/db_3f2a"}"#)),
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    run_virtual(&clock, client.freeze("3f2a-tok")).unwrap();
    let urls: Vec<String> = http.requests().iter().map(|r| r.url.clone()).collect();
    assert!(urls[1].ends_with("/rotate-credentials"), "{urls:?}");
    // scratchdb's own 404 (the extension's header set) is a database it does not have: an error.
    let http = MemoryHttpClient::new(|_| {
        Ok(json(404, r#"{"ok":false,"error":"not_found","message":"resource not found"}"#)
            .with_header(header_name("x-scratchdb-extension"), HeaderValue::from_static("freeze")))
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    assert!(run_virtual(&clock, client.freeze("gone")).is_err());
    assert_eq!(http.requests().len(), 1, "no rotation of a database scratchdb does not have");
}

#[test]
fn hosted_instanode_has_no_fork_which_is_unsupported_and_the_checkpoints_url_is_read_for_a_copy() {
    let http = MemoryHttpClient::new(|request| {
        if request.url.ends_with("/fork") {
            return Ok(json(404, r#"{"ok":false,"error":"not_found","message":"no such route"}"#));
        }
        Ok(json(
            200,
            r#"{"ok":true,"id":"8b1c","token":"src-tok","resource_type":"postgres","env":"development","connection_url":"postgres://usr_src:r0tated@h:5432/db_src"}"#,
        ))
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let error = run_virtual(&clock, client.fork("src-tok", request())).unwrap_err();
    assert_eq!(error, ProviderError::Unsupported { provider: "instanode", operation: "fork" });
    let url = run_virtual(&clock, client.connection_url("src-tok")).unwrap();
    assert_eq!(url, "postgres://usr_src:r0tated@h:5432/db_src");
    let read = &http.requests()[1];
    assert_eq!(
        (read.method.as_str(), read.url.as_str()),
        ("GET", "https://api.instanode.test/api/v1/resources/src-tok/credentials")
    );

    // scratchdb's own 404 on its fork route (the header set) is a source it does not have: an error
    // to say, not a fork to make another way.
    let http = MemoryHttpClient::new(|_| {
        Ok(json(404, r#"{"ok":false,"error":"not_found","message":"resource not found"}"#)
            .with_header(header_name("x-scratchdb-extension"), HeaderValue::from_static("fork")))
    });
    let (client, clock) = instanode(&http, Some("ink_pat"));
    let error = run_virtual(&clock, client.fork("gone", request())).unwrap_err();
    assert!(matches!(error, ProviderError::Status { status: 404, .. }), "{error:?}");
}

#[test]
fn a_credentials_answer_for_another_database_or_without_a_url_is_refused_unquoted() {
    for (answer, said) in [
        (
            r#"{"ok":true,"id":"1","token":"other-tok","resource_type":"postgres","env":"x","connection_url":"postgres://u:s3cret@h:5432/d"}"#,
            "those of \"other-tok\"",
        ),
        (r#"{"ok":true,"token":"src-tok","password":"s3cret"}"#, "lacks token or connection_url"),
        (
            r#"{"ok":true,"id":"1","token":"src-tok","resource_type":"postgres","env":"x","connection_url":"s3cret"}"#,
            "no host or database name",
        ),
    ] {
        let http = MemoryHttpClient::new(move |_| Ok(json(200, answer)));
        let (client, clock) = instanode(&http, Some("ink_pat"));
        let error = run_virtual(&clock, client.connection_url("src-tok")).unwrap_err().to_string();
        assert!(error.contains(said), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
