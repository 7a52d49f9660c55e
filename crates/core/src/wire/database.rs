//! What a turn's database holds, as a turn shows it after its process exits: its tables with their
//! row counts and columns, its size, and — for a turn forked from a checkpoint — how it differs
//! from the checkpoint it started from (`docs/checkpoints.md`).
//!
//! The summary is computed inside the turn's sandbox, from what the tenant's code left, so every
//! field of it is untrusted input: [`DatabaseSummary::bounded`] is what a turn keeps of it.

use serde::{Deserialize, Serialize};

/// The most tables a summary lists; past it, `truncated` says so.
pub const SUMMARY_MAX_TABLES: usize = 200;
/// The most columns a table's entry lists.
pub const SUMMARY_MAX_COLUMNS: usize = 100;
/// The longest table name or column description a summary keeps, in bytes.
pub const SUMMARY_MAX_NAME_BYTES: usize = 200;
/// The most a summary may take as JSON: past it, the tables at the end are left out. It is kept
/// in the turn's log, its durable summary and every fork's record, and shown in details that are
/// listed fifty at a time, so it must stay small whatever the tenant's tables are called.
pub const SUMMARY_MAX_BYTES: usize = 64 * 1024;

/// A database's tables and size at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSummary {
    /// Sorted by name.
    pub tables: Vec<TableSummary>,
    /// The whole database's size on disk.
    pub bytes: u64,
    /// Whether tables or columns were left out to keep the summary small.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One table of a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    /// `schema.table`.
    pub name: String,
    pub rows: u64,
    /// `name type`, in column order.
    pub columns: Vec<String>,
}

/// How a forked turn's database differs from the checkpoint it was forked from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryDiff {
    /// The checkpoint's turn.
    pub parent_turn_id: String,
    pub added: Vec<String>,
    pub dropped: Vec<String>,
    /// Tables whose columns changed.
    pub altered: Vec<String>,
    /// Tables in both whose row count changed.
    pub rows: Vec<RowDelta>,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A row count before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDelta {
    pub table: String,
    pub before: u64,
    pub after: u64,
}

impl DatabaseSummary {
    /// What a turn keeps of a summary its sandbox reported: sorted, without duplicate names, and
    /// within the bounds above, so a tenant cannot make the turn's log or a fork's diff grow
    /// without limit.
    pub fn bounded(mut self) -> DatabaseSummary {
        let cut = |text: &mut String, truncated: &mut bool| {
            if text.len() > SUMMARY_MAX_NAME_BYTES {
                let mut end = SUMMARY_MAX_NAME_BYTES;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                *truncated = true;
            }
        };
        let mut truncated = self.truncated;
        for table in &mut self.tables {
            cut(&mut table.name, &mut truncated);
            if table.columns.len() > SUMMARY_MAX_COLUMNS {
                table.columns.truncate(SUMMARY_MAX_COLUMNS);
                truncated = true;
            }
            for column in &mut table.columns {
                cut(column, &mut truncated);
            }
        }
        self.tables.sort_by(|a, b| a.name.cmp(&b.name));
        self.tables.dedup_by(|a, b| a.name == b.name);
        if self.tables.len() > SUMMARY_MAX_TABLES {
            self.tables.truncate(SUMMARY_MAX_TABLES);
            truncated = true;
        }
        // What is left of the budget once the summary's own fields are counted, table by table.
        let mut room = SUMMARY_MAX_BYTES.saturating_sub(64);
        let fits = self
            .tables
            .iter()
            .take_while(|table| {
                let bytes = serde_json::to_vec(table).map_or(usize::MAX, |json| json.len() + 1);
                room = room.saturating_sub(bytes);
                room > 0
            })
            .count();
        if fits < self.tables.len() {
            self.tables.truncate(fits);
            truncated = true;
        }
        self.truncated = truncated;
        self
    }

