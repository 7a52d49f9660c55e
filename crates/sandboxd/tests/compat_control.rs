//! The control plane's rules as E2B's API applies them (docs/protocols/envd-rules.md, "Control
//! plane"): connect with no `timeout`, and the list's order, `startedAfter` and `template` filters.

mod common;

use common::Server;
use serde_json::{json, Value};

fn end_at(v: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(v["endAt"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_timeout() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120, "secure": true})).await;
    let before: Value = s.get(&format!("/sandboxes/{}", sb.id)).send().await.unwrap().json().await.unwrap();
    // The SDK's `Sandbox.connect(id)` sends an empty object: a zero timeout, which never shortens.
    for path in [format!("/sandboxes/{}/connect", sb.id), format!("/v2/sandboxes/{}/connect", sb.id)] {
        let r = s.post(&path).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}: {:?}", r.text().await);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["sandboxID"], sb.id.as_str());
        assert_eq!(v["envdAccessToken"].as_str(), sb.token.as_deref(), "a secure sandbox's token comes back");
    }
    let after: Value = s.get(&format!("/sandboxes/{}", sb.id)).send().await.unwrap().json().await.unwrap();
    assert_eq!(end_at(&after), end_at(&before));
    // Still a client error for what is not a body at all, or a timeout of the wrong type.
    let r = s.post(&format!("/sandboxes/{}/connect", sb.id)).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = s.post(&format!("/sandboxes/{}/connect", sb.id)).json(&json!({"timeout": "soon"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    s.finish().await;
}

async fn ids(s: &Server, query: &str) -> (Vec<String>, reqwest::header::HeaderMap) {
    let r = s.get(&format!("/v2/sandboxes?metadata=suite%3Dorder{query}")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{query}: {:?}", r.text().await);
    let headers = r.headers().clone();
    let items: Vec<Value> = r.json().await.unwrap();
    (items.iter().map(|v| v["sandboxID"].as_str().unwrap().to_owned()).collect(), headers)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_order_started_after_and_template() {
    let s = Server::start().await;
    let old = s.create(json!({"templateID": "base", "timeout": 60, "metadata": {"suite": "order"}})).await;
    let new = s.create(json!({"templateID": "mayfly", "timeout": 60, "metadata": {"suite": "order"}})).await;
    let (desc, _) = ids(&s, "").await;
    assert_eq!(desc, [new.id.as_str(), old.id.as_str()], "newest first by default");
    let (asc, _) = ids(&s, "&order=asc").await;
    assert_eq!(asc, [old.id.as_str(), new.id.as_str()]);
    assert_eq!(ids(&s, "&order=desc").await.0, desc);
    let r = s.get("/v2/sandboxes?order=sideways").send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Pages follow the order asked for.
    let (page, headers) = ids(&s, "&order=asc&limit=1").await;
    assert_eq!(page, [old.id.as_str()]);
    let token = headers["x-next-token"].to_str().unwrap().to_owned();
    let (page, headers) = ids(&s, &format!("&order=asc&limit=1&nextToken={}", encode(&token))).await;
    assert_eq!(page, [new.id.as_str()]);
    assert!(headers.get("x-next-token").is_none());

    // `startedAfter` is inclusive, at the listed `startedAt`'s precision.
    let listed: Value = s.get(&format!("/sandboxes/{}", new.id)).send().await.unwrap().json().await.unwrap();
    let started = listed["startedAt"].as_str().unwrap().to_owned();
    let (after, _) = ids(&s, &format!("&startedAfter={}", encode(&started))).await;
    assert_eq!(after, [new.id.as_str()], "startedAfter={started}");
    let later = humantime::format_rfc3339_micros(
        humantime::parse_rfc3339(&started).unwrap() + std::time::Duration::from_secs(1),
    );
    assert!(ids(&s, &format!("&startedAfter={}", encode(&later.to_string()))).await.0.is_empty());
    // Python's isoformat, with an offset instead of `Z`.
    let offset = started.trim_end_matches('Z').to_owned() + "+00:00";
    assert_eq!(ids(&s, &format!("&startedAfter={}", encode(&offset))).await.0, [new.id.as_str()]);
    assert_eq!(s.get("/v2/sandboxes?startedAfter=yesterday").send().await.unwrap().status(), 400);

    // `template` is the template's name; an unknown one lists nothing, a tag is refused.
    assert_eq!(ids(&s, "&template=base").await.0, [old.id.as_str()]);
    assert_eq!(ids(&s, "&template=mayfly").await.0, [new.id.as_str()]);
    let (none, headers) = ids(&s, "&template=unknown-template").await;
    assert!(none.is_empty());
    assert_eq!(headers["x-total-running"], "0");
    assert_eq!(s.get("/v2/sandboxes?template=base%3Av2").send().await.unwrap().status(), 400);
    s.finish().await;
}
