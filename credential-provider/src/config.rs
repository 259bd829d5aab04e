//! The provider's configuration (`HKLM\SOFTWARE\cardunlock`) and the rule that protects it.
//!
//! The provider runs inside LogonUI as SYSTEM. Whoever can write its configuration key or the
//! pinned certificate file can point it at their own server and read the answers and the PUK,
//! so both must be writable by administrators and SYSTEM only. The Windows code reads the key's
//! and the file's security descriptors into [`Ace`]s; [`only_admins_write`] decides.

use std::fmt;

use cardunlock_client::iso_profiles::{
    parse_algorithm, IsoProfileEntry, IsoProfiles, ProfileError, UnknownAlgorithm,
};
use cardunlock_core::crypto::Algorithm;

/// Where the configuration lives, under `HKEY_LOCAL_MACHINE`.
pub const KEY: &str = "SOFTWARE\\cardunlock";
/// `REG_SZ`: the unlock server's URL (`https://unlock.example.org:8443`).
pub const VALUE_SERVER_URL: &str = "ServerUrl";
/// `REG_SZ`: the path of the server's certificate (PEM) the client pins.
pub const VALUE_CERTIFICATE: &str = "CertificatePath";
/// `REG_SZ` (optional): a reader name or name part; empty or absent: the reader with a card.
pub const VALUE_READER: &str = "ReaderFilter";
/// `REG_DWORD` (optional): 1 offers offline unlock after "no questions" (default 1).
pub const VALUE_OFFLINE: &str = "OfflineOffered";
/// `REG_SZ` (optional): the admin key algorithm of ISO admin cards (`3DES`, `AES-128`,
/// `AES-192`, `AES-256`); absent: as the card reports, else 3DES.
pub const VALUE_ISO_ALGORITHM: &str = "IsoAlgorithm";
/// Subkey (optional) with one subkey per ISO admin profile the workstation tries after PIV and
/// GIDS, in name order: `IsoProfiles\<name>` with [`VALUE_ISO_AID`], [`VALUE_ISO_ADMIN_KEY_REF`],
/// [`VALUE_ISO_PIN_REF`] and optionally [`VALUE_ISO_PROFILE_ALGORITHM`] (validated as the CLI's
/// `iso-profiles.toml`, by `cardunlock_client::iso_profiles`). Under the same owner and DACL
/// rule as the key.
pub const KEY_ISO_PROFILES: &str = "IsoProfiles";
/// `REG_SZ`: the profile's AID, hex (`A0 00 00 01 23 45`).
pub const VALUE_ISO_AID: &str = "Aid";
/// `REG_DWORD`: the admin key reference (P2 of EXTERNAL AUTHENTICATE).
pub const VALUE_ISO_ADMIN_KEY_REF: &str = "AdminKeyRef";
/// `REG_DWORD`: the PIN reference (P2 of VERIFY and RESET RETRY COUNTER).
pub const VALUE_ISO_PIN_REF: &str = "PinRef";
/// `REG_SZ` (optional): the profile's admin key algorithm (`3DES`, `AES-128`, ...; `card` or
/// absent: as the card reports).
pub const VALUE_ISO_PROFILE_ALGORITHM: &str = "Algorithm";

/// SYSTEM (`NT AUTHORITY\SYSTEM`).
pub const SID_SYSTEM: &str = "S-1-5-18";
/// `BUILTIN\Administrators`.
pub const SID_ADMINISTRATORS: &str = "S-1-5-32-544";

/// Registry rights that change the key: `KEY_SET_VALUE`, `KEY_CREATE_SUB_KEY`,
/// `KEY_CREATE_LINK`, `DELETE`, `WRITE_DAC`, `WRITE_OWNER`, `GENERIC_ALL`, `GENERIC_WRITE`.
pub const KEY_WRITE_RIGHTS: u32 =
    0x0002 | 0x0004 | 0x0020 | 0x0001_0000 | 0x0004_0000 | 0x0008_0000 | 0x1000_0000 | 0x4000_0000;
/// File rights that change the file: `FILE_WRITE_DATA`, `FILE_APPEND_DATA`, `FILE_WRITE_EA`,
/// `FILE_WRITE_ATTRIBUTES`, `DELETE`, `WRITE_DAC`, `WRITE_OWNER`, `GENERIC_ALL`, `GENERIC_WRITE`.
pub const FILE_WRITE_RIGHTS: u32 = 0x0002
    | 0x0004
    | 0x0010
    | 0x0100
    | 0x0001_0000
    | 0x0004_0000
    | 0x0008_0000
    | 0x1000_0000
    | 0x4000_0000;

