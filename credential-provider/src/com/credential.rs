//! The tile as LogonUI sees it: `ICredentialProviderCredential2` over a [`Tile`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use windows::core::{implement, Interface, Ref, BOOL, PCWSTR, PWSTR};
use windows::Win32::Foundation::{E_INVALIDARG, E_NOTIMPL, E_POINTER, NTSTATUS, S_FALSE};
use windows::Win32::Graphics::Gdi::{CreateBitmap, HBITMAP};
use windows::Win32::UI::Shell::*;
use windows_core::IUnknownImpl;

use super::wake::WakeWindow;
use super::{co_string, guard, read_string, Alive};
use crate::image;
use crate::link::{self, WorkerEnd};
use crate::tile::fields::{Change, Shown, View, FIELD_COUNT, IMAGE, SUBMIT};
use crate::tile::{Submission, Tile};
use crate::worker::Options;

/// The provider's events and their advise context, shared with the credential.
pub type ProviderEvents = Rc<RefCell<Option<(ICredentialProviderEvents, usize)>>>;

/// The one credential: the "Unlock smart card" tile.
#[implement(ICredentialProviderCredential2)]
pub struct Credential {
    tile: RefCell<Tile>,
    shown: RefCell<View>,
    events: RefCell<Option<ICredentialProviderCredentialEvents>>,
    provider_events: ProviderEvents,
    told_provider: Cell<bool>,
    wake: WakeWindow,
    _alive: Alive,
}

/// Starts the unlock worker for the shipped DLL: the registry's server and a WinSCard reader.
/// A configuration that is missing or unsafe is the refusal form; "Try again" reads it again.
#[cfg(not(feature = "demo"))]
fn start_worker(end: WorkerEnd) -> bool {
    use crate::link::{Problem, ProblemKind, Reply, Report};
    let first = super::registry::load();
    let offline = first.as_ref().is_ok_and(|(c, _)| c.offline_offered);
    spawn(move || {
        let mut loaded = first;
        loop {
            match loaded {
                Ok((config, pem)) => {
                    let options = Options {
                        offline_offered: config.offline_offered,
                        iso_algorithm: config.iso_algorithm,
                        iso_profiles: config.iso_profiles.clone(),
                    };
                    let source = super::pcsc::PcscReaders {
                        reader: config.reader.clone(),
                        poll: std::time::Duration::from_millis(500),
                    };
                    crate::worker::run_server(&config.server_url, &pem, source, options, end);
                    return;
                }
                Err(e) => {
                    let problem = Problem {
                        kind: ProblemKind::Refused,
                        message: e.to_string(),
                    };
                    if end.report(Report::Failed(problem)).is_err() {
                        return;
                    }
                    match end.wait() {
                        Ok(Reply::Retry) => loaded = super::registry::load(),
                        _ => return,
                    }
                }
            }
        }
    });
    offline
}

/// TEST BUILDS ONLY (feature `demo`): the seed's demo server and simulated card in-process.
#[cfg(feature = "demo")]
fn start_worker(end: WorkerEnd) -> bool {
    let options = Options::default();
    // A test-only build: cheap answer hashes keep the run short under Wine.
    let argon2 = cardunlock_client::demo::Argon2Params::TEST_ONLY_FAST;
    spawn(move || {
        crate::worker::run_demo(
            cardunlock_client::demo::Scenario::Seed,
            argon2,
            options,
            end,
        )
    });
    true
}

/// Runs `f` on a worker thread that counts as a live object (the DLL is not unloaded under
/// it) and whose panic stays there.
fn spawn(f: impl FnOnce() + Send + 'static) {
    let alive = Alive::new();
    let _ = std::thread::Builder::new()
        .name("cardunlock-unlock".into())
        .spawn(move || {
            let _alive = alive;
            crate::guard::catch(f, || ());
        });
}

impl Credential {
    /// A tile whose worker starts now (on LogonUI's thread: the wake-up window lives here).
    pub fn new(provider_events: ProviderEvents) -> windows::core::Result<Self> {
        let wake = WakeWindow::new()?;
        let (tile_end, worker_end) = link::channel(wake.waker());
        let offline = start_worker(worker_end);
        let tile = Tile::new(tile_end, offline);
        let shown = tile.view();
        Ok(Self {
            tile: RefCell::new(tile),
            shown: RefCell::new(shown),
            events: RefCell::new(None),
            provider_events,
            told_provider: Cell::new(false),
            wake,
            _alive: Alive::new(),
        })
    }

