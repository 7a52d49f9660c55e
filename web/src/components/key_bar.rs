//! The API key: asked for once, kept in this browser's storage, changeable at any time. Shown
//! only by its last four characters once saved.

use leptos::prelude::*;

use crate::api;

/// The key every page calls the API with; `None` until the person gives one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiKey(pub(crate) RwSignal<Option<String>>);

impl ApiKey {
    /// Loads the saved key (taking one from a `#key=` link first) and shares it with the app.
    pub(crate) fn provide() -> ApiKey {
        api::key::adopt_from_fragment();
        let key = ApiKey(RwSignal::new(api::key::load()));
        provide_context(key);
        key
    }

    pub(crate) fn get() -> ApiKey {
        use_context::<ApiKey>().expect("the app provides the API key")
    }
}

#[component]
pub(crate) fn KeyBar() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let draft = RwSignal::new(String::new());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = draft.get_untracked().trim().to_owned();
        if !value.is_empty() {
            api::key::save(&value);
            key.set(Some(value));
            draft.set(String::new());
        }
    };
    let forget = move |_| {
        api::key::forget();
        key.set(None);
    };
    move || match key.get() {
        Some(k) => {
            let tail: String = k.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            view! {
                <div class="key-bar" data-testid="key-bar" data-state="set">
                    <span>"API key ····" {tail}</span>
                    <button class="link" on:click=forget>"Change"</button>
                </div>
            }
            .into_any()
        }
        None => view! {
            <form class="key-bar" data-testid="key-bar" data-state="unset" on:submit=save>
                <label for="api-key">"API key"</label>
                <input id="api-key" type="password" autocomplete="off" placeholder="paste your mayfly API key"
                    prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev))/>
                <button type="submit">"Save"</button>
                <span class="hint">"Kept in this browser only."</span>
            </form>
        }
        .into_any(),
    }
}
