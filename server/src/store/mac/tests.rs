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