    /// Whether LogonUI should submit the tile by itself (the unlock finished).
    pub fn auto_submit(&self) -> bool {
        self.tile.try_borrow().is_ok_and(|t| t.auto_submit())
    }
}

impl Credential_Impl {
    /// Takes in the worker's reports and tells LogonUI what changed. On LogonUI's thread only.
    pub fn refresh(&self) {
        let (changes, auto) = {
            let Ok(mut tile) = self.tile.try_borrow_mut() else {
                return;
            };
            let Ok(mut shown) = self.shown.try_borrow_mut() else {
                return;
            };
            tile.pump();
            let view = tile.view();
            let changes = view.changes_from(&shown, &tile.take_wiped());
            *shown = view;
            (changes, tile.auto_submit())
        };
        let events = self.events.borrow().clone();
        if let (Some(events), Ok(me)) = (events, self.me()) {
            for change in changes {
                let _ = unsafe { tell(&events, &me, change) };
            }
        }
        if auto && !self.told_provider.replace(true) {
            let provider = self.provider_events.borrow().clone();
            if let Some((events, context)) = provider {
                let _ = unsafe { events.CredentialsChanged(context) };
            }
        }
    }

    fn me(&self) -> windows::core::Result<ICredentialProviderCredential> {
        self.to_object()
            .into_interface::<ICredentialProviderCredential2>()
            .cast()
    }
}

fn state(shown: Shown) -> CREDENTIAL_PROVIDER_FIELD_STATE {
    match shown {
        Shown::Hidden => CPFS_HIDDEN,
        Shown::Selected => CPFS_DISPLAY_IN_SELECTED_TILE,
        Shown::Both => CPFS_DISPLAY_IN_BOTH,
    }
}

fn interactive(focused: bool) -> CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE {
    if focused {
        CPFIS_FOCUSED
    } else {
        CPFIS_NONE
    }
}

unsafe fn tell(
    events: &ICredentialProviderCredentialEvents,
    me: &ICredentialProviderCredential,
    change: Change,
) -> windows::core::Result<()> {
    unsafe {
        match change {
            Change::Shown(id, s) => events.SetFieldState(me, id, state(s)),
            Change::Focused(id, f) => events.SetFieldInteractiveState(me, id, interactive(f)),
            Change::Text(id, text) => {
                let w = super::wide(&text);
                events.SetFieldString(me, id, PCWSTR(w.as_ptr()))
            }
            Change::Wipe(id) => events.SetFieldString(me, id, PCWSTR(super::wide("").as_ptr())),
            Change::SubmitBeside(id) => events.SetFieldSubmitButton(me, SUBMIT, id),
        }
    }
}

fn field(id: u32) -> windows::core::Result<u32> {
    if (id as usize) < FIELD_COUNT {
        Ok(id)
    } else {
        Err(E_INVALIDARG.into())
    }
}

impl ICredentialProviderCredential_Impl for Credential_Impl {
    fn Advise(
        &self,
        events: Ref<'_, ICredentialProviderCredentialEvents>,
    ) -> windows::core::Result<()> {
        guard(|| {
            *self.events.borrow_mut() = Some(events.ok()?.clone());
            // SAFETY: unregistered in UnAdvise and when the window goes with this object.
            unsafe { self.wake.register(Some(self as *const Credential_Impl)) };
            self.refresh();
            Ok(())
        })
    }

    fn UnAdvise(&self) -> windows::core::Result<()> {
        guard(|| {
            unsafe { self.wake.register(None) };
            *self.events.borrow_mut() = None;
            Ok(())
        })
    }

    fn SetSelected(&self) -> windows::core::Result<BOOL> {
        guard(|| {
            self.refresh();
            Ok(BOOL(0))
        })
    }

    fn SetDeselected(&self) -> windows::core::Result<()> {
        guard(|| {
            self.tile.borrow_mut().deselected();
            self.refresh();
            Ok(())
        })
    }

    fn GetFieldState(
        &self,
        id: u32,
        pcpfs: *mut CREDENTIAL_PROVIDER_FIELD_STATE,
        pcpfis: *mut CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE,
    ) -> windows::core::Result<()> {
        guard(|| {
            let f = self.tile.borrow().view().field(field(id)?);
            if pcpfs.is_null() || pcpfis.is_null() {
                return Err(E_POINTER.into());
            }
            unsafe {
                *pcpfs = state(f.shown);
                *pcpfis = interactive(f.focused);
            }
            Ok(())
        })
    }

