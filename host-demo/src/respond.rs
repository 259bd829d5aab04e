//! `cardunlock respond`: the operator's side of offline unlock.

use cardunlock_core::crypto::{AdminKey, Algorithm};

use crate::{exit, json_str, Failure};

#[derive(clap::Args, Debug)]
pub struct RespondArgs {
    /// The card's admin key, hex (24 bytes for 3DES; 16/24/32 for AES).
    #[arg(
        long,
        value_name = "HEX",
        env = "CARDUNLOCK_ADMIN_KEY",
        hide_env_values = true,
        required_unless_present = "master_secret_file",
        conflicts_with = "master_secret_file"
    )]
    key: Option<crate::secret_arg::SecretArg>,
    /// Or: derive the card's admin key from the master secret (hex file) and its identity.
    #[arg(long, requires = "identity")]
    master_secret_file: Option<std::path::PathBuf>,
    /// The card identity (hex, as `cardunlock status` shows it), with --master-secret-file.
    #[arg(long, requires = "master_secret_file")]
    identity: Option<String>,
    /// The card profile, with --master-secret-file: gids or iso.
    #[arg(long, default_value = "iso")]
    profile: String,
    /// The key generation, with --master-secret-file (0 after enrollment).
    #[arg(long, default_value_t = 0)]
    generation: u32,
    /// Admin key algorithm: 3des, aes128, aes192, aes256.
    #[arg(long, default_value = "3des", value_parser = parse_algorithm)]
    algorithm: Algorithm,
    /// The challenge the user reads out (hex; spaces allowed).
    challenge: Vec<String>,
}

pub fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "3des" | "tdes" | "des3" => Ok(Algorithm::TripleDes),
        "aes128" => Ok(Algorithm::Aes128),
        "aes192" => Ok(Algorithm::Aes192),
        "aes256" => Ok(Algorithm::Aes256),
        _ => Err(format!(
            "unknown algorithm {s:?}: use 3des, aes128, aes192 or aes256"
        )),
    }
}

/// Parses hex with spaces, colons and dashes allowed.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'-' | b'\t'))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("{s:?} is not hex"))
        })
        .collect()
}

/// Hex in groups of four digits, as read out over the phone: `1A2B 3C4D ...`.
pub fn grouped_hex(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// E_K(challenge) for an offline response.
pub fn compute(key: &AdminKey, challenge: &[u8]) -> Result<Vec<u8>, String> {
    let n = key.algorithm().block_len();
    if challenge.len() != n {
        return Err(format!(
            "the challenge must be {n} bytes ({} hex digits) for {}",
            2 * n,
            key.algorithm()
        ));
    }
    let mut block = challenge.to_vec();
    key.encrypt_ecb(&mut block).map_err(|e| e.to_string())?;
    Ok(block)
}

pub fn run(args: &RespondArgs, json: bool) -> Result<(), Failure> {
    let key = match (&args.key, &args.master_secret_file, &args.identity) {
        (Some(hex), _, _) => AdminKey::from_hex(args.algorithm, hex.expose())
            .map_err(|e| Failure::new(exit::USAGE, format!("admin key: {e}")))?,
        (None, Some(file), Some(identity)) => {
            let master = cardunlock_server::MasterSecret::from_file(file)
                .map_err(|e| Failure::new(exit::USAGE, format!("master secret: {e}")))?;
            let id = parse_hex(identity)
                .map_err(|e| Failure::new(exit::USAGE, format!("identity: {e}")))?;
            if !matches!(args.profile.as_str(), "gids" | "iso") {
                return Err(Failure::new(
                    exit::USAGE,
                    "--profile must be gids or iso (PIV cards use their PUK)",
                ));
            }
            cardunlock_server::kdf::admin_key(
                &master,
                &args.profile,
                &id,
                args.algorithm,
                args.generation,
            )
        }
        _ => {
            return Err(Failure::new(
                exit::USAGE,
                "give --key, or --master-secret-file with --identity",
            ))
        }
    };
    let challenge = parse_hex(&args.challenge.join(" "))
        .map_err(|e| Failure::new(exit::USAGE, format!("challenge: {e}")))?;
    let response = compute(&key, &challenge).map_err(|e| Failure::new(exit::USAGE, e))?;
    if json {
        println!(
            "{{\"ok\":true,\"response\":{}}}",
            json_str(&grouped_hex(&response))
        );
    } else {
        println!("Response: {}", grouped_hex(&response));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_vector_as_an_operator_types_it() {
        let key = AdminKey::piv_default();
        let challenge = parse_hex("D4BD 9B1D A5D2 6CDA").unwrap();
        assert_eq!(
            grouped_hex(&compute(&key, &challenge).unwrap()),
            "B5A8 5C0F 0207 FCF1"
        );
        assert!(compute(&key, &[0; 16]).is_err());
        assert!(parse_hex("D4B").is_err());
        assert!(parse_hex("ZZ").is_err());
    }
}
