//! No panic crosses into LogonUI: every COM entry point and exported function runs its body
//! through [`catch`] and turns a panic into an error `HRESULT` (unwinding out of an
//! `extern "system"` function would abort LogonUI).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; if it panics, returns `on_panic()` instead.
pub fn catch<T>(f: impl FnOnce() -> T, on_panic: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| on_panic())
}

#[cfg(test)]
mod tests {
    use super::catch;
    use std::cell::RefCell;

    /// Proves a panic in an entry point's body (here the re-entrant borrow a COM call made from
    /// inside another would cause) comes back as the error value, not as an unwind.
    #[test]
    fn a_panic_becomes_the_error_value() {
        let state = RefCell::new(0);
        let held = state.borrow_mut();
        let r: Result<u32, &str> = catch(|| Ok(*state.borrow_mut() + 1), || Err("E_UNEXPECTED"));
        assert_eq!(r, Err("E_UNEXPECTED"));
        drop(held);
        assert_eq!(
            catch(|| Ok::<_, &str>(*state.borrow() + 1), || Err("x")),
            Ok(1)
        );
    }
}
