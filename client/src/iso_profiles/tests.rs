use super::*;

const GOOD: &str = r#"
# two vendors' admin cards
[[profile]]
name = "acme-minidriver"
aid = "A0 00 00 01 23 45"
admin-key-ref = 0x02
pin-ref = 0x81
algorithm = "AES-128"

[[profile]]
name = "other"
aid = "D2:76:00:01:24:01"
admin-key-ref = 1
pin-ref = 0x80
"#;

fn err(text: &str) -> ConfigError {
    IsoProfiles::parse(text).expect_err("malformed")
}

fn one(fields: &str) -> String {
    format!("[[profile]]\n{fields}\n")
}

const BASE: [(&str, &str); 4] = [
    ("name", "name = \"acme\""),
    ("aid", "aid = \"A000000123\""),
    ("key", "admin-key-ref = 0x01"),
    ("pin", "pin-ref = 0x80"),
];

/// The profile with `field` replaced by `line` (or left out when `line` is empty).
fn with(field: &str, line: &str) -> String {
    let lines: Vec<&str> = BASE
        .iter()
        .map(|(f, l)| if *f == field { line } else { l })
        .filter(|l| !l.is_empty())
        .collect();
    one(&lines.join("\n"))
}

#[test]
fn a_good_file_gives_the_profiles_in_order() {
    let p = IsoProfiles::parse(GOOD).unwrap();
    assert_eq!(p.names(), "acme-minidriver, other");
    let acme = p.get("ACME-minidriver").unwrap();
    assert_eq!(acme.aid(), &[0xA0, 0x00, 0x00, 0x01, 0x23, 0x45]);
    assert_eq!(acme.algorithm(), Some(Algorithm::Aes128));
    let core = acme.profile(None, None);
    assert_eq!((core.admin_key_ref, core.pin_ref), (0x02, 0x81));
    assert_eq!(core.algorithm, Algorithm::Aes128);
    // The command line's algorithm wins; an unset one is the card's, else 3DES.
    assert_eq!(
        acme.profile(Some(Algorithm::Aes256), None).algorithm,
        Algorithm::Aes256
    );
    let other = p.get("other").unwrap();
    assert_eq!(other.algorithm(), None);
    assert_eq!(other.profile(None, None).algorithm, Algorithm::TripleDes);
    assert_eq!(
        other.profile(None, Some(Algorithm::Aes192)).algorithm,
        Algorithm::Aes192
    );
    assert_eq!(p.probes(None).len(), 2);
    assert_eq!(p.probes(None)[1].aid, other.aid());
}

#[test]
fn an_empty_file_has_no_profile() {
    assert!(IsoProfiles::parse("").unwrap().is_empty());
    assert!(IsoProfiles::parse("# nothing yet\n").unwrap().is_empty());
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let e = err("[[profile]]\nname = \"a\"\naid = \"A0\n");
    assert_eq!(e.line, Some(3), "{e}");
    let e = err("\n\n[[profile]\n");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn missing_and_unknown_fields_are_refused() {
    let e = err(&with("pin", ""));
    assert!(e.to_string().contains("pin-ref"), "{e}");
    assert_eq!(e.line, Some(1), "{e}");
    let e = err(&with("pin", "pin-ref = 0x80\nkey = \"01\""));
    assert!(e.to_string().contains("key"), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
    let e = err("[[profiles]]\nname = \"a\"\n");
    assert!(e.to_string().contains("profiles"), "{e}");
    let e = err(&with("key", "admin-key-ref = \"01\""));
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn an_unknown_algorithm_is_refused_on_its_line() {
    let e = err(&format!("{}algorithm = \"rsa2048\"\n", with("", "")));
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("rsa2048"), "{e}");
    assert!(e.message.contains("aes128"), "{e}");
    let p = IsoProfiles::parse(&format!("{}algorithm = \"card\"\n", with("", ""))).unwrap();
    assert_eq!(p.entries()[0].algorithm(), None);
}

#[test]
fn duplicate_names_are_refused_on_the_second() {
    let text = format!("{}\n{}", with("", ""), with("name", "name = \"ACME\""));
    let e = err(&text);
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.message.contains("has that name already"), "{e}");
}

#[test]
fn aid_length_and_hex_are_checked() {
    let e = err(&with("aid", "aid = \"\""));
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("1 to 16 bytes"), "{e}");
    let seventeen = "00".repeat(17);
    let e = err(&with("aid", &format!("aid = \"{seventeen}\"")));
    assert!(e.message.contains("this one 17"), "{e}");
    let sixteen = "A0".repeat(16);
    assert!(IsoProfiles::parse(&with("aid", &format!("aid = \"{sixteen}\""))).is_ok());
    let e = err(&with("aid", "aid = \"A0 0G\""));
    assert!(e.message.starts_with("aid"), "{e}");
}

