//! The row-MAC primitives of [`Tx`] on SQLite (generic over [`Table`]).

use rusqlite::types::Value;

use crate::store::mac::{Kind, Val};
use crate::store::stmt::Param;
use crate::store::tx::MacStoreTx;
use crate::ServerError;

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

impl MacStoreTx for super::SqliteTx<'_> {
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
}

/// A parameter of a generated statement as SQLite binds it.
pub(super) fn bind((v, kind): &Param) -> Value {
    match kind {
        Some(kind) => typed(v, *kind),
        None => value(v),
    }
}
