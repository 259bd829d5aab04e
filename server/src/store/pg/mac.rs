//! The row-MAC primitives of [`Tx`] on PostgreSQL (generic over [`Table`]).

use postgres::types::ToSql;

use super::{small, PgTx};
use crate::store::mac::{self, Kind, MacRow, Table, Val};
use crate::store::tx::{CardKey, Counted, MacStoreTx};
use crate::ServerError;

/// `SELECT <expressions>`, one `'static` text.
fn intern_select(expressions: &str) -> &'static str {
    mac::intern(format!("SELECT {expressions}"))
}

fn p(i: usize) -> String {
    format!("${i}")
}

fn param(v: &Val) -> Box<dyn ToSql + Sync> {
    match v {
        Val::Null => Box::new(None::<String>),
        Val::Int(i) => Box::new(*i),
        Val::Text(t) => Box::new(t.clone()),
        Val::Blob(b) => Box::new(b.clone()),
    }
}

/// A value bound to a column of `kind` (a `NULL` typed as the column, a flag as a boolean).
fn typed(v: &Val, kind: Kind) -> Box<dyn ToSql + Sync> {
    match (v, kind) {
        (Val::Null, Kind::Int) => Box::new(None::<i64>),
        (Val::Null, Kind::Bool) => Box::new(None::<bool>),
        (Val::Null, Kind::Blob) => Box::new(None::<Vec<u8>>),
        (Val::Null, Kind::Real) => Box::new(None::<f64>),
        (Val::Int(i), Kind::Bool) => Box::new(*i != 0),
        (Val::Int(i), Kind::Real) => Box::new(f64::from_bits(*i as u64)),
        (v, _) => param(v),
    }
}

/// The column kind of `name` in `table` (text for a name it does not have).
fn kind_of(table: &Table, name: &str) -> Kind {
    table
        .all()
        .find(|c| c.name == name)
        .map_or(Kind::Text, |c| c.kind)
}

/// Rows of `SELECT <all columns>, mac` (or `RETURNING` them).
fn decode(table: &Table, rows: &[postgres::Row]) -> Result<Vec<MacRow>, ServerError> {
    let n = table.all().count();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let values = table
            .all()
            .enumerate()
            .map(|(i, c)| read(r, i, c.kind))
            .collect::<Result<Vec<Val>, _>>()?;
        out.push(MacRow {
            values,
            mac: r.try_get(n)?,
        });
    }
    Ok(out)
}

/// The row of `table` whose columns (all, then its MAC) start at column `first` of `r`.
pub(super) fn decode_at(
    table: &Table,
    r: &postgres::Row,
    first: usize,
) -> Result<MacRow, ServerError> {
    let n = table.all().count();
    let values = table
        .all()
        .enumerate()
        .map(|(i, c)| read(r, first + i, c.kind))
        .collect::<Result<Vec<Val>, _>>()?;
    Ok(MacRow {
        values,
        mac: r.try_get(first + n)?,
    })
}

pub(super) fn read(r: &postgres::Row, i: usize, kind: Kind) -> Result<Val, postgres::Error> {
    Ok(match kind {
        Kind::Int => r.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int),
        Kind::Bool => r
            .try_get::<_, Option<bool>>(i)?
            .map_or(Val::Null, |b| Val::Int(i64::from(b))),
        Kind::Text => r
            .try_get::<_, Option<String>>(i)?
            .map_or(Val::Null, Val::Text),
        Kind::Blob => r
            .try_get::<_, Option<Vec<u8>>>(i)?
            .map_or(Val::Null, Val::Blob),
        Kind::Real => r
            .try_get::<_, Option<f64>>(i)?
            .map_or(Val::Null, |f| Val::Int(f.to_bits() as i64)),
    })
}

impl PgTx<'_> {
    pub(super) fn mac_rows_pg(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
        lock: bool,
    ) -> Result<Vec<MacRow>, ServerError> {
        let boxes: Vec<Box<dyn ToSql + Sync>> = filter.iter().map(|(_, v)| param(v)).collect();
        let params: Vec<&(dyn ToSql + Sync)> = boxes.iter().map(AsRef::as_ref).collect();
        let sql = if lock {
            mac::select_locked_sql(table, filter, p)
        } else {
            mac::select_sql(table, filter, p)
        };
        let rows = self.query(sql, &params)?;
        decode(table, &rows)
    }
}

