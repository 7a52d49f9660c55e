//! Any path the app does not know.

use leptos::prelude::*;

#[component]
pub(crate) fn NotFound() -> impl IntoView {
    view! {
        <section data-testid="page-not-found">
            <h1>"Not found"</h1>
            <p><a href="/">"Back to the playground"</a></p>
        </section>
    }
}
