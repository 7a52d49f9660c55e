//! `/`: where a person writes agent code and runs it as a turn, watching it live underneath.
//! A turn can seed its database, keep it as a checkpoint, and start from another turn's
//! checkpoint (`docs/checkpoints.md`): `/?from=<turn id>` opens the playground forking that turn.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;
use mayfly_core::{CheckpointRequest, CreateTurnRequest, DatabaseField, DatabaseOptions, Event, Language, Limits};

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

/// What the form holds, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Form {
    code: String,
    language: Language,
    database: bool,
    timeout: String,
    seed_sql: String,
    checkpoint: bool,
    keep: String,
    from: String,
}

/// The request the form asks for, or what to tell the person instead of sending one the API would
/// refuse.
fn request_of(form: Form, limits: &Limits) -> Result<CreateTurnRequest, String> {
    let timeout_s = match form.timeout.trim().parse::<u32>() {
        Ok(t) if (limits.min_timeout_s..=limits.max_timeout_s).contains(&t) => t,
        _ => {
            return Err(format!(
                "The timeout is a whole number of seconds from {} to {}.",
                limits.min_timeout_s, limits.max_timeout_s
            ))
        }
    };
    let keep_s = match form.keep.trim().parse::<u32>() {
        _ if !form.checkpoint => None,
        Ok(k) if (1..=limits.max_checkpoint_keep_s).contains(&k) => Some(k),
        _ => {
            return Err(format!(
                "The checkpoint's keep is a whole number of seconds from 1 to {}.",
                limits.max_checkpoint_keep_s
            ))
        }
    };
    let seed_sql = Some(form.seed_sql).filter(|s| !s.trim().is_empty());
    let from = Some(form.from.trim().to_owned()).filter(|f| !f.is_empty());
    if !form.database {
        let mut needs = Vec::new();
        if from.is_some() {
            needs.push("a fork");
        }
        if seed_sql.is_some() {
            needs.push("seed SQL");
        }
        if keep_s.is_some() {
            needs.push("a checkpoint");
        }
        if !needs.is_empty() {
            let (verb, them) = if needs.len() == 1 { ("needs", "it") } else { ("need", "them") };
            return Err(format!(
                "{} {verb} the database: check Database, or clear {them}.",
                capitalized(&needs.join(" and "))
            ));
        }
    }
    let mut request = CreateTurnRequest::new(form.code, form.language);
    request.timeout_s = Some(timeout_s);
    request.database = if seed_sql.is_some() || from.is_some() {
        DatabaseField::With(DatabaseOptions { from, seed_sql })
    } else {
        DatabaseField::Enabled(form.database)
    };
    request.checkpoint = keep_s.map(|k| CheckpointRequest { keep_s: Some(k) });
    Ok(request)
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[component]
pub(crate) fn Playground() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let seed = &EXAMPLES[0];
    let code = RwSignal::new(seed.code.to_owned());
    let language = RwSignal::new(seed.language);
    let database = RwSignal::new(seed.database);
    let timeout = RwSignal::new(Limits::default().default_timeout_s.to_string());
    let seed_sql = RwSignal::new(String::new());
    let checkpoint = RwSignal::new(false);
    let keep = RwSignal::new(Limits::default().default_checkpoint_keep_s.to_string());
    let from = RwSignal::new(use_query_map().with_untracked(|q| q.get("from")).unwrap_or_default());
    if !from.get_untracked().is_empty() {
        database.set(true);
    }
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
        let form = Form {
            code: code.get_untracked(),
            language: language.get_untracked(),
            database: database.get_untracked(),
            timeout: timeout.get_untracked(),
            seed_sql: seed_sql.get_untracked(),
            checkpoint: checkpoint.get_untracked(),
            keep: keep.get_untracked(),
            from: from.get_untracked(),
        };
        let request = match request_of(form, &Limits::default()) {
            Ok(request) => request,
            Err(why) => {
                problem.set(Some(why));
                return;
            }
        };
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
    // A fork starts from the checkpoint, which holds what the parent's seed made already: running
    // the seed again would most likely fail on tables that exist.
    let fork = Callback::new(move |turn_id: String| {
        from.set(turn_id);
        database.set(true);
        seed_sql.set(String::new());
        problem.set(None);
        window().scroll_to_with_x_and_y(0.0, 0.0);
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
            // The page says what is wrong in words of its own, for every field alike.
            <form class="controls" novalidate on:submit=move |ev| { ev.prevent_default(); run.run(()); }>
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
                <label class="field check">
                    <input type="checkbox" data-testid="checkpoint" prop:checked=move || checkpoint.get()
                        on:change=move |ev| checkpoint.set(event_target_checked(&ev))/>
                    "Checkpoint"
                </label>
                <label class="field">"Keep (s)"
                    <input type="number" data-testid="checkpoint-keep" min="1" max="86400" inputmode="numeric"
                        disabled=move || !checkpoint.get()
                        prop:value=move || keep.get() on:input=move |ev| keep.set(event_target_value(&ev))/>
                </label>
                <Show when=move || from.with(|f| !f.is_empty())>
                    <div class="field fork-from">
                        <label for="fork-from">"From turn"</label>
                        <span class="fork-input">
                            <input id="fork-from" data-testid="fork-from" spellcheck="false" autocomplete="off"
                                prop:value=move || from.get() on:input=move |ev| from.set(event_target_value(&ev))/>
                            <button type="button" data-testid="fork-clear" aria-label="Do not fork"
                                title="Start from a fresh database" on:click=move |_| from.set(String::new())>"×"</button>
                        </span>
                    </div>
                </Show>
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
            <div class="field seed">
                <label for="seed-sql">"Seed SQL"</label>
                <textarea id="seed-sql" data-testid="seed-sql" rows="3" spellcheck="false" autocomplete="off"
                    aria-describedby="seed-sql-hint"
                    placeholder="CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) VALUES ('a');"
                    prop:value=move || seed_sql.get() on:input=move |ev| seed_sql.set(event_target_value(&ev))></textarea>
                <p class="hint" id="seed-sql-hint">"Optional: SQL run before the code, in one transaction."</p>
            </div>
            <Editor code=code on_run=run label="Agent code"/>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="problem">{p}</p> })}
            {move || shown.get().map(|(turn_id, key)| {
                view! { <TurnView turn_id=turn_id key=key on_event=on_event on_fork=fork/> }
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Form {
        Form {
            code: "print(1)".into(),
            language: Language::Python,
            database: true,
            timeout: "30".into(),
            seed_sql: String::new(),
            checkpoint: false,
            keep: "900".into(),
            from: String::new(),
        }
    }

    fn json(form: Form) -> String {
        serde_json::to_string(&request_of(form, &Limits::default()).unwrap()).unwrap()
    }

    #[test]
    fn a_plain_turn_asks_for_a_database_as_a_flag() {
        assert_eq!(json(form()), r#"{"code":"print(1)","language":"python","timeout_s":30,"database":true}"#);
        let off = Form { database: false, ..form() };
        assert_eq!(json(off), r#"{"code":"print(1)","language":"python","timeout_s":30,"database":false}"#);
    }

    #[test]
    fn a_seed_a_fork_and_a_checkpoint_become_the_apis_options() {
        let session = Form {
            seed_sql: "CREATE TABLE t (x int);".into(),
            from: " t_abc ".into(),
            checkpoint: true,
            keep: "60".into(),
            ..form()
        };
        assert_eq!(
            json(session),
            r#"{"code":"print(1)","language":"python","timeout_s":30,"database":{"from":"t_abc","seed_sql":"CREATE TABLE t (x int);"},"checkpoint":{"keep_s":60}}"#
        );
        // Blank seed SQL is no seed, and an unchecked checkpoint ignores its keep.
        let blank = Form { seed_sql: "  \n".into(), keep: "nonsense".into(), ..form() };
        assert_eq!(json(blank), r#"{"code":"print(1)","language":"python","timeout_s":30,"database":true}"#);
    }

    #[test]
    fn what_the_api_would_refuse_is_said_instead() {
        let limits = Limits::default();
        let refused = |form: Form| request_of(form, &limits).unwrap_err();
        for keep in ["0", "86401", "1.5", ""] {
            let why = refused(Form { checkpoint: true, keep: keep.into(), ..form() });
            assert_eq!(why, "The checkpoint's keep is a whole number of seconds from 1 to 86400.", "{keep:?}");
        }
        assert!(request_of(Form { checkpoint: true, keep: "86400".into(), ..form() }, &limits).is_ok());
        let no_db = Form { database: false, ..form() };
        assert_eq!(
            refused(Form { from: "t_1".into(), ..no_db.clone() }),
            "A fork needs the database: check Database, or clear it."
        );
        assert_eq!(
            refused(Form { seed_sql: "select 1".into(), checkpoint: true, ..no_db }),
            "Seed SQL and a checkpoint need the database: check Database, or clear them."
        );
        assert!(refused(Form { timeout: "0".into(), ..form() }).starts_with("The timeout is"));
    }
}