    /// How `self` differs from `parent`, the summary of the checkpoint it was forked from.
    pub fn diff_from(&self, parent: &DatabaseSummary, parent_turn_id: &str) -> SummaryDiff {
        fn find<'s>(summary: &'s DatabaseSummary, name: &str) -> Option<&'s TableSummary> {
            summary.tables.binary_search_by(|t| t.name.as_str().cmp(name)).ok().map(|i| &summary.tables[i])
        }
        let mut diff = SummaryDiff {
            parent_turn_id: parent_turn_id.to_owned(),
            bytes_before: parent.bytes,
            bytes_after: self.bytes,
            ..SummaryDiff::default()
        };
        for table in &self.tables {
            match find(parent, &table.name) {
                None => diff.added.push(table.name.clone()),
                Some(before) => {
                    if before.columns != table.columns {
                        diff.altered.push(table.name.clone());
                    }
                    if before.rows != table.rows {
                        diff.rows.push(RowDelta { table: table.name.clone(), before: before.rows, after: table.rows });
                    }
                }
            }
        }
        diff.dropped = parent.tables.iter().filter(|t| find(self, &t.name).is_none()).map(|t| t.name.clone()).collect();
        diff
    }
}

impl SummaryDiff {
    /// Whether the fork changed no table (its size may still differ).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty() && self.altered.is_empty() && self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn table(name: &str, rows: u64, columns: &[&str]) -> TableSummary {
        TableSummary { name: name.into(), rows, columns: columns.iter().map(|c| (*c).to_owned()).collect() }
    }

    #[test]
    fn a_diff_names_what_was_added_dropped_altered_and_recounted() {
        let parent = DatabaseSummary {
            tables: vec![
                table("public.a", 3, &["id integer"]),
                table("public.b", 1, &["id integer"]),
                table("public.c", 5, &["id integer"]),
            ],
            bytes: 100,
            truncated: false,
        }
        .bounded();
        let child = DatabaseSummary {
            tables: vec![
                table("public.d", 0, &["x text"]),
                table("public.a", 4, &["id integer"]),
                table("public.c", 5, &["id integer", "note text"]),
            ],
            bytes: 120,
            truncated: false,
        }
        .bounded();
        let diff = child.diff_from(&parent, "t_parent");
        assert_eq!(diff.added, ["public.d"]);
        assert_eq!(diff.dropped, ["public.b"]);
        assert_eq!(diff.altered, ["public.c"]);
        assert_eq!(diff.rows, [RowDelta { table: "public.a".into(), before: 3, after: 4 }]);
        assert_eq!((diff.bytes_before, diff.bytes_after), (100, 120));
        assert!(!diff.is_empty());
        assert!(parent.diff_from(&parent, "t_parent").is_empty());
    }

    #[test]
    fn a_summary_from_a_sandbox_is_kept_within_bounds() {
        let long = "é".repeat(SUMMARY_MAX_NAME_BYTES);
        let many: Vec<TableSummary> =
            (0..SUMMARY_MAX_TABLES + 5).map(|i| table(&format!("public.t{i:04}"), 1, &["id integer"])).collect();
        let mut tables = many;
        tables.push(table("public.t0000", 9, &[]));
        tables[1].name = format!("public.{long}");
        tables[2].columns = vec!["c integer".to_owned(); SUMMARY_MAX_COLUMNS + 1];
        let bounded = DatabaseSummary { tables, bytes: 1, truncated: false }.bounded();
        assert!(bounded.truncated);
        assert_eq!(bounded.tables.len(), SUMMARY_MAX_TABLES);
        assert!(serde_json::to_vec(&bounded).unwrap().len() <= SUMMARY_MAX_BYTES);
        // Names as long as they may be, as many columns as may be: the whole stays within its
        // bytes, the first tables kept.
        let wide: Vec<TableSummary> = (0..SUMMARY_MAX_TABLES)
            .map(|i| TableSummary {
                name: format!("public.{i:04}{}", "n".repeat(SUMMARY_MAX_NAME_BYTES)),
                rows: u64::MAX,
                columns: vec!["\"".repeat(SUMMARY_MAX_NAME_BYTES); SUMMARY_MAX_COLUMNS],
            })
            .collect();
        let bounded = DatabaseSummary { tables: wide, bytes: u64::MAX, truncated: false }.bounded();
        let json = serde_json::to_vec(&bounded).unwrap();
        assert!(json.len() <= SUMMARY_MAX_BYTES, "{} bytes", json.len());
        assert!(bounded.truncated && !bounded.tables.is_empty() && bounded.tables[0].name.starts_with("public.0000"));
        assert!(bounded.tables.iter().all(|t| t.name.len() <= SUMMARY_MAX_NAME_BYTES));
        assert!(bounded.tables.iter().all(|t| t.columns.len() <= SUMMARY_MAX_COLUMNS));
        let names: Vec<&str> = bounded.tables.iter().map(|t| t.name.as_str()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, without duplicates");
    }
}
