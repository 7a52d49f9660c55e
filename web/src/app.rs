//! The app's frame: header with navigation, the routed page, and a footer with the API's health.
//! The embed view has no frame: it lives in someone else's page.

use leptos::prelude::*;
use leptos_router::components::{Outlet, ParentRoute, Route, Router, Routes, A};
use leptos_router::path;

use crate::api;
use crate::components::key_bar::ApiKey;
use crate::pages::{embed::Embed, not_found::NotFound, playground::Playground, turn::Turn, turns::Turns};

#[component]
pub(crate) fn App() -> impl IntoView {
    ApiKey::provide();
    view! {
        <Router>
            <Routes fallback=|| view! { <Shell><NotFound/></Shell> }>
                <Route path=path!("/embed") view=Embed/>
                <ParentRoute path=path!("") view=|| view! { <Shell><Outlet/></Shell> }>
                    <Route path=path!("/") view=Playground/>
                    <Route path=path!("/turns") view=Turns/>
                    <Route path=path!("/turns/:id") view=Turn/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[component]
fn Shell(children: Children) -> impl IntoView {
    view! {
        <header class="top">
            <a class="brand" href="/">"mayfly"</a>
            <nav aria-label="main">
                <A href="/" exact=true>"Playground"</A>
                <A href="/turns">"Turns"</A>
            </nav>
        </header>
        <main id="content">{children()}</main>
        <HealthFooter/>
    }
}

/// The footer asks the API how it is, once per page load.
#[component]
fn HealthFooter() -> impl IntoView {
    let health = LocalResource::new(api::health);
    let status = move || match health.get() {
        None => view! { <span data-testid="health" data-state="loading">"checking the API…"</span> }.into_any(),
        Some(Ok(h)) => view! {
            <span data-testid="health" data-state="ok">
                "API ok · v" {h.version} " · sandboxes " <code>{h.providers.e2b_api_url}</code>
                " · databases " <code>{h.providers.instanode_url}</code>
            </span>
        }
        .into_any(),
        Some(Err(err)) => view! {
            <span data-testid="health" data-state="error" class="error">{err.to_string()}</span>
        }
        .into_any(),
    };
    view! { <footer class="bottom">{status}</footer> }
}
