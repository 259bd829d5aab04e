//! LogonUI's side of the events: what the provider tells it to show, kept as a [`Screen`],
//! and its message pump.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use windows::core::{implement, Ref, BOOL, PCWSTR};
use windows::Win32::Foundation::HWND;
use windows::Win32::Graphics::Gdi::HBITMAP;
use windows::Win32::UI::Shell::*;
use windows::Win32::UI::WindowsAndMessaging::{
    DispatchMessageW, PeekMessageW, TranslateMessage, MSG, PM_REMOVE,
};

use crate::harness::R;

/// Credential events that change nothing this harness checks: accepted and ignored.
macro_rules! ignored {
    ($($name:ident($($arg:ty),*);)*) => {
        $(
            fn $name(
                &self,
                _: Ref<'_, ICredentialProviderCredential>,
                $(_: $arg),*
            ) -> windows::core::Result<()> {
                Ok(())
            }
        )*
    };
}

/// What LogonUI shows: every field's text and state, as the provider told it.
#[derive(Default)]
pub struct Screen {
    pub text: Vec<String>,
    pub state: Vec<CREDENTIAL_PROVIDER_FIELD_STATE>,
    pub credentials_changed: u32,
}

#[implement(ICredentialProviderCredentialEvents)]
pub struct CredentialEvents(pub Rc<RefCell<Screen>>);

impl ICredentialProviderCredentialEvents_Impl for CredentialEvents_Impl {
    fn SetFieldState(
        &self,
        _: Ref<'_, ICredentialProviderCredential>,
        id: u32,
        s: CREDENTIAL_PROVIDER_FIELD_STATE,
    ) -> windows::core::Result<()> {
        if let Some(f) = self.0.borrow_mut().state.get_mut(id as usize) {
            *f = s;
        }
        Ok(())
    }
    fn SetFieldString(
        &self,
        _: Ref<'_, ICredentialProviderCredential>,
        id: u32,
        psz: &PCWSTR,
    ) -> windows::core::Result<()> {
        let text = unsafe { psz.to_string() }.unwrap_or_default();
        if let Some(f) = self.0.borrow_mut().text.get_mut(id as usize) {
            *f = text;
        }
        Ok(())
    }
    ignored! {
        SetFieldInteractiveState(u32, CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE);
        SetFieldCheckbox(u32, BOOL, &PCWSTR);
        SetFieldBitmap(u32, HBITMAP);
        SetFieldComboBoxSelectedItem(u32, u32);
        DeleteFieldComboBoxItem(u32, u32);
        AppendFieldComboBoxItem(u32, &PCWSTR);
        SetFieldSubmitButton(u32, u32);
    }
    fn OnCreatingWindow(&self) -> windows::core::Result<HWND> {
        Ok(HWND::default())
    }
}

#[implement(ICredentialProviderEvents)]
pub struct ProviderEvents(pub Rc<RefCell<Screen>>);

impl ICredentialProviderEvents_Impl for ProviderEvents_Impl {
    fn CredentialsChanged(&self, context: usize) -> windows::core::Result<()> {
        if context == 42 {
            self.0.borrow_mut().credentials_changed += 1;
        }
        Ok(())
    }
}

pub fn pump() {
    let mut msg = MSG::default();
    unsafe {
        while PeekMessageW(&mut msg, None, 0, 0, PM_REMOVE).as_bool() {
            let _ = TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

/// Pumps messages (the provider's worker reports through them) until `done`.
pub fn wait(screen: &Rc<RefCell<Screen>>, what: &str, done: impl Fn(&Screen) -> bool) -> R<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(&screen.borrow()) {
        if Instant::now() > deadline {
            let s = screen.borrow();
            return Err(format!("timed out waiting for {what}; shown: {:?}", s.text));
        }
        pump();
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("  ok: {what}");
    Ok(())
}