#[test]
fn references_are_bytes_and_names_are_plain() {
    let e = err(&with("key", "admin-key-ref = 256"));
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("0x00 to 0xFF"), "{e}");
    let e = err(&with("pin", "pin-ref = -1"));
    assert_eq!(e.line, Some(5), "{e}");
    let e = err(&with("name", "name = \"a b\""));
    assert_eq!(e.line, Some(2), "{e}");
    let e = err(&with("name", &format!("name = \"{}\"", "n".repeat(65))));
    assert!(e.message.contains("1 to 64"), "{e}");
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iso-profiles.toml");
    write(&path, GOOD);
    let p = IsoProfiles::load(Some(&path)).unwrap();
    assert!(p.get("acme-minidriver").is_some());
    write(&path, &with("aid", "aid = \"\""));
    let f = IsoProfiles::load(Some(&path)).unwrap_err();
    assert_eq!(f.kind, Kind::Usage);
    assert!(
        f.message.contains("iso-profiles.toml: line 3"),
        "{}",
        f.message
    );
    // A file named on the command line must exist.
    let f = IsoProfiles::load(Some(&dir.path().join("absent.toml"))).unwrap_err();
    assert!(f.message.contains("cannot read"), "{}", f.message);
}

/// Writes `text` to `path`, writable by its owner only.
fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// Proves the file check: a profiles file others may write is refused (whoever writes it
/// chooses the AIDs and references the workstation uses); fails if the file is read unchecked.
#[cfg(unix)]
#[test]
fn a_file_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iso-profiles.toml");
    write(&path, GOOD);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let f = IsoProfiles::load(Some(&path)).unwrap_err();
    assert_eq!(f.kind, Kind::Usage);
    assert!(f.message.contains("ISO profiles"), "{}", f.message);
}

/// One reader of algorithm names for the file, the command line and the registry: the
/// spellings people use, `card` only where "as the card reports" is a choice, and refusals
/// that say what is accepted.
#[test]
fn algorithm_names_as_people_write_them() {
    for (s, alg) in [
        ("3des", Algorithm::TripleDes),
        ("TDES", Algorithm::TripleDes),
        ("des3", Algorithm::TripleDes),
        ("Triple-DES", Algorithm::TripleDes),
        ("aes128", Algorithm::Aes128),
        ("AES-192", Algorithm::Aes192),
        (" aes_256 ", Algorithm::Aes256),
    ] {
        assert_eq!(parse_algorithm(s), Ok(Some(alg)), "{s}");
        assert_eq!(parse_named_algorithm(s), Ok(alg), "{s}");
    }
    assert_eq!(parse_algorithm("Card"), Ok(None));
    let e = parse_named_algorithm("card").unwrap_err();
    assert_eq!(
        e.to_string(),
        "algorithm \"card\": use 3des, aes128, aes192, aes256"
    );
    let e = parse_algorithm("des").unwrap_err();
    assert_eq!(e.given(), "des");
    assert_eq!(
        e.to_string(),
        "algorithm \"des\": use 3des, aes128, aes192, aes256 or card (as the card reports)"
    );
    assert!(parse_named_algorithm("rsa2048").is_err());
}

/// Each refusal names the field it is about (the file's errors are placed on that field's
/// line by it).
#[test]
fn profile_errors_name_their_field() {
    let field = |r: Result<IsoProfileEntry, ProfileError>| r.unwrap_err().field();
    assert_eq!(field(IsoProfileEntry::new("", "A0", 1, 1, None)), "name");
    assert_eq!(field(IsoProfileEntry::new("a b", "A0", 1, 1, None)), "name");
    assert_eq!(field(IsoProfileEntry::new("a", "A0Z", 1, 1, None)), "aid");
    assert_eq!(field(IsoProfileEntry::new("a", "", 1, 1, None)), "aid");
    assert_eq!(
        field(IsoProfileEntry::new("a", "A0", 256, 1, None)),
        "admin-key-ref"
    );
    assert_eq!(
        field(IsoProfileEntry::new("a", "A0", 1, -1, None)),
        "pin-ref"
    );
    assert_eq!(
        field(IsoProfileEntry::new("a", "A0", 1, 1, Some("x"))),
        "algorithm"
    );
    let a = IsoProfileEntry::new("a", "A0", 1, 1, None).unwrap();
    let e = IsoProfiles::from_entries(vec![a.clone(), a]).unwrap_err();
    assert_eq!(e, ProfileError::DuplicateName("a".into()));
    assert_eq!(e.to_string(), "name \"a\": a profile has that name already");
}
