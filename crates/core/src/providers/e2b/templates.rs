//! Which sandbox template a turn runs in when its request names none: one name per language, set
//! by configuration (docs/templates.md).
//!
//! The default is E2B's public `base` for every language: it exists for every E2B team and has
//! Python 3, Node and bash, but no psycopg. mayfly's own template ([`MAYFLY_TEMPLATE`], built from
//! `templates/mayfly/`) adds psycopg; a deployment that built it names it for each language, and
//! the local stack's sandboxd offers it under the same name.

use std::fmt;

use thiserror::Error;

use crate::wire::api::Language;

/// The template `templates/mayfly/` builds on E2B and sandboxd offers.
pub const MAYFLY_TEMPLATE: &str = "mayfly";

/// The template every language gets by default: E2B's public base image.
pub const DEFAULT_TEMPLATE: &str = "base";

/// The configuration variable (worker var or CLI environment) naming `language`'s template.
pub fn variable_for(language: Language) -> &'static str {
    match language {
        Language::Python => "E2B_TEMPLATE_PYTHON",
        Language::Bash => "E2B_TEMPLATE_BASH",
        Language::Node => "E2B_TEMPLATE_NODE",
    }
}

/// A template name refused by [`check_template_name`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("template {0:?} is not allowed: use 1-64 of A-Z a-z 0-9 _ . -")]
pub struct BadTemplateName(pub String);

/// A template reference as E2B accepts one, kept to characters that need no escaping anywhere:
/// 1-64 of `A-Z a-z 0-9 _ . -`.
pub fn check_template_name(name: &str) -> Result<(), BadTemplateName> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BadTemplateName(name.to_owned()))
    }
}

/// The template of each language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMap {
    python: String,
    bash: String,
    node: String,
}

impl Default for TemplateMap {
    fn default() -> TemplateMap {
        TemplateMap::all(DEFAULT_TEMPLATE)
    }
}

impl TemplateMap {
    /// One template for every language.
    pub fn all(name: &str) -> TemplateMap {
        TemplateMap { python: name.to_owned(), bash: name.to_owned(), node: name.to_owned() }
    }

    /// The defaults, with each language that `lookup` names a template for set to it. A name
    /// that is not a valid template reference is an error naming its variable.
    pub fn from_lookup(lookup: impl FnMut(&str) -> Option<String>) -> Result<TemplateMap, String> {
        TemplateMap::default().overridden_by(lookup)
    }

    /// This map, with each language that `lookup` (by variable name) names a template for set to
    /// it.
    pub fn overridden_by(self, mut lookup: impl FnMut(&str) -> Option<String>) -> Result<TemplateMap, String> {
        let mut map = self;
        for language in Language::ALL {
            let variable = variable_for(language);
            if let Some(name) = lookup(variable).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                check_template_name(&name).map_err(|err| format!("{variable}: {err}"))?;
                *map.slot(language) = name;
            }
        }
        Ok(map)
    }

    fn slot(&mut self, language: Language) -> &mut String {
        match language {
            Language::Python => &mut self.python,
            Language::Bash => &mut self.bash,
            Language::Node => &mut self.node,
        }
    }

    /// The template a turn in `language` runs in when its request names none.
    pub fn for_language(&self, language: Language) -> &str {
        match language {
            Language::Python => &self.python,
            Language::Bash => &self.bash,
            Language::Node => &self.node,
        }
    }

    /// The distinct templates in use, in language order.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for language in Language::ALL {
            let name = self.for_language(language);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// `{language: template}`, as `GET /v1/health` shows it.
    pub fn by_language(&self) -> std::collections::BTreeMap<String, String> {
        Language::ALL.iter().map(|&l| (l.as_str().to_owned(), self.for_language(l).to_owned())).collect()
    }

    /// `(variable, template)` for every language: how a local stack hands the map to the worker.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        Language::ALL.iter().map(|&l| (variable_for(l), self.for_language(l).to_owned())).collect()
    }
}

impl fmt::Display for TemplateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            Language::ALL.iter().map(|&l| format!("{} {}", l.as_str(), self.for_language(l))).collect();
        f.write_str(&parts.join(", "))
    }
}

/// What to tell a person whose turn asked E2B for `template` and heard that it does not exist or
/// is not theirs (`answer` is E2B's own words).
pub fn missing_template_message(template: &str, answer: &str) -> String {
    let variables: Vec<&str> = Language::ALL.iter().map(|&l| variable_for(l)).collect();
    format!(
        "E2B has no template {template:?} this key may use ({answer}). Build mayfly's with \
         `python3 templates/mayfly/build.py` (README, \"E2B template\") and set {} to {MAYFLY_TEMPLATE:?}, \
         or name a template your team has",
        variables.join("/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_defaults_to_e2bs_public_base() {
        let map = TemplateMap::default();
        for language in Language::ALL {
            assert_eq!(map.for_language(language), "base");
        }
        assert_eq!(map.names(), ["base"]);
    }

    #[test]
    fn variables_set_one_language_each_and_bad_names_are_refused() {
        let vars = [("E2B_TEMPLATE_PYTHON", " mayfly "), ("E2B_TEMPLATE_NODE", "")];
        let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned());
        let map = TemplateMap::from_lookup(lookup).unwrap();
        assert_eq!(map.to_string(), "python mayfly, bash base, node base");
        assert_eq!(map.names(), ["mayfly", "base"]);
        let bad = TemplateMap::from_lookup(|n| (n == "E2B_TEMPLATE_BASH").then(|| "../x".to_owned())).unwrap_err();
        assert_eq!(bad, r#"E2B_TEMPLATE_BASH: template "../x" is not allowed: use 1-64 of A-Z a-z 0-9 _ . -"#);
    }

    #[test]
    fn the_missing_template_message_names_it_and_how_to_build_it() {
        let message = missing_template_message("mayfly", "template 'mayfly' not found");
        assert!(message.contains("\"mayfly\""), "{message}");
        assert!(message.contains("templates/mayfly/build.py"), "{message}");
        assert!(message.contains("E2B_TEMPLATE_PYTHON"), "{message}");
    }
}
