//! The registry: what `regsvr32` writes and removes, and the provider's configuration read
//! under the rule that only administrators and SYSTEM may change it.

use windows::core::{HRESULT, PCWSTR, PWSTR};
use windows::Win32::Foundation::{
    LocalFree, ERROR_FILE_NOT_FOUND, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS, HANDLE, HLOCAL,
    WIN32_ERROR,
};
use windows::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetNamedSecurityInfoW, GetSecurityInfo, SE_FILE_OBJECT, SE_OBJECT_TYPE,
    SE_REGISTRY_KEY,
};
use windows::Win32::Security::{
    GetAce, ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, DACL_SECURITY_INFORMATION, INHERIT_ONLY_ACE,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
};
use windows::Win32::System::LibraryLoader::GetModuleFileNameW;
use windows::Win32::System::Registry::{
    RegCloseKey, RegDeleteTreeW, RegEnumKeyExW, RegGetValueW, RegOpenKeyExW, RegSetKeyValueW, HKEY,
    HKEY_CLASSES_ROOT, HKEY_LOCAL_MACHINE, KEY_READ, REG_SZ, RRF_RT_REG_DWORD, RRF_RT_REG_SZ,
};
use windows::Win32::System::SystemServices::ACCESS_ALLOWED_ACE_TYPE;

use super::{wide, CLSID_STRING};
use crate::config::{self, Ace, Config};

mod error;
pub use error::{Descriptor, RegistryError};

/// Where LogonUI finds credential providers.
pub const PROVIDERS_KEY: &str =
    "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\Credential Providers";
/// The provider's name in the registry.
pub const NAME: &str = "cardunlock smart card unlock";

fn check(e: WIN32_ERROR) -> windows::core::Result<()> {
    if e == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(HRESULT::from_win32(e.0).into())
    }
}

fn set_string(root: HKEY, key: &str, value: Option<&str>, data: &str) -> windows::core::Result<()> {
    let key = wide(key);
    let name = value.map(wide);
    let data = wide(data);
    let bytes = u32::try_from(data.len() * 2).map_err(|_| windows::core::Error::empty())?;
    check(unsafe {
        RegSetKeyValueW(
            root,
            PCWSTR(key.as_ptr()),
            name.as_ref().map_or(PCWSTR::null(), |n| PCWSTR(n.as_ptr())),
            REG_SZ.0,
            Some(data.as_ptr().cast()),
            bytes,
        )
    })
}

/// The full path of this DLL.
fn module_path() -> windows::core::Result<String> {
    let module = super::this_module()?;
    let mut buf = vec![0u16; 32768];
    let n = unsafe { GetModuleFileNameW(Some(module), &mut buf) } as usize;
    if n == 0 || n >= buf.len() {
        return Err(windows::core::Error::from_win32());
    }
    Ok(String::from_utf16_lossy(&buf[..n]))
}

/// `DllRegisterServer`: the class (`InprocServer32`, `ThreadingModel=Apartment`) and the
/// credential provider entry.
pub fn register() -> windows::core::Result<()> {
    let path = module_path()?;
    let class = format!("CLSID\\{CLSID_STRING}");
    set_string(HKEY_CLASSES_ROOT, &class, None, NAME)?;
    let inproc = format!("{class}\\InprocServer32");
    set_string(HKEY_CLASSES_ROOT, &inproc, None, &path)?;
    set_string(
        HKEY_CLASSES_ROOT,
        &inproc,
        Some("ThreadingModel"),
        "Apartment",
    )?;
    let provider = format!("{PROVIDERS_KEY}\\{CLSID_STRING}");
    set_string(HKEY_LOCAL_MACHINE, &provider, None, NAME)
}

/// `DllUnregisterServer`: removes both (absent keys are fine).
pub fn unregister() -> windows::core::Result<()> {
    let mut result = Ok(());
    for (root, key) in [
        (
            HKEY_LOCAL_MACHINE,
            format!("{PROVIDERS_KEY}\\{CLSID_STRING}"),
        ),
        (HKEY_CLASSES_ROOT, format!("CLSID\\{CLSID_STRING}")),
    ] {
        let key = wide(&key);
        let e = unsafe { RegDeleteTreeW(root, PCWSTR(key.as_ptr())) };
        if e != ERROR_SUCCESS && e != ERROR_FILE_NOT_FOUND {
            result = check(e);
        }
    }
    result
}

/// A string SID.
fn sid_string(sid: PSID) -> Result<String, Descriptor> {
    let mut s = PWSTR::null();
    unsafe { ConvertSidToStringSidW(sid, &mut s) }.map_err(Descriptor::Sid)?;
    let text = unsafe { s.to_string() }.map_err(|_| Descriptor::SidNotUtf16);
    unsafe { LocalFree(Some(HLOCAL(s.0.cast()))) };
    text
}

