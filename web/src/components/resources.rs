//! A turn's resources as its view shows them: each with its reap state and the time left before
//! its deadline, and the Keep button with what it answers.

use leptos::prelude::*;
use leptos::task::spawn_local;
use mayfly_core::{KeepResponse, ReapState, Resource, ResourceView, TurnDetail, TurnProgress, TurnState};

use crate::api;
use crate::components::time::format_ms;

#[component]
pub(crate) fn Resources(
    turn_id: String,
    key: String,
    detail: RwSignal<Option<TurnDetail>>,
    log: RwSignal<TurnProgress>,
    now: RwSignal<u64>,
) -> impl IntoView {
    let kept = RwSignal::new(None::<Result<KeepResponse, String>>);
    let keeping = RwSignal::new(false);
    let keep = move |_| {
        let (turn_id, key) = (turn_id.clone(), key.clone());
        keeping.set(true);
        spawn_local(async move {
            let answer = api::keep(&key, &turn_id).await.map_err(|e| e.to_string());
            if let Ok(turn) = api::turn(&key, &turn_id).await {
                detail.set(Some(turn));
            }
            kept.set(Some(answer));
            keeping.set(false);
        });
    };
    let rows = move || {
        let resources = detail.with(|d| d.as_ref().map(|d| d.resources.clone()).unwrap_or_default());
        let now = now.get();
        resources.into_iter().map(|r| resource_row(&r, now)).collect_view()
    };
    let can_keep = move || {
        detail.with(|d| {
            d.as_ref().is_some_and(|d| {
                // Keeping hands out a connection URL, which a checkpoint never has (`409`).
                d.state != TurnState::Finished
                    && d.spec.checkpoint_keep_s.is_none()
                    && d.resources.iter().any(|r| r.resource == Resource::Database && r.reap == ReapState::Live)
            })
        })
    };
    let claim = move || {
        match kept.get() {
            Some(Ok(answer)) => Some(view! {
                <div class="claim" data-testid="claim">
                    <p data-testid="claim-instructions">{answer.claim.instructions.clone()}</p>
                    <p>"Claim at " <a href=answer.claim.claim_url.clone() target="_blank" rel="noopener">
                        {answer.claim.claim_url.clone()}</a></p>
                    {answer.claim.expires_at.clone().map(|at| view! { <p>"Expires " {at}</p> })}
                    <label class="field">"Connection URL"
                        <input readonly data-testid="connection-url" prop:value=answer.connection_url/>
                    </label>
                </div>
            }
            .into_any()),
            Some(Err(err)) => Some(view! { <p class="error" data-testid="keep-error">{err}</p> }.into_any()),
            // Kept from elsewhere (another viewer, the API): the event says how to claim it.
            None => log.with(|l| l.claim.clone()).map(|claim| {
                view! {
                    <div class="claim" data-testid="claim">
                        <p data-testid="claim-instructions">{claim.instructions}</p>
                        <p>"Claim at " <a href=claim.claim_url target="_blank" rel="noopener">{claim.claim_url.clone()}</a></p>
                    </div>
                }
                .into_any()
            }),
        }
    };
    view! {
        <div class="resources" data-testid="resources">
            <h3>"Resources"</h3>
            <table>
                <thead><tr><th scope="col">"resource"</th><th scope="col">"id"</th><th scope="col">"reap"</th><th scope="col">"deadline"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            {move || log.with(reap_errors).into_iter().map(|e| view! { <p class="error">{e}</p> }).collect_view()}
            <Show when=can_keep>
                <button data-testid="keep" on:click=keep.clone() disabled=move || keeping.get()>
                    "Keep database"
                </button>
            </Show>
            {claim}
        </div>
    }
}

/// Why a resource's reap is failing, for as long as it is.
fn reap_errors(progress: &TurnProgress) -> Vec<String> {
    [Resource::Sandbox, Resource::Database]
        .into_iter()
        .filter_map(|resource| {
            let error = progress.resource(resource)?.error.as_ref()?;
            Some(format!("{} reap failed: {error}", resource.as_str()))
        })
        .collect()
}

fn resource_row(r: &ResourceView, now: u64) -> impl IntoView {
    let name = r.resource.as_str();
    let reap = r.reap.as_str();
    let until = |what: &str| {
        let left = r.deadline_unix_ms as i64 - now as i64;
        if left >= 0 {
            format!("{what} {}", format_ms(left as u64))
        } else {
            format!("overdue by {}", format_ms(left.unsigned_abs()))
        }
    };
    let countdown = match r.reap {
        ReapState::Live | ReapState::Reaping | ReapState::Failed => until("reaped within"),
        ReapState::Checkpointed => until("checkpoint kept for"),
        ReapState::Reaped | ReapState::Kept => "—".to_owned(),
    };
    let overdue = countdown.starts_with("overdue");
    view! {
        <tr data-testid=format!("resource-{name}") data-reap=reap class:overdue=overdue>
            <td>{name}</td>
            <td><code>{r.id.clone().unwrap_or_else(|| "—".into())}</code></td>
            <td><span class=format!("badge reap-{reap}")>{reap}</span>
                {r.error.clone().map(|e| view! { <span class="error">" " {e}</span> })}</td>
            <td data-testid=format!("countdown-{name}")>{countdown}</td>
        </tr>
    }
}
