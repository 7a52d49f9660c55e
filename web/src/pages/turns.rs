//! `/turns`: the tenant's recent turns and what the reaper did with their resources.

use leptos::prelude::*;

#[component]
pub(crate) fn Turns() -> impl IntoView {
    view! {
        <section data-testid="page-turns">
            <h1>"Turns"</h1>
            <p>"Recent turns, their outcome and the reap state of each sandbox and database."</p>
        </section>
    }
}