    fn GetStringValue(&self, id: u32) -> windows::core::Result<PWSTR> {
        guard(|| co_string(&self.tile.borrow_mut().string(field(id)?)))
    }

    fn GetBitmapValue(&self, id: u32) -> windows::core::Result<HBITMAP> {
        guard(|| {
            if id != IMAGE {
                return Err(E_INVALIDARG.into());
            }
            let pixels = image::person_placeholder();
            let side = image::SIZE as i32;
            // LogonUI owns (and deletes) the bitmap.
            let bitmap = unsafe { CreateBitmap(side, side, 1, 32, Some(pixels.as_ptr().cast())) };
            if bitmap.is_invalid() {
                return Err(windows::core::Error::from_win32());
            }
            Ok(bitmap)
        })
    }

    fn GetCheckboxValue(&self, _: u32, _: *mut BOOL, _: *mut PWSTR) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn GetSubmitButtonValue(&self, id: u32) -> windows::core::Result<u32> {
        guard(|| {
            if id != SUBMIT {
                return Err(E_INVALIDARG.into());
            }
            Ok(self.tile.borrow().view().submit_beside)
        })
    }

    fn GetComboBoxValueCount(&self, _: u32, _: *mut u32, _: *mut u32) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn GetComboBoxValueAt(&self, _: u32, _: u32) -> windows::core::Result<PWSTR> {
        Err(E_NOTIMPL.into())
    }

    fn SetStringValue(&self, id: u32, psz: &PCWSTR) -> windows::core::Result<()> {
        guard(|| {
            let value = read_string(psz)?;
            self.tile
                .borrow_mut()
                .set_string(field(id)?, &value)
                .map_err(|_| windows::core::Error::from(E_INVALIDARG))?;
            // The PIN rules' violations follow the typing.
            self.refresh();
            Ok(())
        })
    }

    fn SetCheckboxValue(&self, _: u32, _: BOOL) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn SetComboBoxSelectedValue(&self, _: u32, _: u32) -> windows::core::Result<()> {
        Err(E_NOTIMPL.into())
    }

    fn CommandLinkClicked(&self, id: u32) -> windows::core::Result<()> {
        guard(|| {
            self.tile
                .borrow_mut()
                .command_link(id)
                .map_err(|_| windows::core::Error::from(E_INVALIDARG))?;
            self.refresh();
            Ok(())
        })
    }

    fn GetSerialization(
        &self,
        pcpgsr: *mut CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE,
        _pcpcs: *mut CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION,
        text: *mut PWSTR,
        icon: *mut CREDENTIAL_PROVIDER_STATUS_ICON,
    ) -> windows::core::Result<()> {
        guard(|| {
            if pcpgsr.is_null() {
                return Err(E_POINTER.into());
            }
            let submission = self.tile.borrow_mut().submit();
            let (response, status, status_icon) = match submission {
                Submission::NotFinished => (CPGSR_NO_CREDENTIAL_NOT_FINISHED, None, CPSI_NONE),
                // This tile unlocks a card; it logs nobody on: no credential, finished.
                Submission::Finished { text, success } => (
                    CPGSR_NO_CREDENTIAL_FINISHED,
                    Some(text),
                    if success { CPSI_SUCCESS } else { CPSI_ERROR },
                ),
            };
            let status = status.map(|t| co_string(&t)).transpose()?;
            unsafe {
                *pcpgsr = response;
                if !text.is_null() {
                    *text = status.unwrap_or(PWSTR::null());
                }
                if !icon.is_null() {
                    *icon = status_icon;
                }
            }
            // The typed secrets are gone from the tile: wipe LogonUI's copies, show what is next.
            self.refresh();
            Ok(())
        })
    }

    fn ReportResult(
        &self,
        _status: NTSTATUS,
        _substatus: NTSTATUS,
        text: *mut PWSTR,
        icon: *mut CREDENTIAL_PROVIDER_STATUS_ICON,
    ) -> windows::core::Result<()> {
        guard(|| {
            // Nothing was logged on: nothing to add.
            unsafe {
                if !text.is_null() {
                    *text = PWSTR::null();
                }
                if !icon.is_null() {
                    *icon = CPSI_NONE;
                }
            }
            Ok(())
        })
    }
}

impl ICredentialProviderCredential2_Impl for Credential_Impl {
    fn GetUserSid(&self) -> windows::core::Result<PWSTR> {
        // The tile belongs to no user account (it is shown under "Other user").
        Err(windows::core::Error::from_hresult(S_FALSE))
    }
}
