//! The whole online unlock, as a person does it on the tile.

use std::cell::RefCell;
use std::rc::Rc;

use cardunlock_credprov::tile::fields::*;
use cardunlock_credprov::tile::{ANSWER_QUESTIONS, ENTER_NEW_PIN, UNLOCKED};
use windows::core::{BOOL, PWSTR};
use windows::Win32::Foundation::E_INVALIDARG;
use windows::Win32::System::Com::CoTaskMemFree;
use windows::Win32::UI::Shell::*;

use crate::events::{wait, Screen};
use crate::harness::{ensure, fail, serialize, set, R};

/// The whole online unlock, as a person does it on the tile.
pub fn unlock(
    screen: &Rc<RefCell<Screen>>,
    provider: &ICredentialProvider,
    credential: &ICredentialProviderCredential,
) -> R<()> {
    let (screen, credential) = (screen.clone(), credential.clone());
    let (mut count, mut default, mut auto) = (0u32, 0u32, BOOL(1));
    let prompt = PROMPT as usize;
    wait(&screen, "the security questions", |s| {
        s.text[prompt] == ANSWER_QUESTIONS
    })?;
    let q0 = screen.borrow().text[QUESTIONS[0] as usize].clone();
    ensure(
        q0 == "What was the name of your first pet?",
        "the seed's first question",
    )?;
    ensure(
        screen.borrow().state[ANSWERS[1] as usize] == CPFS_DISPLAY_IN_SELECTED_TILE,
        "two answer fields",
    )?;
    ensure(
        screen.borrow().state[ANSWERS[2] as usize] == CPFS_HIDDEN,
        "no third",
    )?;
    // Leaving the tile wipes what was typed, in the tile and in LogonUI's field.
    set(&credential, ANSWERS[0], "Rex")?;
    screen.borrow_mut().text[ANSWERS[0] as usize] = "Rex".into();
    unsafe { credential.SetDeselected() }.map_err(|e| fail("SetDeselected", e))?;
    ensure(
        screen.borrow().text[ANSWERS[0] as usize].is_empty(),
        "deselecting wipes the answer",
    )?;
    let _ = unsafe { credential.SetSelected() }.map_err(|e| fail("SetSelected", e))?;
    set(&credential, ANSWERS[0], "Rex")?;
    set(&credential, ANSWERS[1], "Springfield")?;
    let (r, _, _) = serialize(&credential)?;
    ensure(
        r == CPGSR_NO_CREDENTIAL_NOT_FINISHED,
        "answers submitted, not finished",
    )?;
    let left = unsafe { credential.GetStringValue(ANSWERS[0]) }.map_err(|e| fail("get", e))?;
    ensure(
        unsafe { left.to_string() }.unwrap_or_default().is_empty(),
        "the answer wiped",
    )?;
    unsafe { CoTaskMemFree(Some(left.0 as *const _)) };

    wait(&screen, "the new PIN form", |s| {
        s.text[prompt] == ENTER_NEW_PIN
    })?;
    ensure(
        screen.borrow().text[TITLE as usize] == "Michael Benson",
        "the user's name",
    )?;
    ensure(
        screen.borrow().text[SUBTITLE as usize] == "Michael.Benson@demo.local",
        "the e-mail",
    )?;
    set(&credential, NEW_PIN, "123456")?;
    set(&credential, CONFIRM_PIN, "123456")?;
    ensure(
        screen.borrow().text[STATUS as usize].contains("sequence"),
        "a PIN rule violation as status text",
    )?;
    let (r, _, _) = serialize(&credential)?;
    ensure(
        r == CPGSR_NO_CREDENTIAL_NOT_FINISHED,
        "the refused PIN is not sent",
    )?;
    ensure(
        screen.borrow().text[prompt] == ENTER_NEW_PIN,
        "still the PIN form",
    )?;
    let link = unsafe { credential.CommandLinkClicked(RETRY) };
    ensure(
        link.err().map(|e| e.code()) == Some(E_INVALIDARG),
        "no link on the PIN form",
    )?;
    set(&credential, NEW_PIN, "840259")?;
    set(&credential, CONFIRM_PIN, "840259")?;
    serialize(&credential)?;

    wait(&screen, "CredentialsChanged after the unlock", |s| {
        s.credentials_changed > 0
    })?;
    unsafe { provider.GetCredentialCount(&mut count, &mut default, &mut auto) }
        .map_err(|e| fail("GetCredentialCount", e))?;
    ensure(
        default == 0 && auto.as_bool(),
        "LogonUI asked to submit the tile",
    )?;
    let (r, text, icon) = serialize(&credential)?;
    ensure(r == CPGSR_NO_CREDENTIAL_FINISHED, "no credential, finished")?;
    ensure(icon == CPSI_SUCCESS, "the success icon")?;
    ensure(text == UNLOCKED, "the success text")?;
    println!("{text}");
    let (mut t, mut i) = (PWSTR::null(), CREDENTIAL_PROVIDER_STATUS_ICON(-1));
    unsafe {
        credential.ReportResult(
            windows::Win32::Foundation::NTSTATUS(0),
            windows::Win32::Foundation::NTSTATUS(0),
            &mut t,
            &mut i,
        )
    }
    .map_err(|e| fail("ReportResult", e))?;
    ensure(t.is_null() && i == CPSI_NONE, "ReportResult adds nothing")?;
    unsafe { provider.GetCredentialCount(&mut count, &mut default, &mut auto) }
        .map_err(|e| fail("GetCredentialCount", e))?;
    ensure(
        !auto.as_bool(),
        "the success is submitted once, not in a loop",
    )?;

    Ok(())
}
