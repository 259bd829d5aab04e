//! The DLL's entry points and its class factory.

use std::ffi::c_void;

use windows::core::{implement, Interface, Ref, BOOL, GUID, HRESULT};
use windows::Win32::Foundation::{
    CLASS_E_CLASSNOTAVAILABLE, CLASS_E_NOAGGREGATION, E_POINTER, S_FALSE, S_OK,
};
use windows::Win32::System::Com::{IClassFactory, IClassFactory_Impl};
use windows::Win32::UI::Shell::ICredentialProvider;

use super::provider::Provider;
use super::{can_unload, guard, guard_hresult, lock_server, registry, Alive, CLSID_PROVIDER};

/// Makes providers.
#[implement(IClassFactory)]
struct Factory {
    _alive: Alive,
}

impl IClassFactory_Impl for Factory_Impl {
    fn CreateInstance(
        &self,
        outer: Ref<'_, windows::core::IUnknown>,
        riid: *const GUID,
        ppv: *mut *mut c_void,
    ) -> windows::core::Result<()> {
        guard(|| {
            if ppv.is_null() || riid.is_null() {
                return Err(E_POINTER.into());
            }
            unsafe { *ppv = std::ptr::null_mut() };
            if !outer.is_null() {
                return Err(CLASS_E_NOAGGREGATION.into());
            }
            let provider: ICredentialProvider = Provider::new().into();
            unsafe { provider.query(riid, ppv) }.ok()
        })
    }

    fn LockServer(&self, lock: BOOL) -> windows::core::Result<()> {
        lock_server(lock.as_bool());
        Ok(())
    }
}

/// COM asks for the class factory of `rclsid`.
///
/// # Safety
/// Called by COM with valid pointers.
#[no_mangle]
pub unsafe extern "system" fn DllGetClassObject(
    rclsid: *const GUID,
    riid: *const GUID,
    ppv: *mut *mut c_void,
) -> HRESULT {
    guard_hresult(|| {
        if rclsid.is_null() || riid.is_null() || ppv.is_null() {
            return E_POINTER;
        }
        unsafe { *ppv = std::ptr::null_mut() };
        if unsafe { *rclsid } != CLSID_PROVIDER {
            return CLASS_E_CLASSNOTAVAILABLE;
        }
        let factory: IClassFactory = Factory {
            _alive: Alive::new(),
        }
        .into();
        unsafe { factory.query(riid, ppv) }
    })
}

/// COM asks whether the DLL may go: only when no object, worker or lock is left.
#[no_mangle]
pub extern "system" fn DllCanUnloadNow() -> HRESULT {
    guard_hresult(|| if can_unload() { S_OK } else { S_FALSE })
}

/// `regsvr32`: writes the class and the credential provider entry.
#[no_mangle]
pub extern "system" fn DllRegisterServer() -> HRESULT {
    guard_hresult(|| match registry::register() {
        Ok(()) => S_OK,
        Err(e) => {
            let _ = registry::unregister();
            e.code()
        }
    })
}

/// `regsvr32 /u`: removes them.
#[no_mangle]
pub extern "system" fn DllUnregisterServer() -> HRESULT {
    guard_hresult(|| match registry::unregister() {
        Ok(()) => S_OK,
        Err(e) => e.code(),
    })
}
