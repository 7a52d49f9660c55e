//! What a turn's database held after its process exited (`database.summary`): one row per table
//! with its rows and columns, and for a fork what changed since the checkpoint it came from —
//! tables added, altered, recounted and dropped, each marked so the eye finds them.

use leptos::prelude::*;
use mayfly_core::wire::database::{DatabaseSummary, SummaryDiff};
use mayfly_core::TurnProgress;

/// How a table differs from the checkpoint the turn was forked from; `Same` for a turn forked
/// from nothing, whose every table is simply there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Altered,
    Rows,
    Same,
    Dropped,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Altered => "altered",
            Change::Rows => "rows",
            Change::Same => "same",
            Change::Dropped => "dropped",
        }
    }

    /// What a person reads next to the table's name.
    fn label(self) -> &'static str {
        match self {
            Change::Added => "new",
            Change::Altered => "columns changed",
            Change::Rows => "rows changed",
            Change::Same => "",
            Change::Dropped => "dropped",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) table: String,
    pub(crate) change: Change,
    /// `4`, or `4 → 6` when the count changed.
    pub(crate) rows: String,
    pub(crate) columns: Vec<String>,
}

/// The summary's tables, then those the fork dropped (which the summary no longer has).
pub(crate) fn rows(summary: &DatabaseSummary, diff: Option<&SummaryDiff>) -> Vec<Row> {
    let named = |names: Option<&Vec<String>>, table: &str| names.is_some_and(|n| n.iter().any(|x| x == table));
    let mut rows: Vec<Row> = summary
        .tables
        .iter()
        .map(|t| {
            let delta = diff.and_then(|d| d.rows.iter().find(|r| r.table == t.name));
            // Altered says more than a new count: the count still shows as before → after.
            let change = if named(diff.map(|d| &d.added), &t.name) {
                Change::Added
            } else if named(diff.map(|d| &d.altered), &t.name) {
                Change::Altered
            } else if delta.is_some() {
                Change::Rows
            } else {
                Change::Same
            };
            let rows = match delta {
                Some(d) => format!("{} → {}", d.before, d.after),
                None => t.rows.to_string(),
            };
            Row { table: t.name.clone(), change, rows, columns: t.columns.clone() }
        })
        .collect();
    if let Some(diff) = diff {
        rows.extend(diff.dropped.iter().map(|name| Row {
            table: name.clone(),
            change: Change::Dropped,
            rows: "—".to_owned(),
            columns: Vec::new(),
        }));
    }
    rows
}

/// `512 B`, `7.6 MiB`.
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The database's size, and for a fork how much it grew or shrank since the checkpoint (a few
/// pages on megabytes would not show in the sizes themselves).
fn size_line(summary: &DatabaseSummary, diff: Option<&SummaryDiff>) -> String {
    let size = format_bytes(summary.bytes);
    match diff {
        Some(d) if d.bytes_after > d.bytes_before => {
            format!("{size} (+{} since the checkpoint)", format_bytes(d.bytes_after - d.bytes_before))
        }
        Some(d) if d.bytes_after < d.bytes_before => {
            format!("{size} (−{} since the checkpoint)", format_bytes(d.bytes_before - d.bytes_after))
        }
        _ => size,
    }
}

#[component]
pub(crate) fn DatabaseSummaryView(log: RwSignal<TurnProgress>) -> impl IntoView {
    move || {
        log.with(|l| {
            let error = l.summary_error.clone().map(|e| {
                view! {
                    <p class="error" role="alert" data-testid="summary-error">
                        "The database's summary could not be made: " {e}
                    </p>
                }
            });
            let table = l.summary.as_ref().map(|summary| summary_table(summary, l.diff.as_ref()));
            (error.is_some() || table.is_some()).then(|| {
                view! {
                    <div class="db-summary">
                        <h3>"Database"</h3>
                        {error}
                        {table}
                    </div>
                }
            })
        })
    }
}

