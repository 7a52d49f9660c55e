//! A turn's place in a session of turns (`docs/checkpoints.md`): the turn it was forked from, and
//! the checkpoint it keeps — live or not, a countdown to its reap, and what can be done with it:
//! fork it, keep it longer, release it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use mayfly_core::{CheckpointView, TurnDetail, TurnProgress};

use crate::api;
use crate::components::time::format_ms;

/// How long "Keep 15 min more" keeps the checkpoint, from now.
const EXTEND_S: u32 = 15 * 60;

/// "forked from <parent>", when the turn's database is a copy of another turn's checkpoint.
#[component]
pub(crate) fn Lineage(log: RwSignal<TurnProgress>, detail: RwSignal<Option<TurnDetail>>) -> impl IntoView {
    move || {
        let parent = log
            .with(|l| l.parent_turn_id.clone())
            .or_else(|| detail.with(|d| d.as_ref().and_then(|d| d.spec.from.clone())))?;
        Some(view! {
            <p class="lineage" data-testid="lineage">
                "forked from " <a href=format!("/turns/{parent}") data-turn-id=parent><code>{parent.clone()}</code></a>
            </p>
        })
    }
}

/// Where the checkpoint is, as the panel says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Asked for; the process has not exited yet.
    Pending,
    Live,
    /// Released from this page.
    Released,
    /// Released elsewhere, or ran out.
    Gone,
    /// The turn ended without one: it did not exit, or the checkpoint failed (its error says why).
    NotMade,
}

impl State {
    fn of(view: Option<&CheckpointView>, progress: &TurnProgress, released_here: bool) -> State {
        match view {
            _ if released_here => State::Released,
            Some(v) if v.live => State::Live,
            Some(_) => State::Gone,
            None if progress.is_finished() => State::NotMade,
            None => State::Pending,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Live => "live",
            State::Released => "released",
            State::Gone => "gone",
            State::NotMade => "not-made",
        }
    }
}

fn countdown(state: State, view: Option<&CheckpointView>, keep_s: u32, now: u64) -> String {
    match (state, view) {
        (State::Pending, _) => format!("to be kept for {} once the process exits", format_ms(u64::from(keep_s) * 1000)),
        (State::Live, Some(v)) if v.keep_until_unix_ms > now && at_limit(v) => {
            format!("kept for {} more, the longest it can be", format_ms(v.keep_until_unix_ms - now))
        }
        (State::Live, Some(v)) if v.keep_until_unix_ms > now => {
            format!("kept for {} more", format_ms(v.keep_until_unix_ms - now))
        }
        (State::Live, _) => "its time is up: being reaped".to_owned(),
        (State::Released, _) => "its database is reaped now".to_owned(),
        (State::Gone, _) => "no longer kept: released, or its time ran out".to_owned(),
        (State::NotMade, _) => "not kept: the turn ended without one".to_owned(),
    }
}

/// Whether the checkpoint is kept as long as it ever can be (a day past its turn's deadline), so
/// that keeping it longer would change nothing.
fn at_limit(view: &CheckpointView) -> bool {
    view.keep_until_unix_ms >= view.limit_unix_ms
}

