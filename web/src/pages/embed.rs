//! `/embed`: the editor and the live turn without the app's chrome, for an iframe in a web IDE.
//!
//! Set up by the query (`?code=…&language=python&database=false&timeout_s=30&autorun=1`, and
//! `origin=https://ide.example` to pin who may talk to it) or driven by `postMessage`. The message
//! shapes are documented in `docs/embed.md`:
//!
//! - to the frame: `{type: "mayfly.token", token}` (a turn token from `POST /v1/tokens`),
//!   `{type: "mayfly.run", code, language?, database?, checkpoint?, timeout_s?, api_key?}`, where
//!   `database` and `checkpoint` are the API's own (`true`/`false` or `{from?, seed_sql?}`, and
//!   `{keep_s?}`),
//!   `{type: "mayfly.cancel"}`;
//! - from the frame: `{type: "mayfly.ready"}`, `{type: "mayfly.turn", turn_id}`,
//!   `{type: "mayfly.event", turn_id, event}` (every event, once, in order),
//!   `{type: "mayfly.error", message}`.
//!
//! Trust. Which pages may frame this view at all is the deployment's `EMBED_ORIGINS` (the page's
//! `frame-ancestors`). Within that, the frame runs nothing on its own (`autorun`) and never uses
//! the key saved in this browser unless the embedder pinned its origin (`origin=`) and the page
//! framing it really is at that origin; otherwise a `mayfly.run` must bring its own `api_key`.
//! A token is taken only from the parent window at the pinned origin: a frame that pins none
//! cannot tell whose token it would be spending. It is the better credential for an embedder to
//! hand over: it only runs turns, and soon expires. (A browser keeps a third-party frame's storage
//! apart from the first-party site's, so in another site's page the saved key is often not there
//! at all.)

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;
use mayfly_core::{CheckpointRequest, CreateTurnRequest, DatabaseField, Event, Language};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::components::editor::Editor;
use crate::components::key_bar::ApiKey;
use crate::components::turn_view::TurnView;

/// What a parent window may ask.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum Inbound {
    #[serde(rename = "mayfly.run")]
    Run {
        code: String,
        #[serde(default)]
        language: Option<Language>,
        /// As in `POST /v1/turns`: a flag, or what the database starts from.
        #[serde(default)]
        database: Option<DatabaseField>,
        #[serde(default)]
        checkpoint: Option<CheckpointRequest>,
        #[serde(default)]
        timeout_s: Option<u32>,
        #[serde(default)]
        api_key: Option<String>,
    },
    #[serde(rename = "mayfly.cancel")]
    Cancel {},
    #[serde(rename = "mayfly.token")]
    Token { token: String },
}

