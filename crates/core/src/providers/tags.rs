//! The tags that name and date every resource: how a sandbox or a database says which turn it
//! belongs to and when it may be swept. [`sandbox_metadata`] and [`database_name`] write them, the
//! parsers read them back; these are their one definition.

use std::collections::BTreeMap;

/// The metadata key and value every mayfly sandbox carries, so a sweep can find it.
pub const MAYFLY_METADATA_KEY: &str = "mayfly";
pub const MAYFLY_METADATA_VALUE: &str = "1";
/// The prefix of every mayfly database name, so a sweep can find it.
pub const MAYFLY_DATABASE_PREFIX: &str = "mayfly-";

/// The metadata a turn's sandbox carries: `{mayfly: "1", turn, deadline}` with the deadline in Unix
/// seconds: what the reaper's sweep finds a lost sandbox by (docs/reliability.md).
pub fn sandbox_metadata(turn_id: &str, deadline_unix_s: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MAYFLY_METADATA_KEY.to_owned(), MAYFLY_METADATA_VALUE.to_owned()),
        ("turn".to_owned(), turn_id.to_owned()),
        ("deadline".to_owned(), deadline_unix_s.to_string()),
    ])
}

/// The deadline (Unix seconds) of a mayfly sandbox, or `None` when the metadata is not mayfly's.
pub fn parse_sandbox_metadata(metadata: &BTreeMap<String, String>) -> Option<u64> {
    if metadata.get(MAYFLY_METADATA_KEY).map(String::as_str) != Some(MAYFLY_METADATA_VALUE) {
        return None;
    }
    metadata.get("deadline")?.parse().ok()
}

/// The name of a turn's database, `mayfly-<deadline unix s>-<turn id>`: instanode keeps no metadata,
/// so the name is the tag. It fits instanode's `^[A-Za-z0-9][A-Za-z0-9 _-]*$`, 64 characters at
/// most, for every turn id [`crate::turn::TurnId`] accepts.
pub fn database_name(turn_id: &str, deadline_unix_s: u64) -> String {
    format!("{MAYFLY_DATABASE_PREFIX}{deadline_unix_s}-{turn_id}")
}

/// The deadline (Unix seconds) in a mayfly database name, or `None` when the name is not mayfly's.
pub fn parse_database_name(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(MAYFLY_DATABASE_PREFIX)?;
    let (deadline, turn_id) = rest.split_once('-')?;
    if turn_id.is_empty() || deadline.is_empty() || !deadline.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    deadline.parse().ok()
}

/// The turn a mayfly sandbox belongs to, from its metadata.
pub fn sandbox_turn(metadata: &BTreeMap<String, String>) -> Option<&str> {
    parse_sandbox_metadata(metadata)?;
    metadata.get("turn").map(String::as_str).filter(|turn| !turn.is_empty())
}

/// The turn a mayfly database belongs to, from its name.
pub fn database_turn(name: &str) -> Option<&str> {
    parse_database_name(name)?;
    name.strip_prefix(MAYFLY_DATABASE_PREFIX)?.split_once('-').map(|(_, turn)| turn)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn tags_round_trip_and_refuse_strangers() {
        let metadata = sandbox_metadata("t_1", 1_700_000_030);
        assert_eq!(parse_sandbox_metadata(&metadata), Some(1_700_000_030));
        assert!(metadata.values().all(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))));
        let mut other = metadata;
        other.insert("mayfly".into(), "2".into());
        assert_eq!(parse_sandbox_metadata(&other), None);
        assert_eq!(parse_sandbox_metadata(&BTreeMap::new()), None);

        let name = database_name("t_1", 1_700_000_030);
        assert_eq!(name, "mayfly-1700000030-t_1");
        assert_eq!(parse_database_name(&name), Some(1_700_000_030));
        for stranger in ["mayfly-", "mayfly-x-t", "mayfly-12-", "turn-3f2a", "mayfly--t"] {
            assert_eq!(parse_database_name(stranger), None, "{stranger}");
        }
    }
}
