//! `cardunlock enroll`: the enrollment station. The operator (role `enroller`) signs in; the
//! server hands out the card's secrets; the card in the reader is personalised with them; the
//! server records the card, its holder and the security questions once told it worked.

use std::path::PathBuf;

use cardunlock_client::enroll::{self, Factory, Holder};
use cardunlock_client::Failure;
use cardunlock_core::crypto::Algorithm;
use cardunlock_protocol::operator::QuestionAnswer;
use cardunlock_protocol::{Secret, User};
use zeroize::Zeroizing;

use super::{Session, SignInArgs};
use crate::secrets::{one_stdin, SecretArg, Source};

#[derive(clap::Args, Debug)]
pub struct EnrollArgs {
    #[command(flatten)]
    card: crate::card::CardArgs,
    #[command(flatten)]
    sign_in: SignInArgs,
    /// The user's name.
    #[arg(long)]
    name: String,
    /// The user's email.
    #[arg(long)]
    email: String,
    /// A security question (repeat; the answers follow in the same order).
    #[arg(long = "question")]
    questions: Vec<String>,
    /// The answer to the question at the same position (visible to other users of this
    /// machine: prefer --answers-stdin or --answers-file). Asked hidden when absent.
    #[arg(long = "answer", value_name = "ANSWER")]
    answers: Vec<SecretArg>,
    /// Read the answers from standard input, one per line, in question order.
    #[arg(long, conflicts_with_all = ["answers", "answers_file"])]
    answers_stdin: bool,
    /// Read the answers from a file only its owner can read, one per line (`-`: standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "answers")]
    answers_file: Option<PathBuf>,
    /// The PUK of a card the server never enrolled (the factory's), replaced by the server's.
    #[arg(long, default_value = cardunlock_client::enroll::FACTORY_PUK)]
    factory_puk: SecretArg,
    /// Read the factory PUK from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    factory_puk_file: Option<PathBuf>,
    /// The admin / management key of a card the server never enrolled (hex); its algorithm
    /// is read from the card where it says (YubiKey metadata), else --algorithm, else 3DES.
    #[arg(long, default_value = cardunlock_client::enroll::FACTORY_ADMIN_KEY_HEX)]
    factory_admin_key: SecretArg,
    /// Read the factory admin key (hex) from a file only its owner can read (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    factory_admin_key_file: Option<PathBuf>,
    /// Admin key algorithm, for ISO admin cards (which do not report it) or to override the card.
    #[arg(long, value_parser = cardunlock_client::iso_profiles::parse_named_algorithm)]
    algorithm: Option<Algorithm>,
}

impl EnrollArgs {
    /// The card options.
    pub fn card_mut(&mut self) -> &mut crate::card::CardArgs {
        &mut self.card
    }
}

pub fn run(args: &EnrollArgs) -> Result<(), Failure> {
    let answers_src = Source {
        subject: "answers",
        option: "answers",
        value: None,
        stdin: args.answers_stdin,
        file: args.answers_file.as_deref(),
    };
    // A default value counts as not given: only an explicit file replaces it.
    let puk_src = Source {
        subject: "factory PUK",
        option: "factory-puk",
        value: if args.factory_puk_file.is_some() {
            None
        } else {
            Some(&args.factory_puk)
        },
        stdin: false,
        file: args.factory_puk_file.as_deref(),
    };
    let key_src = Source {
        subject: "factory admin key",
        option: "factory-admin-key",
        value: if args.factory_admin_key_file.is_some() {
            None
        } else {
            Some(&args.factory_admin_key)
        },
        stdin: false,
        file: args.factory_admin_key_file.as_deref(),
    };
    let password_src = args.sign_in.password_source();
    one_stdin(&[&answers_src, &puk_src, &key_src, &password_src])?;
    let answers: Vec<Zeroizing<String>> = if !args.answers.is_empty() {
        args.answers
            .iter()
            .map(|a| Zeroizing::new(a.expose().to_string()))
            .collect()
    } else if let Some(lines) = answers_src.lines()? {
        lines
    } else {
        let mut typed = Vec::with_capacity(args.questions.len());
        for q in &args.questions {
            typed.push(
                crate::terminal::hidden(&format!("Answer to {q:?}"))
                    .map_err(|f| Failure::new(f.kind, format!("answers: {}", f.message)))?,
            );
        }
        typed
    };
    if args.questions.len() != answers.len() {
        return Err(Failure::usage(
            "answers",
            format!(
                "{} questions and {} answers: give one answer per --question, in order",
                args.questions.len(),
                answers.len()
            ),
        ));
    }
    let factory = Factory {
        puk: puk_src.get()?,
        admin_key_hex: key_src.get()?,
        algorithm: args.algorithm,
    };
    let holder = Holder {
        user: User {
            name: args.name.clone(),
            email: args.email.clone(),
        },
        questions: args
            .questions
            .iter()
            .zip(&answers)
            .map(|(q, a)| QuestionAnswer {
                question: q.clone(),
                answer: Secret::new(a.as_str()),
            })
            .collect(),
    };
    let profiles = args.card.iso_profiles()?;
    let session = Session::open(&args.sign_in)?;
    // Reset at the end: drop the admin authentication the personalisation established.
    let card = crate::card::Card::connect(&args.card);
    let enrolled = card.and_then(|mut card| {
        card.run(crate::card::End::Reset, |driver| {
            let status = crate::card::read_status(driver, &profiles, args.algorithm)
                .map_err(|f| f.about("card"))?;
            let iso = status.iso_profile.and_then(|i| profiles.entries().get(i));
            // ISO: --algorithm, else the profile's, else 3DES.
            let algorithm = iso.map_or(Algorithm::TripleDes, |e| {
                e.profile(args.algorithm, None).algorithm
            });
            let enrolled = enroll::enroll(
                session.operator(),
                driver,
                &status,
                iso,
                algorithm,
                holder,
                &factory,
            )?;
            Ok::<_, Failure>((status.profile, enrolled))
        })?
    });
    let (profile, enrolled) = session.finish(enrolled)?;
    println!(
        "Enrolled {} <{}>: {} card {}, {} security question(s){}.",
        args.name,
        args.email,
        profile.name().to_uppercase(),
        enrolled.card.identity,
        args.questions.len(),
        if enrolled.re_enrolled {
            " (re-enrolled: the card's previous secrets were replaced)"
        } else {
            ""
        }
    );
    Ok(())
}
