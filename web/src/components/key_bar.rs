//! The API key: asked for once, kept in this browser's storage, changeable at any time. Shown
//! only by its last four characters once saved.
//!
//! A `#key=` link signs a browser in (`cargo xtask dev` prints one), but it never silently
//! replaces a different key already saved: a link someone else made would otherwise move this
//! browser's turns into their tenant. The person is asked instead, shown the last four
//! characters of each.

use leptos::prelude::*;

use crate::api;

/// The key every page calls the API with; `None` until the person gives one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiKey(pub(crate) RwSignal<Option<String>>);

/// A key a `#key=` link carried that differs from the saved one, until the person decides.
#[derive(Debug, Clone, Copy)]
struct OfferedKey(RwSignal<Option<String>>);

/// What to do with a key a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adoption {
    /// Nothing is saved: take it.
    Save,
    /// It is the saved key already.
    Same,
    /// Another key is saved: ask.
    Ask,
}

fn adoption(saved: Option<&str>, offered: &str) -> Adoption {
    match saved {
        None => Adoption::Save,
        Some(saved) if saved == offered => Adoption::Same,
        Some(_) => Adoption::Ask,
    }
}

/// The last four characters, all that is ever shown of a key.
pub(crate) fn tail(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

impl ApiKey {
    /// Loads the saved key (taking one from a `#key=` link when that replaces nothing) and
    /// shares it with the app.
    pub(crate) fn provide() -> ApiKey {
        let saved = api::key::load();
        let offered = api::key::take_from_fragment();
        let mut pending = None;
        let key = match (offered, saved) {
            (Some(offered), saved) => match adoption(saved.as_deref(), &offered) {
                Adoption::Save => {
                    api::key::save(&offered);
                    Some(offered)
                }
                Adoption::Same => saved,
                Adoption::Ask => {
                    pending = Some(offered);
                    saved
                }
            },
            (None, saved) => saved,
        };
        let key = ApiKey(RwSignal::new(key));
        provide_context(key);
        provide_context(OfferedKey(RwSignal::new(pending)));
        key
    }

    pub(crate) fn get() -> ApiKey {
        use_context::<ApiKey>().expect("the app provides the API key")
    }
}

#[component]
pub(crate) fn KeyBar() -> impl IntoView {
    let ApiKey(key) = ApiKey::get();
    let OfferedKey(offered) = use_context::<OfferedKey>().expect("the app provides the offered key");
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
    let take_offered = move |_| {
        if let Some(value) = offered.get_untracked() {
            api::key::save(&value);
            key.set(Some(value));
        }
        offered.set(None);
    };
    let keep_saved = move |_| offered.set(None);
    let offer = move || {
        let (new, saved) = (offered.get()?, key.get()?);
        Some(view! {
            <div class="key-offer" role="dialog" aria-label="Another API key" data-testid="key-offer">
                <p>
                    "This link carries another API key, ····" <strong data-testid="key-offer-new">{tail(&new)}</strong>
                    ". This browser has ····" <strong data-testid="key-offer-saved">{tail(&saved)}</strong>
                    " saved. Turns run under the tenant of the key in use."
                </p>
                <button data-testid="key-offer-use" on:click=take_offered>"Use ····" {tail(&new)}</button>
                <button class="primary" data-testid="key-offer-keep" on:click=keep_saved>"Keep ····" {tail(&saved)}</button>
            </div>
        })
    };
    let bar = move || match key.get() {
        Some(k) => view! {
            <div class="key-bar" data-testid="key-bar" data-state="set">
                <span>"API key ····" {tail(&k)}</span>
                <button class="link" on:click=forget>"Change"</button>
            </div>
        }
        .into_any(),
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
    };
    view! { {offer} {bar} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_never_replaces_another_saved_key_without_asking() {
        assert_eq!(adoption(None, "key-b"), Adoption::Save);
        assert_eq!(adoption(Some("key-b"), "key-b"), Adoption::Same);
        assert_eq!(adoption(Some("key-a"), "key-b"), Adoption::Ask);
    }

    #[test]
    fn only_the_last_four_characters_are_shown() {
        assert_eq!(tail("key-alice-0123456789"), "6789");
        assert_eq!(tail("abc"), "abc");
        assert_eq!(tail("ключ-éèêë"), "éèêë");
    }
}
