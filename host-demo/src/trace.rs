//! A transport wrapper that prints each APDU exchange, with the data of VERIFY, CHANGE REFERENCE
//! DATA and RESET RETRY COUNTER redacted.

use cardunlock_core::apdu::{Hex, RedactedCommand};
use cardunlock_core::{Transport, TransportError};

/// Prints every command and response of the wrapped transport when `enabled`.
pub struct Traced<T> {
    pub inner: T,
    pub enabled: bool,
}

impl<T: Transport> Transport for Traced<T> {
    type Error = T::Error;

    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, T::Error> {
        if self.enabled {
            eprintln!("    > {}", RedactedCommand(command));
        }
        let result = self.inner.transmit(command, response).await;
        if self.enabled {
            match &result {
                Ok(n) => {
                    let r = &response[..*n];
                    let (data, sw) = r.split_at(n.saturating_sub(2));
                    if data.is_empty() {
                        eprintln!("    < {}", Hex(sw));
                    } else {
                        eprintln!("    < {} {}", Hex(data), Hex(sw));
                    }
                }
                Err(e) => eprintln!("    < transport error: {}", e.kind()),
            }
        }
        result
    }

    fn supports_extended_length(&self) -> bool {
        self.inner.supports_extended_length()
    }
}
