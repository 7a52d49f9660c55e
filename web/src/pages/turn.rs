//! `/turns/{id}`: one turn, live or finished, as anyone with the tenant's key can follow it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;

use crate::api;
use crate::components::key_bar::{ApiKey, KeyBar};
use crate::components::turn_view::TurnView;

#[component]
pub(crate) fn Turn() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let params = use_params_map();
    let turn_id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    let problem = RwSignal::new(None::<String>);
    let cancel = move |_| {
        let (Some(key), id) = (key.get_untracked(), turn_id.get_untracked()) else { return };
        spawn_local(async move {
            if let Err(err) = api::cancel(&key, &id).await {
                problem.set(Some(err.to_string()));
            }
        });
    };
    view! {
        <section data-testid="page-turn">
            <div class="page-head">
                <h1>"Turn"</h1>
                <KeyBar/>
            </div>
            <p><a href="/turns">"← all turns"</a> " · "
                <button type="button" class="link" data-testid="cancel" on:click=cancel>"Cancel this turn"</button></p>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            {move || match key.get() {
                Some(key) => view! { <TurnView turn_id=turn_id.get() key=key/> }.into_any(),
                None => view! { <p>"Save an API key to follow this turn."</p> }.into_any(),
            }}
        </section>
    }
}
