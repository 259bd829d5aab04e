//! `cardunlock respond`: the operator's side of offline unlock.

use cardunlock_client::hex;
use cardunlock_client::{Failure, Kind};
use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_protocol::{AlgorithmName, Profile};

use crate::secrets::{SecretArg, Source};

#[derive(clap::Args, Debug)]
pub struct RespondArgs {
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    pub json: bool,
    /// The card's admin key, hex (24 bytes for 3DES; 16/24/32 for AES). Asked hidden when
    /// neither it nor --master-secret-file is given.
    #[arg(
        long,
        value_name = "HEX",
        env = "CARDUNLOCK_ADMIN_KEY",
        hide_env_values = true,
        conflicts_with = "master_secret_file"
    )]
    key: Option<SecretArg>,
    /// Read the admin key (hex) from standard input.
    #[arg(long, conflicts_with = "master_secret_file")]
    key_stdin: bool,
    /// Read the admin key (hex) from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "master_secret_file")]
    key_file: Option<std::path::PathBuf>,
    /// Or: derive the card's admin key from the master secret (hex file) and its identity.
    #[arg(long, requires = "identity")]
    master_secret_file: Option<std::path::PathBuf>,
    /// The card identity (hex, as `cardunlock status` shows it), with --master-secret-file.
    #[arg(long, requires = "master_secret_file")]
    identity: Option<String>,
    /// The card profile, with --master-secret-file: gids or iso.
    #[arg(long, default_value = "iso")]
    profile: Profile,
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
    let name = s.to_ascii_lowercase().replace(['-', '_'], "");
    let name = match name.as_str() {
        "tdes" | "des3" => "3des",
        other => other,
    };
    name.parse::<AlgorithmName>()
        .map(AlgorithmName::algorithm)
        .map_err(|_| format!("unknown algorithm {s:?}: use 3des, aes128, aes192 or aes256"))
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

pub fn run(args: &RespondArgs) -> Result<(), Failure> {
    let key = match (&args.master_secret_file, &args.identity) {
        (Some(file), Some(identity)) => {
            let master = cardunlock_server::MasterSecret::from_file(file)
                .map_err(|e| Failure::usage("master secret", e))?;
            let id = hex::parse(identity).map_err(|e| Failure::usage("identity", e))?;
            if args.profile == Profile::Piv {
                return Err(Failure::usage(
                    "--profile",
                    "it must be gids or iso (PIV cards use their PUK)",
                ));
            }
            cardunlock_server::kdf::admin_key(
                &master,
                args.profile.as_str(),
                &id,
                args.algorithm,
                args.generation,
            )
        }
        _ => {
            let source = Source {
                subject: "admin key",
                option: "key",
                value: args.key.as_ref(),
                stdin: args.key_stdin,
                file: args.key_file.as_deref(),
            };
            if !source.given() && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Failure::usage(
                    "admin key",
                    "give --key, --key-stdin, --key-file, or --master-secret-file with --identity",
                ));
            }
            let hex = source.get()?;
            AdminKey::from_hex(args.algorithm, &hex)
                .map_err(|e| Failure::usage(&format!("admin key ({})", args.algorithm), e))?
        }
    };
    let challenge =
        hex::parse(&args.challenge.join(" ")).map_err(|e| Failure::usage("challenge", e))?;
    let response = compute(&key, &challenge)
        .map_err(|e| Failure::new(Kind::Usage, format!("challenge: {e}")))?;
    #[derive(serde::Serialize)]
    struct Response {
        response: String,
    }
    let grouped = hex::grouped(&response);
    crate::terminal::print_ok(
        args.json,
        Response {
            response: grouped.clone(),
        },
        &format!("Response: {grouped}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_vector_as_an_operator_types_it() {
        let key = AdminKey::piv_default();
        let challenge = hex::parse("D4BD 9B1D A5D2 6CDA").unwrap();
        assert_eq!(
            hex::grouped(&compute(&key, &challenge).unwrap()),
            "B5A8 5C0F 0207 FCF1"
        );
        assert!(compute(&key, &[0; 16]).is_err());
        assert_eq!(parse_algorithm("AES-192"), Ok(Algorithm::Aes192));
        assert_eq!(parse_algorithm("tdes"), Ok(Algorithm::TripleDes));
        assert!(parse_algorithm("des").is_err());
    }
}
