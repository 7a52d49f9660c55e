//! `/`: where a person writes agent code and runs it as a turn.

use leptos::prelude::*;

#[component]
pub(crate) fn Playground() -> impl IntoView {
    view! {
        <section data-testid="page-playground">
            <h1>"Playground"</h1>
            <p>
                "Every turn gets a fresh sandbox and a scratch Postgres, requested in parallel, "
                "and both are reaped when the turn ends."
            </p>
        </section>
    }
}