/// One entry of a DACL, as far as the rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// The trustee, as a string SID (`S-1-5-32-544`).
    pub sid: String,
    /// The access mask.
    pub mask: u32,
    /// An allow entry (deny entries never grant anything).
    pub allow: bool,
    /// Inherited by children only (`INHERIT_ONLY_ACE`): does not apply to this object.
    pub inherit_only: bool,
}

/// Why someone other than administrators and SYSTEM may change an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writable {
    /// Its owner (who can always rewrite the DACL) is this SID.
    Owner(String),
    /// It has a NULL DACL: everyone has full access.
    NoDacl,
    /// An allow entry gives this SID a write right.
    Grantee(String),
}

impl fmt::Display for Writable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner(sid) => write!(f, "its owner is {sid}"),
            Self::NoDacl => f.write_str("it has no access control list (everyone may change it)"),
            Self::Grantee(sid) => write!(f, "{sid} may change it"),
        }
    }
}

/// Why the provider's configuration is refused; each names the registry value or object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Someone other than administrators and SYSTEM may change `what`.
    Writable {
        /// The key or file.
        what: String,
        /// Who, and how.
        why: Writable,
    },
    /// A required value of the configuration key is absent: the unlock is not configured.
    NotConfigured(&'static str),
    /// [`VALUE_SERVER_URL`] is not an `https://` address.
    NotHttps,
    /// [`VALUE_ISO_ALGORITHM`] names no algorithm.
    Algorithm(UnknownAlgorithm),
    /// A required value of an ISO profile's subkey is absent.
    ProfileValueNotSet {
        /// The subkey's full name.
        at: String,
        /// The value's name.
        value: &'static str,
        /// Its registry type (`REG_SZ`, `REG_DWORD`).
        kind: &'static str,
    },
    /// An ISO profile's values are refused (`at`: its subkey, or the profiles' key).
    Profile {
        /// The subkey's full name.
        at: String,
        /// What is wrong.
        error: ProfileError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Writable { what, why } => write!(
                f,
                "{what}: {why}. Only Administrators and SYSTEM may be able to change it; the \
                 unlock is not offered until that is fixed."
            ),
            Self::NotConfigured(name) => write!(
                f,
                "HKLM\\{KEY}\\{name} is not set: the unlock is not configured"
            ),
            Self::NotHttps => write!(
                f,
                "HKLM\\{KEY}\\{VALUE_SERVER_URL}: it must be an https:// address"
            ),
            Self::Algorithm(e) => write!(f, "HKLM\\{KEY}\\{VALUE_ISO_ALGORITHM}: {e}"),
            Self::ProfileValueNotSet { at, value, kind } => {
                write!(f, "{at}\\{value} is not set ({kind})")
            }
            Self::Profile { at, error } => write!(f, "{at}: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn trusted(sid: &str) -> bool {
    sid == SID_SYSTEM || sid == SID_ADMINISTRATORS
}

/// Whether only administrators and SYSTEM can change the object: its owner (who can always
/// rewrite the DACL) is one of them, it has a DACL (`None`: a NULL DACL, everyone has full
/// access), and no allow entry gives anyone else a right in `write_rights`. `what` names the
/// object in the refusal.
pub fn only_admins_write(
    what: &str,
    owner: &str,
    dacl: Option<&[Ace]>,
    write_rights: u32,
) -> Result<(), ConfigError> {
    let refuse = |why| {
        Err(ConfigError::Writable {
            what: what.to_string(),
            why,
        })
    };
    if !trusted(owner) {
        return refuse(Writable::Owner(owner.to_string()));
    }
    let Some(aces) = dacl else {
        return refuse(Writable::NoDacl);
    };
    for ace in aces {
        if ace.allow && !ace.inherit_only && ace.mask & write_rights != 0 && !trusted(&ace.sid) {
            return refuse(Writable::Grantee(ace.sid.clone()));
        }
    }
    Ok(())
}

/// The provider's settings, read from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The unlock server's URL.
    pub server_url: String,
    /// The pinned certificate's path.
    pub certificate_path: String,
    /// A reader name or name part (`None`: the reader with a card).
    pub reader: Option<String>,
    /// Whether offline unlock is offered.
    pub offline_offered: bool,
    /// The ISO admin key algorithm (`None`: as the card reports, else 3DES).
    pub iso_algorithm: Option<Algorithm>,
    /// The ISO admin profiles tried after PIV and GIDS ([`KEY_ISO_PROFILES`]).
    pub iso_profiles: IsoProfiles,
}

/// One `IsoProfiles\<name>` subkey's values as read (`None`: absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IsoProfileValues {
    /// The subkey's name: the profile's name.
    pub name: String,
    /// [`VALUE_ISO_AID`].
    pub aid: Option<String>,
    /// [`VALUE_ISO_ADMIN_KEY_REF`].
    pub admin_key_ref: Option<u32>,
    /// [`VALUE_ISO_PIN_REF`].
    pub pin_ref: Option<u32>,
    /// [`VALUE_ISO_PROFILE_ALGORITHM`].
    pub algorithm: Option<String>,
}