/// The checkpoint of a turn that asked for one. `on_fork` is what "Fork from this turn" does where
/// there is a form to fill (the playground); elsewhere it links to the playground, forking.
#[component]
pub(crate) fn CheckpointPanel(
    turn_id: String,
    key: String,
    detail: RwSignal<Option<TurnDetail>>,
    log: RwSignal<TurnProgress>,
    now: RwSignal<u64>,
    on_fork: Option<Callback<String>>,
) -> impl IntoView {
    let released_here = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let keep_s = Memo::new(move |_| detail.with(|d| d.as_ref().and_then(|d| d.spec.checkpoint_keep_s)));
    let view = Memo::new(move |_| detail.with(|d| d.as_ref().and_then(|d| d.checkpoint.clone())));
    let state = Memo::new(move |_| view.with(|v| log.with(|l| State::of(v.as_ref(), l, released_here.get()))));
    let live = move || state.get() == State::Live;
    let extendable = move || live() && !view.with(|v| v.as_ref().is_some_and(at_limit));

    let extend = {
        let (turn_id, key) = (turn_id.clone(), key.clone());
        move |_| {
            let (turn_id, key) = (turn_id.clone(), key.clone());
            busy.set(true);
            error.set(None);
            spawn_local(async move {
                match api::extend_checkpoint(&key, &turn_id, EXTEND_S).await {
                    Ok(extended) => detail.update(|d| {
                        if let Some(d) = d {
                            d.checkpoint = Some(extended);
                        }
                    }),
                    Err(err) => error.set(Some(format!("Could not keep the checkpoint longer: {err}"))),
                }
                busy.set(false);
            });
        }
    };
    let release = {
        let turn_id = turn_id.clone();
        move |_| {
            let (turn_id, key) = (turn_id.clone(), key.clone());
            busy.set(true);
            error.set(None);
            spawn_local(async move {
                match api::release_checkpoint(&key, &turn_id).await {
                    Ok(()) => {
                        released_here.set(true);
                        // The database's reap shows on the detail: read it now rather than at the
                        // next poll.
                        if let Ok(turn) = api::turn(&key, &turn_id).await {
                            detail.set(Some(turn));
                        }
                    }
                    Err(err) => error.set(Some(format!("Could not release the checkpoint: {err}"))),
                }
                busy.set(false);
            });
        }
    };
    let fork = move || match on_fork {
        Some(on_fork) => {
            let turn_id = turn_id.clone();
            view! {
                <button type="button" class="primary" data-testid="fork" disabled=move || !live()
                    on:click=move |_| on_fork.run(turn_id.clone())>"Fork from this turn"</button>
            }
            .into_any()
        }
        None if live() => {
            // In someone else's page (the embed view), the playground opens beside it.
            let framed = window().parent().ok().flatten().is_some_and(|p| !js_sys::Object::is(&p, &window()));
            view! {
                <a class="button primary" data-testid="fork" href=format!("/?from={turn_id}")
                    target=framed.then_some("_blank") rel=framed.then_some("noopener")>"Fork from this turn"</a>
            }
            .into_any()
        }
        None => {
            view! { <button type="button" data-testid="fork" disabled=true>"Fork from this turn"</button> }.into_any()
        }
    };

    move || {
        let keep_s = keep_s.get()?;
        let (extend, release, fork) = (extend.clone(), release.clone(), fork.clone());
        let text = move || view.with(|v| countdown(state.get(), v.as_ref(), keep_s, now.get()));
        let until = move || view.with(|v| v.as_ref().map(|v| v.keep_until_unix_ms.to_string()));
        Some(view! {
            <div class="checkpoint" data-testid="checkpoint-panel" data-live=move || live().to_string()
                data-state=move || state.get().as_str()>
                <h3>"Checkpoint"</h3>
                <p>
                    <span class=move || format!("badge checkpoint-{}", state.get().as_str()) data-testid="checkpoint-state">
                        {move || state.get().as_str().replace('-', " ")}
                    </span>
                    " " <span data-testid="checkpoint-countdown" data-until=until>{text}</span>
                </p>
                <div class="buttons">
                    {fork}
                    <button type="button" data-testid="extend" disabled=move || !extendable() || busy.get() on:click=extend>
                        "Keep 15 min more"
                    </button>
                    <button type="button" data-testid="release" disabled=move || !live() || busy.get() on:click=release>
                        "Release"
                    </button>
                </div>
                {move || error.get().map(|e| view! { <p class="error" role="alert" data-testid="checkpoint-error">{e}</p> })}
            </div>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(live: bool, until: u64) -> CheckpointView {
        CheckpointView { turn_id: "t".into(), live, keep_until_unix_ms: until, limit_unix_ms: until * 2, summary: None }
    }

    #[test]
    fn the_panel_says_where_the_checkpoint_is() {
        let running = TurnProgress::default();
        let finished = TurnProgress { state: mayfly_core::TurnState::Finished, ..TurnProgress::default() };
        assert_eq!(State::of(None, &running, false), State::Pending);
        assert_eq!(State::of(None, &finished, false), State::NotMade);
        assert_eq!(State::of(Some(&view(true, 10)), &finished, false), State::Live);
        assert_eq!(State::of(Some(&view(false, 10)), &finished, false), State::Gone);
        assert_eq!(State::of(Some(&view(true, 10)), &finished, true), State::Released, "before the detail says so");
        assert_eq!(countdown(State::Live, Some(&view(true, 65_000)), 900, 5_000), "kept for 1 min 00 s more");
        assert_eq!(countdown(State::Live, Some(&view(true, 5_000)), 900, 6_000), "its time is up: being reaped");
        assert_eq!(countdown(State::Pending, None, 900, 0), "to be kept for 15 min 00 s once the process exits");
        let longest = CheckpointView { limit_unix_ms: 65_000, ..view(true, 65_000) };
        assert!(at_limit(&longest) && !at_limit(&view(true, 65_000)));
        assert_eq!(
            countdown(State::Live, Some(&longest), 900, 5_000),
            "kept for 1 min 00 s more, the longest it can be"
        );
    }
}
