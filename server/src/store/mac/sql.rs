//! The statements of the generic row-MAC primitives, generated once from [`Table`] for both
//! dialects: `p(i)` gives the backend's placeholder of parameter `i` (`$i` or `?i`).

use super::{Table, Val, CARDS};

/// `SELECT <all columns>, mac FROM <table> [WHERE f1 = p(1) AND ...]`, `p` giving the
/// backend's placeholder of parameter `i` (1-based).
pub(crate) fn select_sql(
    table: &Table,
    filter: &[(&'static str, Val)],
    p: fn(usize) -> String,
) -> &'static str {
    let cols: Vec<&str> = table.all().map(|c| c.name).collect();
    let mut sql = format!("SELECT {}, mac FROM {}", cols.join(", "), table.name);
    for (i, (name, _)) in filter.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{name} = {}", p(i + 1)));
    }
    intern(sql)
}

/// [`select_sql`] with the rows locked until the transaction ends (`FOR UPDATE`, PostgreSQL;
/// SQLite's `BEGIN IMMEDIATE` already holds the whole database).
pub(crate) fn select_locked_sql(
    table: &Table,
    filter: &[(&'static str, Val)],
    p: fn(usize) -> String,
) -> &'static str {
    intern(format!("{} FOR UPDATE", select_sql(table, filter, p)))
}

/// `DELETE FROM <table> WHERE f1 = p(1) AND ... RETURNING <all columns>, mac`.
pub(crate) fn delete_returning_sql(
    table: &Table,
    filter: &[(&'static str, Val)],
    p: fn(usize) -> String,
) -> &'static str {
    let cols: Vec<&str> = table.all().map(|c| c.name).collect();
    let mut sql = format!("DELETE FROM {}", table.name);
    push_where(&mut sql, filter.iter().map(|(name, _)| *name), 1, &p);
    sql.push_str(&format!(" RETURNING {}, mac", cols.join(", ")));
    intern(sql)
}

/// `INSERT INTO <table> (<all columns>, mac) VALUES (p(1), ...)`, with `ON CONFLICT DO
/// NOTHING` when `or_nothing`.
pub(crate) fn insert_sql(
    table: &Table,
    or_nothing: bool,
    p: impl Fn(usize) -> String,
) -> &'static str {
    let cols: Vec<&str> = table.all().map(|c| c.name).collect();
    let params: Vec<String> = (1..=cols.len() + 1).map(p).collect();
    let conflict = if or_nothing {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    intern(format!(
        "INSERT INTO {} ({}, mac) VALUES ({}){conflict}",
        table.name,
        cols.join(", "),
        params.join(", ")
    ))
}

/// `UPDATE <table> SET c1 = p(1), ..., mac = p(n+1) WHERE k1 = p(n+2) AND ... AND mac =
/// p(last)`: the new values with their MAC, written only over the row whose MAC was checked.
pub(crate) fn update_cols_sql(
    table: &Table,
    cols: &[&'static str],
    p: impl Fn(usize) -> String,
) -> &'static str {
    let mut sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", p(i + 1)))
        .collect();
    sets.push(format!("mac = {}", p(cols.len() + 1)));
    let mut sql = format!("UPDATE {} SET {}", table.name, sets.join(", "));
    let key = table.key.iter().map(|c| c.name);
    push_where(&mut sql, key, cols.len() + 2, &p);
    sql.push_str(&format!(
        " AND mac = {}",
        p(cols.len() + 2 + table.key.len())
    ));
    intern(sql)
}

/// Appends ` WHERE a = p(first) AND b = p(first + 1) ...`.
fn push_where<'a>(
    sql: &mut String,
    names: impl Iterator<Item = &'a str>,
    first: usize,
    p: &dyn Fn(usize) -> String,
) {
    for (i, name) in names.enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{name} = {}", p(first + i)));
    }
}

/// The card's audit counts of [`super::tx::Tx::card_audit_counts`] as two columns, over the
/// card's key at `p(1)`, `p(2)`: wrong answer sets since the last success or lift, locks
/// since the last lift.
pub(crate) fn audit_counts_sql(p: fn(usize) -> String) -> &'static str {
    let (a, b) = (p(1), p(2));
    intern(format!(
        "(SELECT COUNT(*) FROM audit
   WHERE profile = {a} AND identity = {b} AND event = 'answers' AND outcome = 'wrong_answers'
     AND id > COALESCE((SELECT MAX(id) FROM audit WHERE profile = {a} AND identity = {b}
       AND ((event = 'answers' AND outcome = 'verified')
         OR (event = 'lift_lock' AND outcome = 'lifted'))), 0)),
  (SELECT COUNT(*) FROM audit
   WHERE profile = {a} AND identity = {b} AND event = 'lock' AND outcome = 'locked'
     AND id > COALESCE((SELECT MAX(id) FROM audit WHERE profile = {a} AND identity = {b}
       AND event = 'lift_lock' AND outcome = 'lifted'), 0))"
    ))
}

/// The card's row with its MAC and its audit counts ([`audit_counts_sql`]) in one statement
/// (one snapshot), locked with `FOR UPDATE` when `lock`.
pub(crate) fn card_counted_sql(p: fn(usize) -> String, lock: bool) -> &'static str {
    let cols: Vec<&str> = CARDS.all().map(|c| c.name).collect();
    let mut sql = format!(
        "SELECT {}, mac, {} FROM cards",
        cols.join(", "),
        audit_counts_sql(p)
    );
    push_where(&mut sql, CARDS.key.iter().map(|c| c.name), 1, &p);
    if lock {
        sql.push_str(" FOR UPDATE");
    }
    intern(sql)
}

/// `UPDATE <table> SET mac = p(1) WHERE k1 = p(2) AND ...`.
pub(crate) fn update_sql(table: &Table, p: fn(usize) -> String) -> &'static str {
    let mut sql = format!("UPDATE {} SET mac = {}", table.name, p(1));
    for (i, c) in table.key.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{} = {}", c.name, p(i + 2)));
    }
    intern(sql)
}

/// One `'static` copy of each statement text (their number is bounded by the tables and the
/// filters of [`guard`]), so the backends can cache the prepared statements by text.
pub(crate) fn intern(sql: String) -> &'static str {
    static TEXTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut texts = TEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(text) = texts.get(sql.as_str()) {
        return text;
    }
    let text: &'static str = Box::leak(sql.into_boxed_str());
    texts.insert(text);
    text
}
