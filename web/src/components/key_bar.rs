//! The API key: asked for once, kept in this browser's storage, changeable at any time. Shown
//! only by its last four characters once saved.
//!
//! A `#key=` link signs a browser in (`cargo xtask dev` prints one), but never silently: a link
//! someone else made would otherwise move this browser's turns — their code, files and output —
//! into that someone's tenant, which can read them. Unless the link carries the key already
//! saved, the person is asked, shown the last four characters of the link's key and of the saved
//! one, and nothing changes until they answer.

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
    /// It is the saved key already.
    Same,
    /// Anything else: ask.
    Ask,
}

fn adoption(saved: Option<&str>, offered: &str) -> Adoption {
    if saved == Some(offered) {
        Adoption::Same
    } else {
        Adoption::Ask
    }
}

/// The last four characters, all that is ever shown of a key.
pub(crate) fn tail(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

impl ApiKey {
    /// Loads the saved key, keeps a key a `#key=` link carries for the person to decide on, and
    /// shares both with the app.
    pub(crate) fn provide() -> ApiKey {
        let saved = api::key::load();
        let pending =
            api::key::take_from_fragment().filter(|offered| adoption(saved.as_deref(), offered) == Adoption::Ask);
        let key = ApiKey(RwSignal::new(saved));
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
        let new = offered.get()?;
        let saved = key.get();
        let what = match &saved {
            Some(saved) => view! {
                <p>
                    "This link carries another API key, ····" <strong data-testid="key-offer-new">{tail(&new)}</strong>
                    ". This browser has ····" <strong data-testid="key-offer-saved">{tail(saved)}</strong>
                    " saved. Turns run under the tenant of the key in use, and it sees them."
                </p>
            }
            .into_any(),
            None => view! {
                <p>
                    "This link carries an API key, ····" <strong data-testid="key-offer-new">{tail(&new)}</strong>
                    ". Use it in this browser? Turns run under the tenant of the key in use, and it sees them."
                </p>
            }
            .into_any(),
        };
        let keep = match &saved {
            Some(saved) => format!("Keep ····{}", tail(saved)),
            None => "Ignore it".to_owned(),
        };
        Some(view! {
            <div class="key-offer" role="dialog" aria-label="An API key from a link" data-testid="key-offer">
                {what}
                <button data-testid="key-offer-use" on:click=take_offered>"Use ····" {tail(&new)}</button>
                <button class="primary" data-testid="key-offer-keep" on:click=keep_saved>{keep}</button>
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
    fn a_link_never_sets_a_key_without_asking() {
        assert_eq!(adoption(None, "key-b"), Adoption::Ask, "not even in a browser that has none");
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
