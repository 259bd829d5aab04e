//! Plays LogonUI, as Microsoft documents it, against the registered provider (Windows / Wine):
//! `CoCreateInstance` of the CLSID, `SetUsageScenario`, `Advise`, the field descriptors and
//! their labels, `GetCredentialCount` / `GetCredentialAt`, `SetSelected`, `GetStringValue` /
//! `SetStringValue`, `CommandLinkClicked`, `GetSerialization`, `ReportResult`, `UnAdvise`,
//! release to zero and `DllCanUnloadNow`; it pumps its thread's messages as LogonUI does and
//! drives a whole online unlock to "The smart card has been unlocked successfully."
//!
//! Registered must be a test build (feature `demo`: the demo server and card in-process).
//! Run by `scripts/windows/credential-provider.sh`. Exit code 0 only if every check passed.

#[cfg(not(windows))]
fn main() {
    eprintln!("logonui: a Windows program (cross-build it for x86_64-pc-windows-gnu)");
    std::process::exit(2);
}

#[cfg(windows)]
fn main() {
    // `--refused TEXT`: the shipped DLL is registered and its configuration is missing or
    // unsafe: the tile must show the refusal naming TEXT, with nothing to type.
    let args: Vec<String> = std::env::args().collect();
    let refused = args
        .iter()
        .position(|a| a == "--refused")
        .and_then(|i| args.get(i + 1).cloned());
    match harness::run(refused) {
        Ok(()) => println!("logonui: OK"),
        Err(e) => {
            eprintln!("logonui: FAIL: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(windows)]
mod events;
#[cfg(windows)]
mod unlock;

#[cfg(windows)]
mod harness {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use crate::events::{pump, wait, CredentialEvents, ProviderEvents, Screen};
    use crate::unlock::unlock;
    use cardunlock_credprov::com::CLSID_PROVIDER;
    use cardunlock_credprov::tile::fields::*;
    use windows::core::{Interface, BOOL, HRESULT, PCWSTR, PWSTR};
    use windows::Win32::Foundation::{E_NOTIMPL, S_OK};
    use windows::Win32::Graphics::Gdi::DeleteObject;
    use windows::Win32::System::Com::*;
    use windows::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    use windows::Win32::UI::Shell::*;

    pub type R<T> = Result<T, String>;

    pub fn fail(what: &str, e: impl std::fmt::Display) -> String {
        format!("{what}: {e}")
    }

    pub fn ensure(ok: bool, what: &str) -> R<()> {
        if ok {
            println!("  ok: {what}");
            Ok(())
        } else {
            Err(what.to_string())
        }
    }

    pub fn set(c: &ICredentialProviderCredential, id: u32, value: &str) -> R<()> {
        let w: Vec<u16> = value.encode_utf16().chain(Some(0)).collect();
        unsafe { c.SetStringValue(id, PCWSTR(w.as_ptr())) }.map_err(|e| fail("SetStringValue", e))
    }

    pub fn serialize(
        c: &ICredentialProviderCredential,
    ) -> R<(
        CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE,
        String,
        CREDENTIAL_PROVIDER_STATUS_ICON,
    )> {
        let mut response = CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE(-1);
        let mut cs = CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION::default();
        let mut text = PWSTR::null();
        let mut icon = CREDENTIAL_PROVIDER_STATUS_ICON(-1);
        unsafe { c.GetSerialization(&mut response, &mut cs, &mut text, &mut icon) }
            .map_err(|e| fail("GetSerialization", e))?;
        let status = if text.is_null() {
            String::new()
        } else {
            let s = unsafe { text.to_string() }.unwrap_or_default();
            unsafe { CoTaskMemFree(Some(text.0 as *const _)) };
            s
        };
        Ok((response, status, icon))
    }

    fn can_unload_now() -> R<HRESULT> {
        let name: Vec<u16> = "cardunlock_credprov.dll"
            .encode_utf16()
            .chain(Some(0))
            .collect();
        let module = unsafe { GetModuleHandleW(PCWSTR(name.as_ptr())) }
            .map_err(|e| fail("the provider DLL is not loaded", e))?;
        let f = unsafe { GetProcAddress(module, windows::core::s!("DllCanUnloadNow")) }
            .ok_or("DllCanUnloadNow is not exported")?;
        let f: unsafe extern "system" fn() -> HRESULT = unsafe { std::mem::transmute(f) };
        Ok(unsafe { f() })
    }

    pub fn run(refused: Option<String>) -> R<()> {
        unsafe { CoInitializeEx(None, COINIT_APARTMENTTHREADED) }
            .ok()
            .map_err(|e| fail("CoInitializeEx", e))?;
        let screen = Rc::new(RefCell::new(Screen::default()));
        let provider: ICredentialProvider =
            unsafe { CoCreateInstance(&CLSID_PROVIDER, None, CLSCTX_INPROC_SERVER) }
                .map_err(|e| fail("CoCreateInstance of the registered CLSID", e))?;
        println!("  ok: CoCreateInstance");
        let other = unsafe { provider.SetUsageScenario(CPUS_CREDUI, 0) };
        ensure(
            other.err().map(|e| e.code()) == Some(E_NOTIMPL),
            "CPUS_CREDUI refused",
        )?;
        unsafe { provider.SetUsageScenario(CPUS_LOGON, 0) }
            .map_err(|e| fail("SetUsageScenario", e))?;
        let events: ICredentialProviderEvents = ProviderEvents(screen.clone()).into();
        unsafe { provider.Advise(&events, 42) }.map_err(|e| fail("Advise", e))?;

        let n = unsafe { provider.GetFieldDescriptorCount() }.map_err(|e| fail("count", e))?;
        ensure(n as usize == FIELD_COUNT, "field descriptor count")?;
        for i in 0..n {
            let d =
                unsafe { provider.GetFieldDescriptorAt(i) }.map_err(|e| fail("descriptor", e))?;
            let (id, label) = unsafe {
                (
                    (*d).dwFieldID,
                    (*d).pszLabel.to_string().unwrap_or_default(),
                )
            };
            unsafe {
                CoTaskMemFree(Some((*d).pszLabel.0 as *const _));
                CoTaskMemFree(Some(d as *const _));
            }
            ensure(
                id == i && label == FIELDS[i as usize].label,
                &format!("field {i}: {label:?}"),
            )?;
        }
        ensure(FIELDS[NEW_PIN as usize].label == "New PIN", "New PIN label")?;
        ensure(
            FIELDS[CONFIRM_PIN as usize].label == "Confirm new PIN",
            "Confirm new PIN label",
        )?;
        let (mut count, mut default, mut auto) = (0u32, 0u32, BOOL(1));
        unsafe { provider.GetCredentialCount(&mut count, &mut default, &mut auto) }
            .map_err(|e| fail("GetCredentialCount", e))?;
        ensure(
            count == 1 && default == CREDENTIAL_PROVIDER_NO_DEFAULT && !auto.as_bool(),
            "one tile, no auto-logon",
        )?;
        let credential =
            unsafe { provider.GetCredentialAt(0) }.map_err(|e| fail("GetCredentialAt", e))?;
        let v2 = credential.cast::<ICredentialProviderCredential2>();
        ensure(v2.is_ok(), "ICredentialProviderCredential2")?;
        {
            let mut s = screen.borrow_mut();
            for id in 0..n {
                let text = unsafe { credential.GetStringValue(id) }
                    .map_err(|e| fail("GetStringValue", e))?;
                s.text.push(unsafe { text.to_string() }.unwrap_or_default());
                unsafe { CoTaskMemFree(Some(text.0 as *const _)) };
                let (mut st, mut inter) = Default::default();
                unsafe { credential.GetFieldState(id, &mut st, &mut inter) }
                    .map_err(|e| fail("GetFieldState", e))?;
                s.state.push(st);
            }
        }
        ensure(
            screen.borrow().text[TITLE as usize] == TILE_NAME,
            "the tile's name",
        )?;
        let bitmap =
            unsafe { credential.GetBitmapValue(IMAGE) }.map_err(|e| fail("GetBitmapValue", e))?;
        ensure(!bitmap.is_invalid(), "the user tile image")?;
        let _ = unsafe { DeleteObject(bitmap.into()) };
        let cevents: ICredentialProviderCredentialEvents = CredentialEvents(screen.clone()).into();
        unsafe { credential.Advise(&cevents) }.map_err(|e| fail("credential Advise", e))?;
        let logs_on = unsafe { credential.SetSelected() }.map_err(|e| fail("SetSelected", e))?;
        ensure(!logs_on.as_bool(), "selecting the tile logs nobody on")?;

        let prompt = PROMPT as usize;
        if let Some(why) = refused {
            wait(&screen, &format!("the refusal naming {why:?}"), |s| {
                s.text[prompt] == "The unlock was refused."
                    && s.text[STATUS as usize].contains(&why)
            })?;
            ensure(
                screen.borrow().state[ANSWERS[0] as usize] == CPFS_HIDDEN,
                "nothing to type",
            )?;
            // "Try again" reads the configuration again: refused again (not "stopped": the
            // worker is alive).
            unsafe { credential.CommandLinkClicked(RETRY) }.map_err(|e| fail("Try again", e))?;
            wait(&screen, "the refusal again", |s| {
                s.text[prompt] == "The unlock was refused."
                    && s.text[STATUS as usize].contains(&why)
            })?;
        } else {
            unlock(&screen, &provider, &credential)?;
        }
        release(provider, credential, v2)
    }

    /// UnAdvise, release everything, and DllCanUnloadNow until S_OK.
    fn release(
        provider: ICredentialProvider,
        credential: ICredentialProviderCredential,
        v2: windows::core::Result<ICredentialProviderCredential2>,
    ) -> R<()> {
        ensure(
            can_unload_now()? != S_OK,
            "DllCanUnloadNow: no while objects live",
        )?;
        unsafe { credential.UnAdvise() }.map_err(|e| fail("credential UnAdvise", e))?;
        unsafe { provider.UnAdvise() }.map_err(|e| fail("UnAdvise", e))?;
        drop(v2);
        drop(credential);
        drop(provider);
        let deadline = Instant::now() + Duration::from_secs(20);
        while can_unload_now()? != S_OK {
            if Instant::now() > deadline {
                return Err("DllCanUnloadNow still S_FALSE after every release".into());
            }
            pump();
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("  ok: released to zero, DllCanUnloadNow S_OK");
        unsafe { CoUninitialize() };
        Ok(())
    }
}
