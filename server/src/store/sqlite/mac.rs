//! The row-MAC primitives of [`Tx`] on SQLite (generic over [`Table`]).

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::store::mac::{self, Kind, MacRow, Table, Val};
use crate::store::tx::{CardKey, Counted, MacStoreTx};
use crate::ServerError;

fn p(i: usize) -> String {
    format!("?{i}")
}

fn value(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Int(i) => Value::Integer(*i),
        Val::Text(t) => Value::Text(t.clone()),
        Val::Blob(b) => Value::Blob(b.clone()),
    }
}

/// A value bound to a column of `kind` (a float kept as its bits bound as a float).
fn typed(v: &Val, kind: Kind) -> Value {
    match (v, kind) {
        (Val::Int(i), Kind::Real) => Value::Real(f64::from_bits(*i as u64)),
        (v, _) => value(v),
    }
}

fn kind_of(table: &Table, name: &str) -> Kind {
    table
        .all()
        .find(|c| c.name == name)
        .map_or(Kind::Text, |c| c.kind)
}

/// A row of `SELECT <all columns>, mac` (or `RETURNING` them).
fn decode(table: &Table, r: &rusqlite::Row<'_>) -> rusqlite::Result<MacRow> {
    let values = table
        .all()
        .enumerate()
        .map(|(i, c)| read(r, i, c.kind))
        .collect::<rusqlite::Result<Vec<Val>>>()?;
    Ok(MacRow {
        values,
        mac: r.get(table.all().count())?,
    })
}

pub(super) fn read(r: &rusqlite::Row<'_>, i: usize, kind: Kind) -> rusqlite::Result<Val> {
    Ok(match kind {
        Kind::Int => r.get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int),
        Kind::Bool => r
            .get::<_, Option<bool>>(i)?
            .map_or(Val::Null, |b| Val::Int(i64::from(b))),
        Kind::Text => r.get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text),
        Kind::Blob => r.get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Blob),
        Kind::Real => r
            .get::<_, Option<f64>>(i)?
            .map_or(Val::Null, |f| Val::Int(f.to_bits() as i64)),
    })
}

fn mac_rows(
    conn: &Connection,
    table: &'static Table,
    filter: &[(&'static str, Val)],
) -> Result<Vec<MacRow>, ServerError> {
    let mut stmt = conn.prepare_cached(mac::select_sql(table, filter, p))?;
    let rows = stmt.query_map(
        params_from_iter(filter.iter().map(|(_, v)| value(v))),
        |r| decode(table, r),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl MacStoreTx for super::SqliteTx<'_> {
    fn mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        mac_rows(self.0, table, filter)
    }

    fn mac_rows_locked(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        // `BEGIN IMMEDIATE` holds the whole database.
        mac_rows(self.0, table, filter)
    }

    fn delete_mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare_cached(mac::delete_returning_sql(table, filter, p))?;
        let rows = stmt.query_map(
            params_from_iter(filter.iter().map(|(_, v)| value(v))),
            |r| decode(table, r),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
        or_nothing: bool,
    ) -> Result<u64, ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare_cached(mac::insert_sql(table, or_nothing, p))?;
        let params = table
            .all()
            .zip(values)
            .map(|(c, v)| typed(v, c.kind))
            .chain(std::iter::once(Value::Blob(mac.to_vec())));
        Ok(stmt.execute(params_from_iter(params))? as u64)
    }

    fn update_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<u64, ServerError> {
        let conn = self.0;
        let names: Vec<&'static str> = sets.iter().map(|(n, _)| *n).collect();
        let mut stmt = conn.prepare_cached(mac::update_cols_sql(table, &names, p))?;
        let params = sets
            .iter()
            .map(|(n, v)| typed(v, kind_of(table, n)))
            .chain(std::iter::once(Value::Blob(mac.to_vec())))
            .chain(key.iter().map(value))
            .chain(std::iter::once(Value::Blob(old_mac.to_vec())));
        Ok(stmt.execute(params_from_iter(params))? as u64)
    }

    fn set_row_mac(
        &mut self,
        table: &'static Table,
        key: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare_cached(mac::update_sql(table, p))?;
        let params = std::iter::once(Value::Blob(mac.to_vec())).chain(key.iter().map(value));
        stmt.execute(params_from_iter(params))?;
        Ok(())
    }

    fn row_mac_state(&mut self) -> Result<(bool, bool), ServerError> {
        let conn = self.0;
        let done: Option<bool> = conn
            .query_row(
                "SELECT done FROM row_mac_state WHERE only_row = 1",
                [],
                |r| r.get(0),
            )
            .map_or_else(
                |e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                },
                |d| Ok(Some(d)),
            )?;
        let audited: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE event = 'row_mac' AND outcome = 'stamped')",
            [],
            |r| r.get(0),
        )?;
        match done {
            Some(done) => Ok((done, audited)),
            None => Err(ServerError::Tampered(
                "the store's row-MAC migration mark was deleted".into(),
            )),
        }
    }

    fn set_row_mac_done(&mut self) -> Result<(), ServerError> {
        let conn = self.0;
        conn.execute("UPDATE row_mac_state SET done = 1 WHERE only_row = 1", [])?;
        Ok(())
    }

    fn card_audit_counts(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<(u32, u32), ServerError> {
        let conn = self.0;
        let sql = format!("SELECT {}", mac::audit_counts_sql(p));
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.query_row(params![profile.as_str(), identity], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
    }

    fn card_mac_row_counted(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Counted<MacRow>, ServerError> {
        let conn = self.0;
        let mut stmt = conn.prepare_cached(mac::card_counted_sql(p, false))?;
        let n = mac::CARDS.all().count();
        Ok(stmt
            .query_row(params![profile.as_str(), identity], |r| {
                Ok((decode(&mac::CARDS, r)?, (r.get(n + 1)?, r.get(n + 2)?)))
            })
            .optional()?)
    }

    fn last_card_audit_detail(
        &mut self,
        (profile, identity): CardKey<'_>,
        event: &str,
        outcome: &str,
    ) -> Result<Option<String>, ServerError> {
        let conn = self.0;
        Ok(conn
            .query_row(
                "SELECT detail FROM audit WHERE profile = ?1 AND identity = ?2 AND event = ?3
             AND outcome = ?4 ORDER BY id DESC LIMIT 1",
                params![profile.as_str(), identity, event, outcome],
                |r| r.get(0),
            )
            .optional()?)
    }
}
