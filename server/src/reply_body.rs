//! Reply bodies: serialised JSON that can hold PUKs, admin answers and session tokens, kept in
//! memory that is wiped when the body is dropped.
//!
//! A reply is serialised straight into a [`JsonBody`] (growing it moves the bytes into a new
//! buffer and wipes the old one, [`cardunlock_protocol::body::extend_wiped`]), never through a
//! `serde_json::Value` (whose strings are freed unwiped). The response body hands hyper a
//! `Bytes` that owns the buffer, so it is wiped when hyper has written it and drops it. Copies
//! outside this crate (hyper's write buffer when it flattens small writes, rustls' records
//! before encryption) are not under its control.

use std::fmt;

use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;
use zeroize::Zeroizing;

/// A serialised JSON reply body, wiped on drop; its `Debug` shows its length only.
pub(crate) struct JsonBody(Zeroizing<Vec<u8>>);

impl fmt::Debug for JsonBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonBody({} bytes)", self.0.len())
    }
}

/// The buffer as [`Bytes`] owns it: wiped when the last `Bytes` is dropped.
struct Owner(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// An `io::Write` that grows its buffer with [`extend_wiped`](cardunlock_protocol::body::extend_wiped).
struct WipedWriter<'a>(&'a mut Zeroizing<Vec<u8>>);

impl std::io::Write for WipedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        cardunlock_protocol::body::extend_wiped(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl JsonBody {
    /// `value` serialised (`{}` if it cannot be, which the contract's types never do).
    pub(crate) fn of<T: Serialize + ?Sized>(value: &T) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(256));
        if serde_json::to_writer(WipedWriter(&mut buf), value).is_err() {
            buf = Zeroizing::new(b"{}".to_vec());
        }
        Self(buf)
    }

    /// The bytes.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The response body, owning the buffer (wiped once hyper drops it).
    pub(crate) fn into_body(self) -> Body {
        Body::from(Bytes::from_owner(Owner(self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_and_keeps_secrets_out_of_debug() {
        let body = JsonBody::of(&serde_json::json!({ "next_puk": "87654321" }));
        assert_eq!(body.as_bytes(), br#"{"next_puk":"87654321"}"#);
        let shown = format!("{body:?}");
        assert!(!shown.contains("87654321"), "{shown}");
        // Larger than the first allocation: grown through wiped buffers, still intact.
        let long = "x".repeat(5000);
        let body = JsonBody::of(&serde_json::json!({ "a": long }));
        assert_eq!(body.as_bytes().len(), 5000 + 8);
    }
}
