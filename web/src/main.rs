//! mayfly's web app: a Leptos client-side app served by the worker from the same origin as the
//! API. Every HTTP call lives in [`api`]; pages live in [`pages`], one per file.

// `#[component]` expands to `pub` props structs that a binary can never export.
#![allow(unreachable_pub)]

mod ansi;
mod api;
mod app;
mod components;
mod examples;
mod pages;
mod timeline;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
