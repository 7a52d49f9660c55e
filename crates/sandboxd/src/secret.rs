//! Comparing what a caller sent with a key or token sandboxd holds, in time that does not depend
//! on where the two first differ — so answer times cannot be used to guess a key byte by byte.

use subtle::ConstantTimeEq;

/// Whether `given` is `expected`. Only their lengths (not secret: every key and token has a
/// fixed, public length) can shorten the comparison.
pub(crate) fn matches(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Whether `given` is any of `keys`: every key is compared, whichever matches.
pub(crate) fn matches_any(given: &str, keys: &[String]) -> bool {
    keys.iter().fold(false, |found, key| found | matches(given, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        assert!(matches("key-0123", "key-0123"));
        assert!(!matches("key-0124", "key-0123"));
        assert!(!matches("key-012", "key-0123"));
        assert!(!matches("", "key-0123"));
        let keys = ["a-key".to_owned(), "b-key".to_owned()];
        assert!(matches_any("b-key", &keys));
        assert!(!matches_any("c-key", &keys));
        assert!(!matches_any("c-key", &[]));
    }
}
