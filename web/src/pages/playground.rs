//! `/`: where a person writes agent code and runs it as a turn, watching it live underneath.

use leptos::prelude::*;
use leptos::task::spawn_local;
use mayfly_core::{CreateTurnRequest, Event, Language, Limits};

use crate::api;
use crate::components::editor::Editor;
use crate::components::key_bar::{ApiKey, KeyBar};
use crate::components::turn_view::TurnView;
use crate::examples::{self, EXAMPLES};

/// The turn the playground shows, and whether it is still going.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current {
    turn_id: String,
    key: String,
    running: bool,
}

#[component]
pub(crate) fn Playground() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let seed = &EXAMPLES[0];
    let code = RwSignal::new(seed.code.to_owned());
    let language = RwSignal::new(seed.language);
    let database = RwSignal::new(seed.database);
    let timeout = RwSignal::new(Limits::default().default_timeout_s.to_string());
    let current = RwSignal::new(None::<Current>);
    let problem = RwSignal::new(None::<String>);
    let starting = RwSignal::new(false);

    let pick_example = move |ev| {
        if let Some(example) = examples::by_id(&event_target_value(&ev)) {
            code.set(example.code.to_owned());
            language.set(example.language);
            database.set(example.database);
        }
    };
    let run = Callback::new(move |()| {
        let Some(api_key) = key.get_untracked() else {
            problem.set(Some("Save an API key first.".to_owned()));
            return;
        };
        if starting.get_untracked() {
            return;
        }
        let limits = Limits::default();
        let timeout_s = match timeout.get_untracked().trim().parse::<u32>() {
            Ok(t) if (limits.min_timeout_s..=limits.max_timeout_s).contains(&t) => t,
            _ => {
                problem.set(Some(format!(
                    "The timeout is a whole number of seconds from {} to {}.",
                    limits.min_timeout_s, limits.max_timeout_s
                )));
                return;
            }
        };
        let mut request = CreateTurnRequest::new(code.get_untracked(), language.get_untracked());
        request.database = mayfly_core::DatabaseField::Enabled(database.get_untracked());
        request.timeout_s = Some(timeout_s);
        problem.set(None);
        starting.set(true);
        spawn_local(async move {
            match api::create_turn(&api_key, &request).await {
                Ok(created) => current.set(Some(Current { turn_id: created.turn_id, key: api_key, running: true })),
                Err(err) => {
                    if err.is_unauthorized() {
                        api::key::forget();
                        key.set(None);
                    }
                    problem.set(Some(err.to_string()));
                }
            }
            starting.set(false);
        });
    });
    let cancel = move |_| {
        let Some(turn) = current.get_untracked() else { return };
        spawn_local(async move {
            if let Err(err) = api::cancel(&turn.key, &turn.turn_id).await {
                problem.set(Some(err.to_string()));
            }
        });
    };
    let on_event = Callback::new(move |event: Event| {
        if event.body.is_terminal() {
            current.update(|c| {
                if let Some(c) = c {
                    c.running = false;
                }
            });
        }
    });
    let running = move || current.with(|c| c.as_ref().is_some_and(|c| c.running));
    // The view is keyed by the turn alone: a turn finishing must not remount it.
    let shown = Memo::new(move |_| current.with(|c| c.as_ref().map(|c| (c.turn_id.clone(), c.key.clone()))));

    view! {
        <section data-testid="page-playground" class="playground">
            <div class="page-head">
                <h1>"Playground"</h1>
                <KeyBar/>
            </div>
            <p class="lede">
                "Every turn gets a fresh sandbox and a scratch Postgres, requested in parallel, "
                "and both are reaped when the turn ends."
            </p>
            <form class="controls" on:submit=move |ev| { ev.prevent_default(); run.run(()); }>
                <label class="field">"Example"
                    <select data-testid="example" on:change=pick_example>
                        {EXAMPLES.iter().map(|e| view! { <option value=e.id>{e.title}</option> }).collect_view()}
                    </select>
                </label>
                <label class="field">"Language"
                    <select data-testid="language"
                        prop:value=move || language.get().as_str()
                        on:change=move |ev| {
                            let value = event_target_value(&ev);
                            if let Some(l) = Language::ALL.into_iter().find(|l| l.as_str() == value) {
                                language.set(l);
                            }
                        }>
                        {Language::ALL.map(|l| view! { <option value=l.as_str()>{l.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="field check">
                    <input type="checkbox" data-testid="database" prop:checked=move || database.get()
                        on:change=move |ev| database.set(event_target_checked(&ev))/>
                    "Database"
                </label>
                <label class="field">"Timeout (s)"
                    <input type="number" data-testid="timeout" min="1" max="900" inputmode="numeric"
                        prop:value=move || timeout.get() on:input=move |ev| timeout.set(event_target_value(&ev))/>
                </label>
                <div class="buttons">
                    <button type="submit" class="primary" data-testid="run"
                        disabled=move || starting.get() || running()>
                        {move || if starting.get() { "Starting…" } else { "Run" }}
                    </button>
                    <button type="button" data-testid="cancel" disabled=move || !running() on:click=cancel>
                        "Cancel"
                    </button>
                </div>
            </form>
            <Editor code=code on_run=run label="Agent code"/>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="problem">{p}</p> })}
            {move || shown.get().map(|(turn_id, key)| {
                view! { <TurnView turn_id=turn_id key=key on_event=on_event/> }
            })}
        </section>
    }
}
