//! The primitives [`MacTx`] passes to its backend as they are: the audit chain (it has its own
//! MACs) and the row-MAC storage the guard checks and stamps with. Single statements are not
//! passed: the guard's own reads and writes go through its checked methods, and a statement
//! that reaches its [`Exec`] is refused.

use super::MacTx;
use crate::store::chain::{AuditHead, ChainRow, Link};
use crate::store::mac::{Kind, MacRow, Table, Val};
use crate::store::stmt::{Arg, Dialect, Exec, Param, Stmt};
use crate::store::tx::{AuditTx, CardKey, Counted, MacStoreTx};
use crate::store::{AuditEntry, AuditNote};
use crate::ServerError;

/// Refused: every statement of a guarded transaction goes through a primitive [`MacTx`] checks
/// (its own override of each [`crate::store::tx::Tx`] method, which calls the backend's). The
/// shared statements are default methods over [`Exec`]; one the guard forgot to override would
/// run here, unchecked, so it fails instead of writing or reading a row past its MAC.
impl Exec for MacTx<'_> {
    fn exec(&mut self, _: &'static Stmt, _: &[Arg<'_>]) -> Result<u64, ServerError> {
        Err(unguarded())
    }

    fn query_one(
        &mut self,
        _: &'static Stmt,
        _: &[Arg<'_>],
        _: Kind,
    ) -> Result<Option<Val>, ServerError> {
        Err(unguarded())
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    fn run(&mut self, _: &'static str, _: &[Param]) -> Result<u64, ServerError> {
        Err(unguarded())
    }

    fn fetch(
        &mut self,
        _: &'static str,
        _: &[Param],
        _: &[Kind],
    ) -> Result<Vec<Vec<Val>>, ServerError> {
        Err(unguarded())
    }
}

/// A store primitive that reached [`MacTx`]'s [`Exec`]: a method the guard does not check.
fn unguarded() -> ServerError {
    ServerError::Runtime(
        "store: a statement reached the row-MAC guard unchecked (a primitive the guard does not \
         override); refused"
            .into(),
    )
}

/// Passed through: the audit chain has its own MACs ([`crate::store::chain`]).
impl AuditTx for MacTx<'_> {
    fn insert_audit_row(
        &mut self,
        note: &AuditNote<'_>,
        now: i64,
        link: Option<Link<'_>>,
    ) -> Result<(), ServerError> {
        self.inner.insert_audit_row(note, now, link)
    }

    fn lane_heads(&mut self) -> Result<Vec<(String, AuditHead)>, ServerError> {
        self.inner.lane_heads()
    }

    fn audit_starts(&mut self) -> Result<Vec<(Option<String>, AuditHead)>, ServerError> {
        self.inner.audit_starts()
    }

    fn set_audit_start(
        &mut self,
        chain: Option<&str>,
        head: &AuditHead,
    ) -> Result<(), ServerError> {
        self.inner.set_audit_start(chain, head)
    }

    fn delete_audit_rows(&mut self, ids: &[i64]) -> Result<(), ServerError> {
        self.inner.delete_audit_rows(ids)
    }

    fn audit_head(&mut self) -> Result<Option<AuditHead>, ServerError> {
        self.inner.audit_head()
    }

    fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), ServerError> {
        self.inner.set_audit_head(head)
    }

    fn audit_chain_rows(&mut self, unchained_only: bool) -> Result<Vec<ChainRow>, ServerError> {
        self.inner.audit_chain_rows(unchained_only)
    }

    fn set_audit_row_chain(
        &mut self,
        id: i64,
        seq: i64,
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        self.inner.set_audit_row_chain(id, seq, mac)
    }

    fn audit_log(&mut self) -> Result<Vec<AuditEntry>, ServerError> {
        self.inner.audit_log()
    }
}

/// Passed through: the primitives the guard itself checks and stamps with.
impl MacStoreTx for MacTx<'_> {
    fn card_audit_counts(&mut self, card: CardKey<'_>) -> Result<(u32, u32), ServerError> {
        self.inner.card_audit_counts(card)
    }

    fn card_mac_row_counted(&mut self, card: CardKey<'_>) -> Result<Counted<MacRow>, ServerError> {
        self.inner.card_mac_row_counted(card)
    }

    fn last_card_audit_detail(
        &mut self,
        card: CardKey<'_>,
        event: &str,
        outcome: &str,
    ) -> Result<Option<String>, ServerError> {
        self.inner.last_card_audit_detail(card, event, outcome)
    }

    fn mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.inner.mac_rows(table, filter)
    }

    fn mac_rows_locked(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.inner.mac_rows_locked(table, filter)
    }

    fn delete_mac_rows(
        &mut self,
        table: &'static Table,
        filter: &[(&'static str, Val)],
    ) -> Result<Vec<MacRow>, ServerError> {
        self.inner.delete_mac_rows(table, filter)
    }

    fn insert_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
        or_nothing: bool,
    ) -> Result<u64, ServerError> {
        self.inner.insert_mac_row(table, values, mac, or_nothing)
    }

    fn claim_mac_row(
        &mut self,
        table: &'static Table,
        values: &[Val],
        mac: &[u8; 32],
    ) -> Result<bool, ServerError> {
        self.inner.claim_mac_row(table, values, mac)
    }

    fn update_mac_row(
        &mut self,
        table: &'static Table,
        key: &[Val],
        sets: &[(&'static str, Val)],
        mac: &[u8; 32],
        old_mac: &[u8],
    ) -> Result<u64, ServerError> {
        self.inner.update_mac_row(table, key, sets, mac, old_mac)
    }

    fn set_row_mac(
        &mut self,
        table: &'static Table,
        key: &[Val],
        mac: &[u8; 32],
    ) -> Result<(), ServerError> {
        self.inner.set_row_mac(table, key, mac)
    }

    fn row_mac_state(&mut self) -> Result<(bool, bool), ServerError> {
        self.inner.row_mac_state()
    }

    fn set_row_mac_done(&mut self) -> Result<(), ServerError> {
        self.inner.set_row_mac_done()
    }
}