/// The owner and DACL of a security descriptor, as the rule needs them.
unsafe fn entries(owner: PSID, dacl: *mut ACL) -> Result<(String, Option<Vec<Ace>>), Descriptor> {
    let owner = sid_string(owner)?;
    if dacl.is_null() {
        return Ok((owner, None));
    }
    let count = unsafe { (*dacl).AceCount };
    let mut aces = Vec::with_capacity(count.into());
    for i in 0..u32::from(count) {
        let mut p = std::ptr::null_mut();
        unsafe { GetAce(dacl, i, &mut p) }
            .map_err(|source| Descriptor::Ace { index: i, source })?;
        let header = unsafe { *(p as *const ACE_HEADER) };
        let allow = u32::from(header.AceType) == ACCESS_ALLOWED_ACE_TYPE;
        let inherit_only = u32::from(header.AceFlags) & INHERIT_ONLY_ACE.0 != 0;
        if !allow {
            // Deny entries (plain, object, callback, callback object) grant nothing; any other
            // allow type is not expected on a key or a file: refuse rather than guess.
            if [1u8, 6, 10, 12].contains(&header.AceType) {
                continue;
            }
            return Err(Descriptor::AceType {
                index: i,
                kind: header.AceType,
            });
        }
        let ace = p as *const ACCESS_ALLOWED_ACE;
        let sid = PSID(unsafe { std::ptr::addr_of!((*ace).SidStart) } as *mut _);
        aces.push(Ace {
            sid: sid_string(sid)?,
            mask: unsafe { (*ace).Mask },
            allow,
            inherit_only,
        });
    }
    Ok((owner, Some(aces)))
}

/// Reads the owner and DACL of a key handle or a file path.
fn check_object(
    what: &str,
    handle: Option<HANDLE>,
    path: Option<&str>,
    kind: SE_OBJECT_TYPE,
    rights: u32,
) -> Result<(), RegistryError> {
    let unreadable = |detail| RegistryError::Descriptor {
        what: what.to_string(),
        detail,
    };
    let mut owner = PSID::default();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd = PSECURITY_DESCRIPTOR::default();
    let info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    let e = match (handle, path) {
        (Some(h), _) => unsafe {
            GetSecurityInfo(
                h,
                kind,
                info,
                Some(&mut owner),
                None,
                Some(&mut dacl),
                None,
                Some(&mut sd),
            )
        },
        (None, Some(p)) => {
            let p = wide(p);
            unsafe {
                GetNamedSecurityInfoW(
                    PCWSTR(p.as_ptr()),
                    kind,
                    info,
                    Some(&mut owner),
                    None,
                    Some(&mut dacl),
                    None,
                    &mut sd,
                )
            }
        }
        (None, None) => return Err(unreadable(Descriptor::NothingToCheck)),
    };
    if e != ERROR_SUCCESS {
        return Err(unreadable(Descriptor::Unreadable(e.0)));
    }
    let read = unsafe { entries(owner, dacl) };
    unsafe { LocalFree(Some(HLOCAL(sd.0))) };
    let (owner, aces) = read.map_err(unreadable)?;
    Ok(config::only_admins_write(
        what,
        &owner,
        aces.as_deref(),
        rights,
    )?)
}

fn string_value(key: HKEY, name: &str) -> Result<Option<String>, RegistryError> {
    let name_w = wide(name);
    let mut buf = vec![0u16; 4096];
    let mut bytes = u32::try_from(buf.len() * 2).unwrap_or(u32::MAX);
    let e = unsafe {
        RegGetValueW(
            key,
            PCWSTR::null(),
            PCWSTR(name_w.as_ptr()),
            RRF_RT_REG_SZ,
            None,
            Some(buf.as_mut_ptr().cast()),
            Some(&mut bytes),
        )
    };
    if e == ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    if e != ERROR_SUCCESS {
        return Err(RegistryError::value_unreadable(name, e.0));
    }
    let units = (bytes as usize / 2).min(buf.len());
    let text = String::from_utf16_lossy(&buf[..units]);
    Ok(Some(text.trim_end_matches('\0').to_string()))
}

fn dword_value(key: HKEY, name: &str) -> Result<Option<u32>, RegistryError> {
    let name_w = wide(name);
    let mut v = 0u32;
    let mut bytes = 4u32;
    let e = unsafe {
        RegGetValueW(
            key,
            PCWSTR::null(),
            PCWSTR(name_w.as_ptr()),
            RRF_RT_REG_DWORD,
            None,
            Some((&mut v as *mut u32).cast()),
            Some(&mut bytes),
        )
    };
    match e {
        ERROR_SUCCESS => Ok(Some(v)),
        ERROR_FILE_NOT_FOUND => Ok(None),
        e => Err(RegistryError::value_unreadable(name, e.0)),
    }
}