impl MacStoreTx for PgTx<'_> {
    fn mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.mac_rows_pg(table, filter, false)
    }

    fn mac_rows_locked(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.mac_rows_pg(table, filter, true)
    }

    fn insert_new_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        self.defer_insert(table, values, mac)
    }

    fn claim_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
    ) -> Result<bool, ServerError> {
        self.claim(table, values, mac)
    }

    fn update_locked_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<(), ServerError> {
        self.defer_update(table, key, sets, mac, old_mac)
    }

    fn delete_mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        let boxes: Vec<Box<dyn ToSql + Sync>> = filter.iter().map(|(_, v)| param(v)).collect();
        let params: Vec<&(dyn ToSql + Sync)> = boxes.iter().map(AsRef::as_ref).collect();
        let rows = self.query(mac::delete_returning_sql(table, filter, p), &params)?;
        decode(table, &rows)
    }

    fn insert_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
        or_nothing: bool,
    ) -> Result<u64, ServerError> {
        let boxes = insert_parts(table, values, mac);
        let params: Vec<&(dyn ToSql + Sync)> = boxes.iter().map(AsRef::as_ref).collect();
        self.execute(mac::insert_sql(table, or_nothing, p), &params)
    }

    fn update_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<u64, ServerError> {
        let (names, boxes) = update_parts(table, key, sets, mac, old_mac);
        let params: Vec<&(dyn ToSql + Sync)> = boxes.iter().map(AsRef::as_ref).collect();
        self.execute(mac::update_cols_sql(table, &names, p), &params)
    }

    fn set_row_mac(
        &mut self,
        table: &'static Table,
        key: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        let boxes: Vec<Box<dyn ToSql + Sync>> = std::iter::once(param(&Val::Blob(mac.to_vec())))
            .chain(key.iter().map(param))
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = boxes.iter().map(AsRef::as_ref).collect();
        self.execute(mac::update_sql(table, p), &params)?;
        Ok(())
    }

    fn row_mac_state(&mut self) -> Result<(bool, bool), ServerError> {
        let done = self
            .query_opt(
                "SELECT done FROM row_mac_state WHERE only_row = 1 FOR UPDATE",
                &[],
            )?
            .map(|r| r.get::<_, bool>(0));
        let audited: bool = self
            .query_opt(
                "SELECT EXISTS (SELECT 1 FROM audit WHERE event = 'row_mac' AND outcome = 'stamped')",
                &[],
            )?
            .is_some_and(|r| r.get(0));
        match done {
            Some(done) => Ok((done, audited)),
            None => Err(ServerError::Tampered(
                "the store's row-MAC migration mark was deleted".into(),
            )),
        }
    }

    fn set_row_mac_done(&mut self) -> Result<(), ServerError> {
        self.execute(
            "UPDATE row_mac_state SET done = TRUE WHERE only_row = 1",
            &[],
        )?;
        Ok(())
    }

    fn card_audit_counts(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<(u32, u32), ServerError> {
        let r = self.query_opt(
            intern_select(mac::audit_counts_sql(p)),
            &[&profile.as_str(), &identity],
        )?;
        match r {
            Some(r) => Ok((small(r.get(0))?, small(r.get(1))?)),
            None => Ok((0, 0)),
        }
    }

    fn card_mac_row_counted(
        &mut self,
        (profile, identity): CardKey<'_>,
    ) -> Result<Counted<MacRow>, ServerError> {
        let rows = self.query(
            mac::card_counted_sql(p, true),
            &[&profile.as_str(), &identity],
        )?;
        let n = mac::CARDS.all().count();
        match rows.first() {
            None => Ok(None),
            Some(r) => {
                let row = decode(&mac::CARDS, std::slice::from_ref(r))?
                    .pop()
                    .ok_or_else(|| ServerError::InvalidInput("card row".into()))?;
                let counts = (small(r.try_get(n + 1)?)?, small(r.try_get(n + 2)?)?);
                Ok(Some((row, counts)))
            }
        }
    }

    fn last_card_audit_detail(
        &mut self,
        (profile, identity): CardKey<'_>,
        event: &str,
        outcome: &str,
    ) -> Result<Option<String>, ServerError> {
        Ok(self
            .query_opt(
                "SELECT detail FROM audit WHERE profile = $1 AND identity = $2 AND event = $3
                 AND outcome = $4 ORDER BY id DESC LIMIT 1",
                &[&profile.as_str(), &identity, &event, &outcome],
            )?
            .map(|r| r.get(0)))
    }
}

/// The columns an `UPDATE` of `table` sets and its parameters, in the order of
/// [`mac::update_cols_sql`]: the new values, the new MAC, the key, the MAC checked.
pub(super) fn update_parts(
    table: &'static Table,
    key: &[Val],
    sets: &[(&'static str, Val)],
    mac: &[u8; 32],
    old_mac: &[u8],
) -> (Vec<&'static str>, Vec<Box<dyn ToSql + Sync>>) {
    let names: Vec<&'static str> = sets.iter().map(|(n, _)| *n).collect();
    let boxes: Vec<Box<dyn ToSql + Sync>> = sets
        .iter()
        .map(|(n, v)| typed(v, kind_of(table, n)))
        .chain(std::iter::once(param(&Val::Blob(mac.to_vec()))))
        .chain(key.iter().map(param))
        .chain(std::iter::once(param(&Val::Blob(old_mac.to_vec()))))
        .collect();
    (names, boxes)
}

/// The parameters of an `INSERT` of a whole row of `table` ([`mac::insert_sql`]).
pub(super) fn insert_parts(
    table: &'static Table,
    values: &[Val],
    mac: &[u8; 32],
) -> Vec<Box<dyn ToSql + Sync>> {
    table
        .all()
        .zip(values)
        .map(|(c, v)| typed(v, c.kind))
        .chain(std::iter::once(param(&Val::Blob(mac.to_vec()))))
        .collect()
}
