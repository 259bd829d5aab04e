//! `ICredentialProvider`: one tile, in the logon and unlock-workstation scenarios only.

use std::cell::RefCell;
use std::rc::Rc;

use windows::core::{implement, Interface, Ref, BOOL, GUID};
use windows::Win32::Foundation::{E_INVALIDARG, E_NOTIMPL, E_OUTOFMEMORY, E_POINTER};
use windows::Win32::System::Com::{CoTaskMemAlloc, CoTaskMemFree};
use windows::Win32::UI::Shell::*;
use windows_core::ComObject;

use super::credential::{Credential, ProviderEvents};
use super::{co_string, guard, Alive};
use crate::tile::fields::{FieldKind, FIELDS, FIELD_COUNT};

/// The provider LogonUI creates through the class factory.
#[implement(ICredentialProvider)]
pub struct Provider {
    credential: RefCell<Option<ComObject<Credential>>>,
    events: ProviderEvents,
    _alive: Alive,
}

impl Provider {
    /// A provider with no tile yet (it comes with the usage scenario).
    pub fn new() -> Self {
        Self {
            credential: RefCell::new(None),
            events: Rc::new(RefCell::new(None)),
            _alive: Alive::new(),
        }
    }
}

fn kind(k: FieldKind) -> CREDENTIAL_PROVIDER_FIELD_TYPE {
    match k {
        FieldKind::TileImage => CPFT_TILE_IMAGE,
        FieldKind::LargeText => CPFT_LARGE_TEXT,
        FieldKind::SmallText => CPFT_SMALL_TEXT,
        FieldKind::Password => CPFT_PASSWORD_TEXT,
        FieldKind::EditText => CPFT_EDIT_TEXT,
        FieldKind::SubmitButton => CPFT_SUBMIT_BUTTON,
        FieldKind::CommandLink => CPFT_COMMAND_LINK,
    }
}

impl ICredentialProvider_Impl for Provider_Impl {
    fn SetUsageScenario(
        &self,
        cpus: CREDENTIAL_PROVIDER_USAGE_SCENARIO,
        _flags: u32,
    ) -> windows::core::Result<()> {
        guard(|| {
            if cpus != CPUS_LOGON && cpus != CPUS_UNLOCK_WORKSTATION {
                // Not in credential UI, not for password changes: no tile there.
                return Err(E_NOTIMPL.into());
            }
            let mut credential = self.credential.borrow_mut();
            if credential.is_none() {
                *credential = Some(ComObject::new(Credential::new(self.events.clone())?));
            }
            Ok(())
        })
    }

    fn SetSerialization(
        &self,
        _: *const CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION,
    ) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn Advise(
        &self,
        events: Ref<'_, ICredentialProviderEvents>,
        context: usize,
    ) -> windows::core::Result<()> {
        guard(|| {
            *self.events.borrow_mut() = Some((events.ok()?.clone(), context));
            Ok(())
        })
    }

    fn UnAdvise(&self) -> windows::core::Result<()> {
        guard(|| {
            *self.events.borrow_mut() = None;
            Ok(())
        })
    }

    fn GetFieldDescriptorCount(&self) -> windows::core::Result<u32> {
        Ok(FIELD_COUNT as u32)
    }

    fn GetFieldDescriptorAt(
        &self,
        index: u32,
    ) -> windows::core::Result<*mut CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR> {
        guard(|| {
            let d = FIELDS.get(index as usize).ok_or(E_INVALIDARG)?;
            let label = co_string(d.label)?;
            let size = std::mem::size_of::<CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR>();
            let p = unsafe { CoTaskMemAlloc(size) } as *mut CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR;
            if p.is_null() {
                unsafe { CoTaskMemFree(Some(label.0 as *const _)) };
                return Err(E_OUTOFMEMORY.into());
            }
            unsafe {
                p.write(CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR {
                    dwFieldID: d.id,
                    cpft: kind(d.kind),
                    pszLabel: label,
                    guidFieldType: GUID::zeroed(),
                })
            };
            Ok(p)
        })
    }

    fn GetCredentialCount(
        &self,
        count: *mut u32,
        default: *mut u32,
        auto_logon: *mut BOOL,
    ) -> windows::core::Result<()> {
        guard(|| {
            if count.is_null() || default.is_null() || auto_logon.is_null() {
                return Err(E_POINTER.into());
            }
            let credential = self.credential.borrow();
            // Once the card is unlocked LogonUI submits the tile by itself: GetSerialization
            // then reports the success.
            let auto = credential.as_ref().is_some_and(|c| c.auto_submit());
            unsafe {
                *count = u32::from(credential.is_some());
                *default = if auto {
                    0
                } else {
                    CREDENTIAL_PROVIDER_NO_DEFAULT
                };
                *auto_logon = BOOL::from(auto);
            }
            Ok(())
        })
    }

    fn GetCredentialAt(&self, index: u32) -> windows::core::Result<ICredentialProviderCredential> {
        guard(|| {
            let credential = self.credential.borrow();
            match (index, credential.as_ref()) {
                (0, Some(c)) => c.to_interface::<ICredentialProviderCredential2>().cast(),
                _ => Err(E_INVALIDARG.into()),
            }
        })
    }
}
