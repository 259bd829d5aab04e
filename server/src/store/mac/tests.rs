use super::*;

fn row(values: Vec<Val>) -> MacRow {
    MacRow { values, mac: None }
}

#[test]
fn the_mac_binds_table_key_and_every_column() {
    let key = [7u8; 32];
    let a = vec![
        Val::text("piv"),
        Val::text("01"),
        Val::Int(0),
        Val::text("q"),
        Val::text("h"),
    ];
    let base = row_mac(&key, &QUESTIONS, &a);
    let mut other_position = a.clone();
    other_position[2] = Val::Int(1);
    assert_ne!(base, row_mac(&key, &QUESTIONS, &other_position));
    let mut other_hash = a.clone();
    other_hash[4] = Val::text("h2");
    assert_ne!(base, row_mac(&key, &QUESTIONS, &other_hash));
    assert_ne!(base, row_mac(&[8u8; 32], &QUESTIONS, &a));
    // Length prefixes: moving a byte between neighbouring texts changes the MAC.
    let mut shifted = a.clone();
    shifted[3] = Val::text("qh");
    shifted[4] = Val::text("");
    assert_ne!(base, row_mac(&key, &QUESTIONS, &shifted));
    let mut ok = row(a);
    ok.mac = Some(base.to_vec());
    assert!(row_ok(&key, &QUESTIONS, &ok));
    assert!(!row_ok(&key, &QUESTIONS, &row(other_hash)));
}

#[test]
fn defaults_are_left_out_but_null_and_zero_differ_where_it_matters() {
    let key = [1u8; 32];
    let mut card = vec![
        Val::text("piv"),
        Val::text("01"),
        Val::text("3des"),
        Val::text("n"),
        Val::text("e"),
        Val::Int(0),
        Val::Int(0),
        Val::Null,
        Val::Int(0),
        Val::Int(0),
        Val::Int(5),
        Val::Null,
        Val::Int(0),
    ];
    // A column not declared (added later) does not change the MAC of rows at its default.
    let short = row_mac(&key, &CARDS, &card[..12]);
    assert_eq!(short, row_mac(&key, &CARDS, &card));
    let base = row_mac(&key, &CARDS, &card);
    card[7] = Val::Int(0); // pending_puk_gen NULL -> Some(0)
    assert_ne!(base, row_mac(&key, &CARDS, &card));
}

/// Sample values for every column of `table`, fixed and distinct per column.
fn sample(table: &Table) -> Vec<Val> {
    table
        .all()
        .enumerate()
        .map(|(i, c)| match c.kind {
            Kind::Int | Kind::Real => Val::Int(1000 + i as i64),
            Kind::Bool => Val::Int(1),
            Kind::Text => Val::Text(format!("{}-{i}", c.name)),
            Kind::Blob => Val::Blob(vec![i as u8; 3]),
        })
        .collect()
}

/// Pins the bytes of every table's row MAC (name, column names, order, omission rules and the
/// encoding): stores written before must still verify. Fails if any table's declaration or
/// [`row_mac`]'s encoding changes by a byte.
#[test]
fn row_macs_are_pinned() {
    let key = [0x5au8; 32];
    let got: Vec<String> = TABLES
        .iter()
        .map(|t| format!("{} {}", t.name, hex::encode(row_mac(&key, t, &sample(t)))))
        .collect();
    let mut defaults = sample(&CARDS);
    for (value, col) in defaults.iter_mut().zip(CARDS.all()) {
        match col.omit {
            Omit::Null => *value = Val::Null,
            Omit::Zero => *value = Val::Int(0),
            Omit::Never => {}
        }
    }
    let at_defaults = hex::encode(row_mac(&key, &CARDS, &defaults));
    assert_eq!(got.join("\n"), PINNED.trim());
    assert_eq!(at_defaults, PINNED_CARD_DEFAULTS);
}

const PINNED: &str = "
cards 50c60dfaef5eae647b2d4e0b5b0fde060079b3b4dafc4560f2f9b7603fce6415
questions 599cc6ef6d4184de8fc0ee3d70cddfb89d0c41536b590bdb78192afd20cc3563
puk_denied b5ab772e9c528f3aecf68883804cf284c7cde1376ba50550f2185aa7b56479f7
sessions 18856704b19782e313f20e2368a5138cfbe76f6c968f371576b5899afedfdc50
used_challenges 2df158949e78d0cdaeec584f743a332fd983d31a6a74c7c999aece8f1bb06129
operators 10c63e9c2130b4902d8597416eca0d722abff0742446c2e22858a9439d0cc504
operator_sessions 6518761362ffad327391f8a3af499f02631d75e53d7000c6f796c7a472093c54
sign_in_failures bd8e1dbc422939bdc599cb6b15c775406deab85a982b6d72db176531a199caa7
operator_daily e6a78f611244ad011ed1d3c83bd05027d6919990741efe0b78fa80913864da55
enrollments ed702ac38dc58b6a5b1825c28b8b976d42afb08777a041add0260d68ead1d8b2
puk_readouts 49b03b34d7adcc4b8cfba0266a07775bedbfcffb226b85e86fad0902522d146e
card_buckets 9e9b32657fd709d04a2e72de3b9f59701c287bdd23e0b615379d0c2031cc9cac
card_daily 2b7ef91f713feb13558d57a7e5438f6cf273be619525cd6b25bbdfc43839ba6c
card_diverged b42d1409e4be5938a5e2a403b4b5e107b3eacba4991369c1ded51911e319ea10
released_puks 081bdc2a0cba5598cc99020b68720d05cd2bf16654f124f48d43cee5649e60d2
";
const PINNED_CARD_DEFAULTS: &str =
    "c88940abd5a1e42a2304fba0b3b8c3aae063bb115cd345b94e8d8a26ca12e0ef";