/// What the frame tells its parent.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
enum Outbound<'a> {
    #[serde(rename = "mayfly.ready")]
    Ready {},
    #[serde(rename = "mayfly.turn")]
    Turn { turn_id: &'a str },
    #[serde(rename = "mayfly.event")]
    Event { turn_id: &'a str, event: &'a Event },
    #[serde(rename = "mayfly.error")]
    Error { message: &'a str },
}

/// Posts `message` to the parent window, only to `origin` when the embedder pinned one; with no
/// origin (the parent is not the pinned one), to nobody.
fn post(message: &Outbound<'_>, origin: &str) {
    if origin.is_empty() {
        return;
    }
    let window = window();
    let Ok(Some(parent)) = window.parent() else { return };
    if let Ok(json) = serde_json::to_string(message) {
        if let Ok(value) = js_sys::JSON::parse(&json) {
            let _ = parent.post_message(&value, origin);
        }
    }
}

/// The origin of the page that frames this one, as the browser reports it: Chromium and Safari
/// list the ancestors' origins; elsewhere the referrer is the best there is. `None` at the top.
fn parent_origin() -> Option<String> {
    let window = window();
    let framed = window.parent().ok().flatten().is_some_and(|parent| !js_sys::Object::is(&parent, &window));
    if !framed {
        return None;
    }
    // `location.ancestorOrigins` is not in every browser, so not in web-sys either.
    let ancestors = js_sys::Reflect::get(&window.location(), &"ancestorOrigins".into()).ok();
    let list = ancestors.and_then(|list| wasm_bindgen::JsCast::dyn_into::<web_sys::DomStringList>(list).ok());
    if let Some(origin) = list.and_then(|list| list.item(0)) {
        return Some(origin);
    }
    let referrer = document().referrer();
    web_sys::Url::new(&referrer).ok().map(|url| url.origin()).filter(|origin| origin != "null")
}

/// Whether the parent is the one the embedder pinned: only then may the frame act on its own.
fn trusts(pinned: Option<&str>, parent: Option<&str>) -> bool {
    matches!((pinned, parent), (Some(pinned), Some(parent)) if pinned == parent)
}

/// Whether a message, as JSON, is a `mayfly.run`.
fn is_run(json: &str) -> bool {
    #[derive(Deserialize)]
    struct Typed {
        r#type: String,
    }
    serde_json::from_str::<Typed>(json).is_ok_and(|t| t.r#type == "mayfly.run")
}

/// Whether a token sent from `sender` (a message's origin, as the browser reports it) is taken:
/// only from the origin the embed URL pins.
fn takes_token(pinned: Option<&str>, sender: &str) -> bool {
    pinned.is_some_and(|pinned| pinned == sender)
}

#[component]
pub(crate) fn Embed() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let query = use_query_map().get_untracked();
    let param = |name: &str| query.get(name).filter(|v| !v.is_empty());
    let parent = parent_origin();
    let trusted = trusts(param("origin").as_deref(), parent.as_deref());
    // Where messages go: the pinned origin (or anyone, unpinned). When the parent is known to be
    // elsewhere, nothing is posted at all: the browser would drop it, and complain.
    let origin = match (param("origin"), parent) {
        (Some(pinned), Some(parent)) if pinned != parent => String::new(),
        (Some(pinned), _) => pinned,
        (None, _) => "*".to_owned(),
    };
    let code = RwSignal::new(param("code").unwrap_or_default());
    let language = RwSignal::new(
        param("language").and_then(|l| Language::ALL.into_iter().find(|x| x.as_str() == l)).unwrap_or_default(),
    );
    let database = RwSignal::new(param("database").is_none_or(|d| d != "false" && d != "0"));
    let timeout_s = param("timeout_s").and_then(|t| t.parse::<u32>().ok());
    let current = RwSignal::new(None::<(String, String)>);
    let problem = RwSignal::new(None::<String>);
    // The newest turn token the pinned parent handed over; it is held in memory only.
    let token = RwSignal::new(None::<String>);

    let start = {
        let origin = origin.clone();
        move |request: CreateTurnRequest, api_key: Option<String>| {
            // The saved key is this browser's person's: only a parent they trust may spend it.
            let saved = if trusted { key.get_untracked() } else { None };
            let Some(api_key) = api_key.or_else(|| token.get_untracked()).or(saved) else {
                let message = if trusted || key.get_untracked().is_none() {
                    "no API key: hand the frame a turn token (`mayfly.token`), send a key in `mayfly.run`, or \
                     save one in the playground"
                } else {
                    "no API key: the key saved in this browser is used only when the embed URL pins this \
                     page's origin (`origin=`); hand the frame a turn token, or send one in `mayfly.run`"
                };
                problem.set(Some(message.to_owned()));
                post(&Outbound::Error { message }, &origin);
                return;
            };
            let origin = origin.clone();
            spawn_local(async move {
                match api::create_turn(&api_key, &request).await {
                    Ok(created) => {
                        post(&Outbound::Turn { turn_id: &created.turn_id }, &origin);
                        problem.set(None);
                        current.set(Some((created.turn_id, api_key)));
                    }
                    Err(err) => {
                        post(&Outbound::Error { message: &err.message }, &origin);
                        problem.set(Some(err.message));
                    }
                }
            });
        }
    };
    let run_editor = {
        let start = start.clone();
        Callback::new(move |()| {
            let mut request = CreateTurnRequest::new(code.get_untracked(), language.get_untracked());
            request.database = DatabaseField::Enabled(database.get_untracked());
            request.timeout_s = timeout_s;
            start(request, None);
        })
    };
    let cancel = move || {
        if let Some((turn_id, key)) = current.get_untracked() {
            spawn_local(async move {
                let _ = api::cancel(&key, &turn_id).await;
            });
        }
    };

    let pinned = param("origin");
    let listener = window_event_listener(leptos::ev::message, {
        let origin = origin.clone();
        move |ev: web_sys::MessageEvent| {
            // Only the embedding page speaks to the frame, and only from the pinned origin.
            let from_parent = window()
                .parent()
                .ok()
                .flatten()
                .is_some_and(|parent| ev.source().is_some_and(|source| js_sys::Object::is(&source, &parent)));
            if !from_parent || pinned.as_deref().is_some_and(|o| o != ev.origin()) {
                return;
            }
            let Ok(json) = js_sys::JSON::stringify(&ev.data()) else { return };
            let json = String::from(json);
            let message = match serde_json::from_str::<Inbound>(&json) {
                Ok(message) => message,
                // A run the frame cannot read is said to be so (a misspelt `seed_sql` must not run
                // the code without its seed); anything else is not meant for the frame.
                Err(err) if is_run(&json) => {
                    let message = format!("this `mayfly.run` cannot be read: {err}");
                    problem.set(Some(message.clone()));
                    post(&Outbound::Error { message: &message }, &origin);
                    return;
                }
                Err(_) => return,
            };
            match message {
                Inbound::Run { code: text, language: lang, database: db, checkpoint, timeout_s, api_key } => {
                    code.set(text.clone());
                    let mut request = CreateTurnRequest::new(text, lang.unwrap_or_default());
                    if let Some(l) = lang {
                        language.set(l);
                    }
                    request.database = db.unwrap_or_default();
                    request.checkpoint = checkpoint;
                    request.timeout_s = timeout_s;
                    start(request, api_key);
                }
                Inbound::Cancel {} => cancel(),
                Inbound::Token { token: handed } if takes_token(pinned.as_deref(), &ev.origin()) => {
                    token.set(Some(handed.trim().to_owned()).filter(|t| !t.is_empty()));
                }
                Inbound::Token { .. } => {
                    let message = "a turn token is taken only when the embed URL pins the parent's origin (`origin=`)";
                    problem.set(Some(message.to_owned()));
                    post(&Outbound::Error { message }, &origin);
                }
            }
        }
    });
    on_cleanup(move || listener.remove());

    post(&Outbound::Ready {}, &origin);
    let notice = RwSignal::new(None::<String>);
    if param("autorun").is_some_and(|a| a == "1" || a == "true") && !code.get_untracked().is_empty() {
        if trusted {
            run_editor.run(());
        } else {
            notice.set(Some(
                "Not run on its own: autorun needs the embed URL to pin the embedding page's origin \
                 (origin=…), and this page to be at it. Press Run to run it."
                    .to_owned(),
            ));
        }
    }
    let on_event = {
        Callback::new(move |event: Event| {
            if let Some((turn_id, _)) = current.get_untracked() {
                post(&Outbound::Event { turn_id: &turn_id, event: &event }, &origin);
            }
        })
    };
    let shown = Memo::new(move |_| current.get());

    view! {
        <section class="embed" data-testid="page-embed">
            <div class="controls">
                <span class="brand small">"mayfly"</span>
                <span class="badge">{move || language.get().as_str()}</span>
                <button class="primary" data-testid="run" on:click=move |_| {
                    notice.set(None);
                    run_editor.run(());
                }>"Run"</button>
                <button data-testid="cancel" on:click=move |_| cancel()>"Cancel"</button>
            </div>
            <Editor code=code on_run=run_editor label="Code"/>
            {move || notice.get().map(|n| view! { <p class="notice" data-testid="notice">{n}</p> })}
            {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="problem">{p}</p> })}
            {move || shown.get().map(|(turn_id, key)| view! { <TurnView turn_id=turn_id key=key on_event=on_event/> })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use mayfly_core::{CheckpointRequest, DatabaseField, DatabaseOptions};

    use super::{is_run, takes_token, trusts, Inbound};

    #[test]
    fn a_token_is_taken_from_the_pinned_origin_only() {
        assert!(takes_token(Some("https://ide.example"), "https://ide.example"));
        assert!(!takes_token(Some("https://ide.example"), "https://evil.example"));
        assert!(!takes_token(None, "https://ide.example"), "an unpinned frame cannot tell whose token it is");
        let message: Inbound = serde_json::from_str(r#"{"type":"mayfly.token","token":"mft1.a.b"}"#).unwrap();
        assert!(matches!(message, Inbound::Token { token } if token == "mft1.a.b"));
    }

    #[test]
    fn a_run_takes_the_apis_database_and_checkpoint_settings() {
        let read = |json: &str| match serde_json::from_str::<Inbound>(json).unwrap() {
            Inbound::Run { database, checkpoint, .. } => (database, checkpoint),
            other => panic!("{other:?}"),
        };
        assert_eq!(read(r#"{"type":"mayfly.run","code":"x"}"#), (None, None));
        assert_eq!(read(r#"{"type":"mayfly.run","code":"x","database":false}"#).0, Some(DatabaseField::Enabled(false)));
        let (database, checkpoint) = read(
            r#"{"type":"mayfly.run","code":"x","database":{"from":"t_1","seed_sql":"select 1"},"checkpoint":{"keep_s":60}}"#,
        );
        let options = DatabaseOptions { from: Some("t_1".into()), seed_sql: Some("select 1".into()) };
        assert_eq!(database, Some(DatabaseField::With(options)));
        assert_eq!(checkpoint, Some(CheckpointRequest { keep_s: Some(60) }));
        // A misspelt option is refused as the API would refuse it, not run without it.
        let misspelt = r#"{"type":"mayfly.run","code":"x","database":{"seed":"x"}}"#;
        assert!(serde_json::from_str::<Inbound>(misspelt).is_err());
        assert!(is_run(misspelt) && !is_run(r#"{"type":"other"}"#) && !is_run("3"));
    }

    #[test]
    fn only_a_pinned_origin_that_is_the_parents_is_trusted() {
        assert!(trusts(Some("https://ide.example"), Some("https://ide.example")));
        assert!(!trusts(Some("https://ide.example"), Some("https://evil.example")));
        assert!(!trusts(None, Some("https://ide.example")), "not pinned");
        assert!(!trusts(Some("https://ide.example"), None), "not framed, or the parent is unknown");
        assert!(!trusts(None, None));
    }
}