/// The ISO profiles from their subkeys' values, in name order; each error names the subkey.
pub fn iso_profiles(mut values: Vec<IsoProfileValues>) -> Result<IsoProfiles, ConfigError> {
    values.sort_by(|a, b| a.name.cmp(&b.name));
    let mut entries = Vec::with_capacity(values.len());
    for v in values {
        let at = format!("HKLM\\{KEY}\\{KEY_ISO_PROFILES}\\{}", v.name);
        let not_set = |value, kind| ConfigError::ProfileValueNotSet {
            at: at.clone(),
            value,
            kind,
        };
        let need = |value: Option<u32>, name| value.ok_or_else(|| not_set(name, "REG_DWORD"));
        let aid = v.aid.ok_or_else(|| not_set(VALUE_ISO_AID, "REG_SZ"))?;
        let entry = IsoProfileEntry::new(
            &v.name,
            &aid,
            i64::from(need(v.admin_key_ref, VALUE_ISO_ADMIN_KEY_REF)?),
            i64::from(need(v.pin_ref, VALUE_ISO_PIN_REF)?),
            v.algorithm.as_deref().filter(|a| !a.trim().is_empty()),
        )
        .map_err(|error| ConfigError::Profile {
            at: at.clone(),
            error,
        })?;
        entries.push(entry);
    }
    IsoProfiles::from_entries(entries).map_err(|error| ConfigError::Profile {
        at: format!("HKLM\\{KEY}\\{KEY_ISO_PROFILES}"),
        error,
    })
}