/// Opens `name` under `parent` for reading (`None`: absent) and checks its owner and DACL as
/// the configuration key's: a subkey may carry its own.
fn open_checked(parent: HKEY, name: &str, what: &str) -> Result<Option<HKEY>, RegistryError> {
    let name_w = wide(name);
    let mut key = HKEY::default();
    let e = unsafe { RegOpenKeyExW(parent, PCWSTR(name_w.as_ptr()), None, KEY_READ, &mut key) };
    if e == ERROR_FILE_NOT_FOUND {
        return Ok(None);
    }
    if e != ERROR_SUCCESS {
        return Err(RegistryError::CannotOpen {
            what: what.to_string(),
            code: e.0,
        });
    }
    match check_object(
        what,
        Some(HANDLE(key.0)),
        None,
        SE_REGISTRY_KEY,
        config::KEY_WRITE_RIGHTS,
    ) {
        Ok(()) => Ok(Some(key)),
        Err(e) => {
            let _ = unsafe { RegCloseKey(key) };
            Err(e)
        }
    }
}

/// The names of `key`'s subkeys.
fn subkeys(key: HKEY, what: &str) -> Result<Vec<String>, RegistryError> {
    let mut names = Vec::new();
    for i in 0.. {
        let mut buf = vec![0u16; 256];
        let mut len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let e = unsafe {
            RegEnumKeyExW(
                key,
                i,
                Some(PWSTR(buf.as_mut_ptr())),
                &mut len,
                None,
                None,
                None,
                None,
            )
        };
        if e == ERROR_NO_MORE_ITEMS {
            break;
        }
        if e != ERROR_SUCCESS {
            return Err(RegistryError::Subkeys {
                what: what.to_string(),
                code: e.0,
            });
        }
        let units = (len as usize).min(buf.len());
        names.push(String::from_utf16_lossy(&buf[..units]));
    }
    Ok(names)
}

/// The values of each `IsoProfiles\<name>` subkey (none: no ISO profile). The registry reader
/// only fetches; `config::iso_profiles` validates.
fn iso_profile_values(key: HKEY) -> Result<Vec<config::IsoProfileValues>, RegistryError> {
    let what = format!("HKLM\\{}\\{}", config::KEY, config::KEY_ISO_PROFILES);
    let Some(list) = open_checked(key, config::KEY_ISO_PROFILES, &what)? else {
        return Ok(Vec::new());
    };
    let read = (|| {
        let mut all = Vec::new();
        for name in subkeys(list, &what)? {
            let at = format!("{what}\\{name}");
            let Some(profile) = open_checked(list, &name, &at)? else {
                continue;
            };
            let values = (|| {
                Ok::<_, RegistryError>(config::IsoProfileValues {
                    aid: string_value(profile, config::VALUE_ISO_AID)?,
                    admin_key_ref: dword_value(profile, config::VALUE_ISO_ADMIN_KEY_REF)?,
                    pin_ref: dword_value(profile, config::VALUE_ISO_PIN_REF)?,
                    algorithm: string_value(profile, config::VALUE_ISO_PROFILE_ALGORITHM)?,
                    name: name.clone(),
                })
            })();
            let _ = unsafe { RegCloseKey(profile) };
            all.push(values.map_err(|e| RegistryError::Within {
                at,
                source: Box::new(e),
            })?);
        }
        Ok::<_, RegistryError>(all)
    })();
    let _ = unsafe { RegCloseKey(list) };
    read
}

/// The configuration and the pinned certificate (PEM), after checking that only
/// administrators and SYSTEM can change the key and the certificate file.
pub fn load() -> Result<(Config, String), RegistryError> {
    let path = wide(config::KEY);
    let mut key = HKEY::default();
    let e = unsafe {
        RegOpenKeyExW(
            HKEY_LOCAL_MACHINE,
            PCWSTR(path.as_ptr()),
            None,
            KEY_READ,
            &mut key,
        )
    };
    if e != ERROR_SUCCESS {
        return Err(RegistryError::NotConfigured(e.0));
    }
    let read = (|| {
        let what = format!("HKLM\\{}", config::KEY);
        check_object(
            &what,
            Some(HANDLE(key.0)),
            None,
            SE_REGISTRY_KEY,
            config::KEY_WRITE_RIGHTS,
        )?;
        let config = Config::from_values(
            string_value(key, config::VALUE_SERVER_URL)?,
            string_value(key, config::VALUE_CERTIFICATE)?,
            string_value(key, config::VALUE_READER)?,
            dword_value(key, config::VALUE_OFFLINE)?,
            string_value(key, config::VALUE_ISO_ALGORITHM)?,
        )?;
        Ok::<_, RegistryError>(Config {
            iso_profiles: config::iso_profiles(iso_profile_values(key)?)?,
            ..config
        })
    })();
    let _ = unsafe { RegCloseKey(key) };
    let config = read?;
    let cert = &config.certificate_path;
    check_object(
        cert,
        None,
        Some(cert),
        SE_FILE_OBJECT,
        config::FILE_WRITE_RIGHTS,
    )?;
    let pem = std::fs::read_to_string(cert).map_err(|source| RegistryError::Certificate {
        path: cert.clone(),
        source: std::sync::Arc::new(source),
    })?;
    Ok((config, pem))
}
