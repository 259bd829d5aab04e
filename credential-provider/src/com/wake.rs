//! The way back to LogonUI's thread: a message-only window created there. The worker posts
//! [`WM_WAKE`] to it; LogonUI's message loop runs [`window_proc`] on its own thread, which
//! refreshes the credential registered in the window.

use std::sync::Arc;

use windows::core::PCWSTR;
use windows::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, GetWindowLongPtrW, PostMessageW,
    RegisterClassW, SetWindowLongPtrW, UnregisterClassW, GWLP_USERDATA, HWND_MESSAGE,
    WINDOW_EX_STYLE, WM_APP, WNDCLASSW, WS_OVERLAPPED,
};

use super::credential::Credential_Impl;
use super::wide;
use crate::link::Wake;

/// "Reports are waiting".
pub const WM_WAKE: u32 = WM_APP + 0x4355;

const CLASS: &str = "cardunlock_credprov_wake";

/// The message-only window; destroyed with its credential.
pub struct WakeWindow {
    hwnd: HWND,
}

impl WakeWindow {
    /// Creates the window on the calling (LogonUI's) thread.
    pub fn new() -> windows::core::Result<Self> {
        let class = wide(CLASS);
        let instance = super::this_module()?;
        let wc = WNDCLASSW {
            lpfnWndProc: Some(window_proc),
            hInstance: instance.into(),
            lpszClassName: PCWSTR(class.as_ptr()),
            ..Default::default()
        };
        // A second registration fails with "class exists": that is fine.
        unsafe { RegisterClassW(&wc) };
        let hwnd = unsafe {
            CreateWindowExW(
                WINDOW_EX_STYLE(0),
                PCWSTR(class.as_ptr()),
                PCWSTR::null(),
                WS_OVERLAPPED,
                0,
                0,
                0,
                0,
                Some(HWND_MESSAGE),
                None,
                Some(instance.into()),
                None,
            )?
        };
        Ok(Self { hwnd })
    }

    /// The worker's wake-up: posts [`WM_WAKE`] (the handle travels as a number; posting is
    /// allowed from any thread).
    pub fn waker(&self) -> Wake {
        let raw = self.hwnd.0 as isize;
        Arc::new(move || {
            let _ =
                unsafe { PostMessageW(Some(HWND(raw as *mut _)), WM_WAKE, WPARAM(0), LPARAM(0)) };
        })
    }

    /// Registers the credential the window refreshes (`None`: none any more).
    ///
    /// # Safety
    /// `credential` must stay alive until it is unregistered or the window is dropped.
    pub unsafe fn register(&self, credential: Option<*const Credential_Impl>) {
        let p = credential.map_or(0, |c| c as isize);
        unsafe { SetWindowLongPtrW(self.hwnd, GWLP_USERDATA, p) };
    }
}

impl Drop for WakeWindow {
    fn drop(&mut self) {
        unsafe {
            SetWindowLongPtrW(self.hwnd, GWLP_USERDATA, 0);
            let _ = DestroyWindow(self.hwnd);
            // Fails while another credential's window exists; the last one removes the class,
            // so an unloaded DLL leaves no window procedure behind.
            if let Ok(instance) = super::this_module() {
                let class = wide(CLASS);
                let _ = UnregisterClassW(PCWSTR(class.as_ptr()), Some(instance.into()));
            }
        }
    }
}

unsafe extern "system" fn window_proc(hwnd: HWND, msg: u32, w: WPARAM, l: LPARAM) -> LRESULT {
    if msg == WM_WAKE {
        crate::guard::catch(
            || {
                let p = unsafe { GetWindowLongPtrW(hwnd, GWLP_USERDATA) } as *const Credential_Impl;
                // The credential unregisters itself before it goes (see `WakeWindow::register`).
                if let Some(credential) = unsafe { p.as_ref() } {
                    credential.refresh();
                }
            },
            || (),
        );
        return LRESULT(0);
    }
    unsafe { DefWindowProcW(hwnd, msg, w, l) }
}