impl Config {
    /// The settings from the values read (`None`: absent). The URL and certificate path are
    /// required; the URL must be `https://`.
    pub fn from_values(
        server_url: Option<String>,
        certificate_path: Option<String>,
        reader: Option<String>,
        offline: Option<u32>,
        iso_algorithm: Option<String>,
    ) -> Result<Self, ConfigError> {
        let need = |v: Option<String>, name| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or(ConfigError::NotConfigured(name))
        };
        let server_url = need(server_url, VALUE_SERVER_URL)?;
        if !server_url.starts_with("https://") {
            return Err(ConfigError::NotHttps);
        }
        Ok(Self {
            server_url,
            certificate_path: need(certificate_path, VALUE_CERTIFICATE)?,
            reader: reader.filter(|r| !r.trim().is_empty()),
            offline_offered: offline.unwrap_or(1) != 0,
            iso_algorithm: match iso_algorithm.filter(|a| !a.trim().is_empty()) {
                Some(a) => parse_algorithm(&a).map_err(ConfigError::Algorithm)?,
                None => None,
            },
            iso_profiles: IsoProfiles::none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ace(sid: &str, mask: u32) -> Ace {
        Ace {
            sid: sid.into(),
            mask,
            allow: true,
            inherit_only: false,
        }
    }

    /// Proves the rule refuses every way someone else could change the key or file: a foreign
    /// owner, a NULL DACL, a write right for Users; and accepts read rights for Users and
    /// entries that do not apply to the object (deny, inherit-only).
    #[test]
    fn only_administrators_and_system_may_write() {
        let read = 0x0002_0019; // KEY_READ
        let good = [
            ace(SID_SYSTEM, 0x000F_003F),
            ace(SID_ADMINISTRATORS, 0x000F_003F),
            ace("S-1-5-32-545", read),
        ];
        assert!(
            only_admins_write("key", SID_ADMINISTRATORS, Some(&good), KEY_WRITE_RIGHTS).is_ok()
        );
        assert!(only_admins_write("key", SID_SYSTEM, Some(&good), KEY_WRITE_RIGHTS).is_ok());

        let user = "S-1-5-21-1-2-3-1001";
        let e = only_admins_write("key", user, Some(&good), KEY_WRITE_RIGHTS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("owner") && e.contains(user), "{e}");
        assert!(only_admins_write("key", SID_SYSTEM, None, KEY_WRITE_RIGHTS).is_err());
        for right in [0x0002, 0x0001_0000, 0x0004_0000, 0x1000_0000, 0x4000_0000] {
            let mut aces = good.to_vec();
            aces.push(ace("S-1-5-32-545", right));
            let e = only_admins_write("file", SID_SYSTEM, Some(&aces), FILE_WRITE_RIGHTS)
                .unwrap_err()
                .to_string();
            assert!(e.contains("S-1-5-32-545 may change it"), "{right:#x}: {e}");
        }
        let mut aces = good.to_vec();
        aces.push(Ace {
            allow: false,
            ..ace("S-1-1-0", 0x1000_0000)
        });
        aces.push(Ace {
            inherit_only: true,
            ..ace("S-1-3-0", 0x1000_0000)
        });
        assert!(only_admins_write("key", SID_SYSTEM, Some(&aces), KEY_WRITE_RIGHTS).is_ok());
    }

    #[test]
    fn configuration_needs_an_https_server_and_a_certificate() {
        let c = Config::from_values(
            Some("https://unlock.example.org:8443".into()),
            Some("C:\\ProgramData\\cardunlock\\server.pem".into()),
            Some(String::new()),
            None,
            None,
        )
        .expect("complete");
        assert_eq!(c.iso_algorithm, None);
        assert_eq!(c.reader, None);
        assert!(c.offline_offered);
        assert!(Config::from_values(None, Some("c".into()), None, None, None).is_err());
        assert!(
            Config::from_values(Some("http://x".into()), Some("c".into()), None, None, None)
                .is_err()
        );
        let e = Config::from_values(Some("https://x".into()), None, None, Some(0), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CertificatePath"), "{e}");
        let c = Config::from_values(
            Some("https://x".into()),
            Some("c".into()),
            None,
            Some(0),
            None,
        );
        assert!(!c.expect("ok").offline_offered);
        let aes = Some("aes-256".to_string());
        let c = Config::from_values(Some("https://x".into()), Some("c".into()), None, None, aes);
        assert_eq!(c.expect("ok").iso_algorithm, Some(Algorithm::Aes256));
        let c = Config::from_values(
            Some("https://x".into()),
            Some("c".into()),
            None,
            None,
            Some("3DES".into()),
        );
        assert_eq!(c.expect("ok").iso_algorithm, Some(Algorithm::TripleDes));
        let c = Config::from_values(
            Some("https://x".into()),
            Some("c".into()),
            None,
            None,
            Some("card".into()),
        );
        assert_eq!(c.expect("ok").iso_algorithm, None);
        let e = Config::from_values(
            Some("https://x".into()),
            Some("c".into()),
            None,
            None,
            Some("DES".into()),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("HKLM\\SOFTWARE\\cardunlock\\IsoAlgorithm: algorithm \"DES\""),
            "{e}"
        );
    }

    fn values(name: &str, aid: &str) -> IsoProfileValues {
        IsoProfileValues {
            name: name.into(),
            aid: Some(aid.into()),
            admin_key_ref: Some(1),
            pin_ref: Some(0x80),
            algorithm: None,
        }
    }

    /// The registry's ISO profiles go through the client's validation: name order, each value
    /// required, bad values refused naming the subkey.
    #[test]
    fn iso_profiles_from_the_registry_are_validated() {
        let p = iso_profiles(vec![
            values("zeta", "A0 00 00 01 23 45"),
            IsoProfileValues {
                algorithm: Some("AES-128".into()),
                ..values("acme", "D27600012401")
            },
        ])
        .expect("good");
        assert_eq!(p.names(), "acme, zeta");
        assert_eq!(p.entries()[0].algorithm(), Some(Algorithm::Aes128));
        assert!(iso_profiles(Vec::new()).expect("none").is_empty());
        let e = iso_profiles(vec![IsoProfileValues {
            pin_ref: None,
            ..values("acme", "A000")
        }])
        .unwrap_err()
        .to_string();
        assert!(e.contains("IsoProfiles\\acme\\PinRef is not set"), "{e}");
        let e = iso_profiles(vec![IsoProfileValues {
            admin_key_ref: Some(0x100),
            ..values("acme", "A000")
        }])
        .unwrap_err()
        .to_string();
        assert!(e.contains("IsoProfiles\\acme: admin-key-ref 256"), "{e}");
        let e = iso_profiles(vec![values("acme", "")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 16 bytes"), "{e}");
        let e = iso_profiles(vec![IsoProfileValues {
            algorithm: Some("RSA".into()),
            ..values("acme", "A000")
        }])
        .unwrap_err()
        .to_string();
        assert!(e.contains("RSA"), "{e}");
        let e = iso_profiles(vec![values("acme", "A000"), values("ACME", "A001")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("has that name already"), "{e}");
    }
}