fn summary_table(summary: &DatabaseSummary, diff: Option<&SummaryDiff>) -> impl IntoView {
    let lines = rows(summary, diff);
    let empty = lines.is_empty();
    let unchanged = diff.is_some_and(SummaryDiff::is_empty);
    let body = lines
        .into_iter()
        .map(|row| {
            let change = row.change.as_str();
            let label = row.change.label();
            let columns = if row.change == Change::Dropped { "—".to_owned() } else { row.columns.join(", ") };
            view! {
                <tr data-testid="summary-row" data-table=row.table data-change=change
                    class=format!("change-{change}")>
                    <td><code>{row.table.clone()}</code>
                        {(!label.is_empty()).then(|| view! { <span class=format!("badge change-badge change-{change}")>{label}</span> })}</td>
                    <td class="num" data-testid="summary-rows">{row.rows}</td>
                    <td class="columns">{columns}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div data-testid="summary">
            <p class="summary-size">
                "Size " <span data-testid="summary-size">{size_line(summary, diff)}</span>
                {unchanged.then_some(" · no table changed since the checkpoint")}
            </p>
            {if empty {
                view! { <p data-testid="summary-empty">"No tables."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="summary">
                            <thead><tr><th scope="col">"table"</th><th scope="col">"rows"</th><th scope="col">"columns"</th></tr></thead>
                            <tbody>{body}</tbody>
                        </table>
                    </div>
                }
                .into_any()
            }}
            {summary.truncated.then(|| view! {
                <p class="notice" data-testid="summary-truncated">
                    "Some tables or columns are left out: a summary keeps at most 200 tables of 100 columns each."
                </p>
            })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use mayfly_core::wire::database::{RowDelta, TableSummary};

    use super::*;

    fn table(name: &str, rows: u64, columns: &[&str]) -> TableSummary {
        TableSummary { name: name.into(), rows, columns: columns.iter().map(|c| (*c).to_owned()).collect() }
    }

    #[test]
    fn a_fork_marks_each_table_by_what_changed() {
        let parent = DatabaseSummary {
            tables: vec![table("public.items", 4, &["id integer"]), table("public.notes", 1, &["id integer"])],
            bytes: 8 << 20,
            truncated: false,
        };
        let child = DatabaseSummary {
            tables: vec![
                table("public.extra", 0, &["x integer"]),
                table("public.items", 6, &["id integer", "price integer"]),
                table("public.kept", 2, &["id integer"]),
            ],
            bytes: 9 << 20,
            truncated: false,
        };
        let mut parent = parent;
        parent.tables.push(table("public.kept", 1, &["id integer"]));
        let diff = child.diff_from(&parent.clone().bounded(), "t_parent");
        let got: Vec<(String, Change, String)> =
            rows(&child, Some(&diff)).into_iter().map(|r| (r.table, r.change, r.rows)).collect();
        assert_eq!(
            got,
            [
                ("public.extra".to_owned(), Change::Added, "0".to_owned()),
                ("public.items".to_owned(), Change::Altered, "4 → 6".to_owned()),
                ("public.kept".to_owned(), Change::Rows, "1 → 2".to_owned()),
                ("public.notes".to_owned(), Change::Dropped, "—".to_owned()),
            ]
        );
        assert_eq!(size_line(&child, Some(&diff)), "9.0 MiB (+1.0 MiB since the checkpoint)");
        let smaller = DatabaseSummary { bytes: (8 << 20) - 16_384, ..child };
        let diff = smaller.diff_from(&parent.bounded(), "t_parent");
        assert_eq!(size_line(&smaller, Some(&diff)), "8.0 MiB (−16.0 KiB since the checkpoint)");
    }

    #[test]
    fn a_turn_forked_from_nothing_has_every_table_the_same() {
        let summary = DatabaseSummary { tables: vec![table("public.items", 3, &["id integer"])], ..Default::default() };
        let got = rows(&summary, None);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].change, got[0].rows.as_str()), (Change::Same, "3"));
        let same = SummaryDiff {
            parent_turn_id: "t".into(),
            rows: vec![RowDelta { table: "public.other".into(), before: 1, after: 2 }],
            ..Default::default()
        };
        assert_eq!(rows(&summary, Some(&same))[0].change, Change::Same, "a delta of another table");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(7_969_177), "7.6 MiB");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
    }
}
