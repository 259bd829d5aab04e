//! The host's ends of a simulated reader: the bulk pipe and the control channel.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use cardunlock_ccid::session::Control;

use crate::reader::ReaderSim;
use crate::SlotCard;

/// A [`ReaderSim`] shared by its pipe, its control channel and the test.
#[derive(Debug)]
pub struct SharedReader<S>(pub(crate) Rc<RefCell<ReaderSim<S>>>);

impl<S> Clone for SharedReader<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: SlotCard> SharedReader<S> {
    /// The host's end of the bulk pipe.
    pub fn pipe(&self) -> SimPipe<S> {
        SimPipe(self.clone())
    }

    /// The control channel (ABORT request).
    pub fn control(&self) -> SimControl<S> {
        SimControl(self.clone())
    }

    /// The reader.
    pub fn get(&self) -> Ref<'_, ReaderSim<S>> {
        self.0.borrow()
    }

    /// The reader, mutably (inject faults, pull the card).
    pub fn get_mut(&self) -> RefMut<'_, ReaderSim<S>> {
        self.0.borrow_mut()
    }
}

/// The host's end of the simulated bulk pipe.
#[derive(Debug)]
pub struct SimPipe<S>(SharedReader<S>);

impl<S> embedded_io_async::ErrorType for SimPipe<S> {
    /// `ConnectionReset` for a stalled endpoint ([`Fault::Stall`](crate::Fault::Stall)), as the USB backend reports it.
    type Error = embedded_io_async::ErrorKind;
}

impl<S: SlotCard> embedded_io_async::Read for SimPipe<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let reader = &self.0;
        core::future::poll_fn(|_cx| reader.0.borrow_mut().poll_read(buf)).await
    }
}

impl<S: SlotCard> embedded_io_async::Write for SimPipe<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0 .0.borrow_mut().on_write(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0 .0.borrow_mut().on_flush();
        Ok(())
    }
}

/// The simulated control channel: records the ABORT request.
#[derive(Debug)]
pub struct SimControl<S>(SharedReader<S>);

impl<S: SlotCard> Control for SimControl<S> {
    type Error = core::convert::Infallible;

    async fn abort(&mut self, slot: u8, seq: u8) -> Result<(), Self::Error> {
        self.0 .0.borrow_mut().on_control_abort(slot, seq);
        Ok(())
    }

    async fn clear_halt(&mut self) -> Result<(), Self::Error> {
        let mut r = self.0 .0.borrow_mut();
        r.halts_cleared += 1;
        r.halted = false;
        Ok(())
    }
}
