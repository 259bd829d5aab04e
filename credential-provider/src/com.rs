//! The COM objects LogonUI loads (Windows only): the provider, its one credential (the tile),
//! the class factory and the DLL's four entry points.
//!
//! Threading: LogonUI calls every method on its own single-threaded apartment. The unlock runs
//! on a worker thread ([`crate::worker`]) that never touches a COM object: after each report it
//! posts a message to a message-only window created on LogonUI's thread (module `wake`); that
//! window's procedure, run by LogonUI's own message loop, drains the reports into the
//! [`Tile`](crate::tile::Tile) and calls `ICredentialProviderCredentialEvents` from there.
//!
//! Every entry point catches panics ([`crate::guard`]) and returns an `HRESULT`: a panic never
//! crosses into LogonUI.

mod credential;
pub mod dll;
#[cfg(not(feature = "demo"))]
mod pcsc;
mod provider;
pub mod registry;
mod wake;

use std::sync::atomic::{AtomicIsize, Ordering};

use windows::core::{GUID, HRESULT, PCWSTR, PWSTR};
use windows::Win32::Foundation::E_UNEXPECTED;
use windows::Win32::UI::Shell::SHStrDupW;
use zeroize::{Zeroize, Zeroizing};

/// The provider's class id: `{D3AE0D13-2973-4D49-9D45-8BD435DB7CB6}`.
pub const CLSID_PROVIDER: GUID = GUID::from_u128(0xd3ae0d13_2973_4d49_9d45_8bd435db7cb6);
/// The same, as the registry spells it.
pub const CLSID_STRING: &str = "{D3AE0D13-2973-4D49-9D45-8BD435DB7CB6}";

/// Live COM objects and `LockServer` locks: `DllCanUnloadNow` says yes only at zero.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts one live object while it exists.
pub(crate) struct Alive(());

impl Alive {
    pub(crate) fn new() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `LockServer(TRUE)` / `LockServer(FALSE)`.
pub(crate) fn lock_server(lock: bool) {
    if lock {
        LIVE.fetch_add(1, Ordering::SeqCst);
    } else {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether no object and no lock is left.
pub(crate) fn can_unload() -> bool {
    LIVE.load(Ordering::SeqCst) <= 0
}

/// Runs an entry point's body; a panic becomes `E_UNEXPECTED` instead of unwinding into LogonUI.
pub(crate) fn guard<T>(f: impl FnOnce() -> windows::core::Result<T>) -> windows::core::Result<T> {
    crate::guard::catch(f, || Err(E_UNEXPECTED.into()))
}

/// [`guard`] for the DLL's exported functions, which return a bare `HRESULT`.
pub(crate) fn guard_hresult(f: impl FnOnce() -> HRESULT) -> HRESULT {
    crate::guard::catch(f, || E_UNEXPECTED)
}

/// `s` as a NUL-terminated UTF-16 string.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A `CoTaskMemAlloc`ed copy of `s` for LogonUI (which frees it). The UTF-16 staging copy is
/// wiped (the text may be a typed secret).
pub(crate) fn co_string(s: &str) -> windows::core::Result<PWSTR> {
    let mut w = Zeroizing::new(wide(s));
    let out = unsafe { SHStrDupW(PCWSTR(w.as_ptr())) };
    w.zeroize();
    out
}

/// The text LogonUI passes (`NULL`: empty); the copy is wiped when dropped.
pub(crate) fn read_string(p: &PCWSTR) -> windows::core::Result<Zeroizing<String>> {
    if p.is_null() {
        return Ok(Zeroizing::new(String::new()));
    }
    let units = unsafe { p.as_wide() };
    String::from_utf16(units)
        .map(Zeroizing::new)
        .map_err(|_| windows::Win32::Foundation::E_INVALIDARG.into())
}

/// This DLL's module handle.
pub(crate) fn this_module() -> windows::core::Result<windows::Win32::Foundation::HMODULE> {
    use windows::Win32::System::LibraryLoader::{
        GetModuleHandleExW, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
        GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    };
    let mut module = windows::Win32::Foundation::HMODULE::default();
    let anchor: fn() -> windows::core::Result<windows::Win32::Foundation::HMODULE> = this_module;
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            PCWSTR(anchor as *const u16),
            &mut module,
        )?;
    }
    Ok(module)
}
