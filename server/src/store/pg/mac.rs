//! The row-MAC primitives of [`Tx`] on PostgreSQL (generic over [`Table`]).

use postgres::types::ToSql;

use super::PgTx;
use crate::store::mac::{Kind, MacRow, Table, Val};
use crate::store::stmt::Param;
use crate::store::tx::MacStoreTx;
use crate::ServerError;

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

impl MacStoreTx for PgTx<'_> {
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
        .map(|(n, v)| typed(v, table.kind_of(n)))
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

/// Parameters of a generated statement as PostgreSQL binds them.
pub(super) fn bind(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|(v, kind)| match kind {
            Some(kind) => typed(v, *kind),
            None => param(v),
        })
        .collect()
}
