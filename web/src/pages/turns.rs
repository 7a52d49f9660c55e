//! `/turns`: the tenant's recent turns with what the reaper did with each resource, and the
//! reaper's own state — leases alive, overdue or failing, checkpoints kept with the time each has
//! left, and the last sweep — refreshed live.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use mayfly_core::{LeaseView, Outcome, ReaperStatus, Resource, TurnList, TurnSummary};

use crate::api;
use crate::components::key_bar::{ApiKey, KeyBar};
use crate::components::time::{format_ms, now_unix_ms, sleep};

/// How often the dashboard asks again.
const REFRESH: Duration = Duration::from_secs(2);

#[component]
pub(crate) fn Turns() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let turns = RwSignal::new(None::<Result<TurnList, String>>);
    let reaper = RwSignal::new(None::<Result<ReaperStatus, String>>);
    let refreshed = RwSignal::new(0u64);
    let (task, abort) = futures::future::abortable(async move {
        loop {
            if let Some(k) = key.get_untracked() {
                let (t, r) = futures::join!(api::turns(&k), api::reaper(&k));
                turns.set(Some(t.map_err(|e| e.to_string())));
                reaper.set(Some(r.map_err(|e| e.to_string())));
                refreshed.set(now_unix_ms());
            }
            sleep(REFRESH).await;
        }
    });
    spawn_local(async move {
        let _ = task.await;
    });
    on_cleanup(move || abort.abort());

    let overdue_turns = move || {
        reaper.with(|r| match r {
            Some(Ok(r)) => r.overdue.iter().map(|l| l.turn_id.clone()).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    };
    let table = move || match turns.get() {
        None if key.with(Option::is_none) => view! { <p>"Save an API key to see your turns."</p> }.into_any(),
        None => view! { <p>"Loading…"</p> }.into_any(),
        Some(Err(err)) => view! { <p class="error" role="alert">{err}</p> }.into_any(),
        Some(Ok(list)) if list.turns.is_empty() => {
            view! { <p data-testid="no-turns">"No turns yet: run one from the playground."</p> }.into_any()
        }
        Some(Ok(list)) => {
            let overdue = overdue_turns();
            let now = refreshed.get();
            view! {
                <div class="table-wrap">
                <table class="turns" data-testid="turns-table">
                    <thead><tr>
                        <th scope="col">"turn"</th><th scope="col">"started"</th><th scope="col">"language"</th>
                        <th scope="col">"outcome"</th><th scope="col">"duration"</th>
                        <th scope="col">"sandbox"</th><th scope="col">"database"</th>
                    </tr></thead>
                    <tbody>
                        {list.turns.into_iter().map(|t| turn_row(t, &overdue, now)).collect_view()}
                    </tbody>
                </table>
                </div>
            }
            .into_any()
        }
    };
    view! {
        <section data-testid="page-turns">
            <div class="page-head">
                <h1>"Turns"</h1>
                <KeyBar/>
            </div>
            <p class="lede">"Recent turns, their outcome and the reap state of each sandbox and database."</p>
            <ReaperCard reaper=reaper/>
            {table}
        </section>
    }
}

fn turn_row(turn: TurnSummary, overdue: &[String], now: u64) -> impl IntoView {
    let reap_of =
        |resource: Resource| turn.resources.iter().find(|r| r.resource == resource).map_or("—", |r| r.reap.as_str());
    let (sandbox, database) = (reap_of(Resource::Sandbox), reap_of(Resource::Database));
    let outcome = turn.outcome.map_or(turn.state.as_str(), Outcome::as_str);
    let is_overdue = overdue.contains(&turn.turn_id);
    let href = format!("/turns/{}", turn.turn_id);
    view! {
        <tr data-testid="turn-row" data-turn-id=turn.turn_id.clone() class:overdue=is_overdue>
            <td><a href=href><code>{turn.turn_id.clone()}</code></a></td>
            <td>{format!("{} ago", format_ms(now.saturating_sub(turn.created_unix_ms)))}</td>
            <td>{turn.language.as_str()}</td>
            <td><span class=format!("badge outcome-{outcome}") data-testid="turn-outcome">{outcome}</span></td>
            <td>{turn.duration_ms.map_or_else(|| "…".to_owned(), format_ms)}</td>
            <td><span class=format!("badge reap-{sandbox}") data-testid="reap-sandbox">{sandbox}</span></td>
            <td><span class=format!("badge reap-{database}") data-testid="reap-database">{database}</span></td>
        </tr>
    }
}

#[component]
fn ReaperCard(reaper: RwSignal<Option<Result<ReaperStatus, String>>>) -> impl IntoView {
    let body = move || match reaper.get() {
        None => view! { <p>"…"</p> }.into_any(),
        Some(Err(err)) => view! { <p class="error">{err}</p> }.into_any(),
        Some(Ok(status)) => {
            let sweep = match &status.last_sweep {
                None => "no sweep has run yet".to_owned(),
                Some(s) => {
                    let failed = s.failed.iter().map(|f| {
                        format!("{} {}: {}", f.resource.as_str(), f.id, f.error.as_deref().unwrap_or_default())
                    });
                    let errors: Vec<String> = failed.chain(s.errors.iter().cloned()).collect();
                    format!(
                        "last sweep {} ago: reaped {} of your turns' resources left behind{}",
                        format_ms(now_unix_ms().saturating_sub(s.at_unix_ms)),
                        s.reaped.len(),
                        if errors.is_empty() { String::new() } else { format!("; errors: {}", errors.join("; ")) },
                    )
                }
            };
            view! {
                <dl class="stats">
                    <div><dt>"alive"</dt><dd data-testid="reaper-alive">{status.alive}</dd></div>
                    <div class:warn=!status.overdue.is_empty()><dt>"overdue"</dt>
                        <dd data-testid="reaper-overdue">{status.overdue.len()}</dd></div>
                    <div class:warn=!status.failed.is_empty()><dt>"failing"</dt>
                        <dd data-testid="reaper-failed">{status.failed.len()}</dd></div>
                    <div><dt>"checkpoints"</dt>
                        <dd data-testid="reaper-checkpoint-count">{status.checkpoints.len()}</dd></div>
                </dl>
                <p data-testid="reaper-sweep">{sweep}</p>
                {checkpoint_list(&status.checkpoints, now_unix_ms())}
                {lease_list("Overdue", &status.overdue)}
                {lease_list("Failing", &status.failed)}
            }
            .into_any()
        }
    };
    view! {
        <div class="card" data-testid="reaper">
            <h2>"Reaper"</h2>
            {body}
        </div>
    }
}

/// The databases kept as checkpoints, each with the time it has left before it is reaped.
fn checkpoint_list(checkpoints: &[LeaseView], now: u64) -> Option<impl IntoView> {
    (!checkpoints.is_empty()).then(|| {
        let items = checkpoints
            .iter()
            .map(|l| {
                let left = if l.deadline_unix_ms > now {
                    format!("kept for {} more", format_ms(l.deadline_unix_ms - now))
                } else {
                    "its time is up: being reaped".to_owned()
                };
                view! {
                    <li data-testid="reaper-checkpoint" data-turn-id=l.turn_id.clone()>
                        <a href=format!("/turns/{}", l.turn_id)><code>{l.turn_id.clone()}</code></a>
                        " · " <span data-testid="reaper-checkpoint-countdown">{left}</span>
                    </li>
                }
            })
            .collect_view();
        view! { <h3>"Checkpoints"</h3><ul class="checkpoints" data-testid="reaper-checkpoints">{items}</ul> }
    })
}

fn lease_list(title: &'static str, leases: &[LeaseView]) -> Option<impl IntoView> {
    (!leases.is_empty()).then(|| {
        let items = leases
            .iter()
            .map(|l| {
                view! { <li class="overdue"><code>{l.turn_id.clone()}</code> " " {l.resource.as_str()} " · " {l.reap.as_str()}</li> }
            })
            .collect_view();
        view! { <h3>{title}</h3><ul>{items}</ul> }
    })
}
