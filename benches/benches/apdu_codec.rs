//! APDU encoding and response parsing: `cardunlock-core` against `iso7816` 0.2 and siketyan's
//! `apdu` 0.4 (its `Command` / `Response`, re-exported from `apdu-core`), with a plain copy of the encoded bytes as the
//! floor. Every encoder builds the command and writes it into a stack buffer; the library tests
//! check that they all write the same bytes.

mod common;

use std::hint::black_box;

use cardunlock_benches::{
    chuid_answer, encoded, put_data, put_data_payload, reset_retry_counter, select_piv, RRC_DATA,
};
use cardunlock_core::{piv, tlv, Command, Response};
use criterion::{criterion_group, criterion_main, Criterion};
use iso7816::command::class::Class;
use iso7816::command::CommandBuilder;

/// One command for every encoder: header, data, Ne (0 = no Le).
struct Case {
    name: &'static str,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'static [u8],
    le: u16,
    /// `apdu` encodes extended lengths wrongly: benchmark it on short APDUs only.
    apdu: bool,
}

fn ours(c: &Case, buf: &mut [u8]) -> usize {
    Command::new(0x00, c.ins, c.p1, c.p2)
        .with_data(c.data)
        .with_le(usize::from(c.le))
        .encode(buf)
        .unwrap()
}

fn iso7816(c: &Case, buf: &mut [u8]) -> usize {
    let class = Class::from_byte(0x00).unwrap();
    let builder = CommandBuilder::new(class, c.ins.into(), c.p1, c.p2, c.data, c.le);
    let total = buf.len();
    let mut w: &mut [u8] = buf;
    builder.serialize_into(&mut w).unwrap();
    total - w.len()
}

fn apdu_crate(c: &Case, buf: &mut [u8]) -> usize {
    let cmd = match c.le {
        0 => apdu::Command::new_with_payload(0x00, c.ins, c.p1, c.p2, c.data),
        le => apdu::Command::new_with_payload_le(0x00, c.ins, c.p1, c.p2, le, c.data),
    };
    cmd.write(buf);
    cmd.len()
}

/// Every encoder must write the reference bytes before it is timed.
fn check(encoder: fn(&Case, &mut [u8]) -> usize, case: &Case, reference: &[u8]) {
    let mut buf = [0u8; 1100];
    let n = encoder(case, &mut buf);
    assert_eq!(&buf[..n], reference, "{}", case.name);
}

fn encode(crit: &mut Criterion) {
    let payload: &'static [u8] = Box::leak(Box::new(put_data_payload()));
    let cases = [
        Case {
            name: "select_piv_15B",
            ins: 0xA4,
            p1: 0x04,
            p2: 0x00,
            data: &piv::AID,
            le: 256,
            apdu: true,
        },
        Case {
            name: "reset_retry_counter_21B",
            ins: 0x2C,
            p1: 0x00,
            p2: 0x80,
            data: &RRC_DATA,
            le: 0,
            apdu: true,
        },
        Case {
            name: "put_data_extended_1007B",
            ins: 0xDB,
            p1: 0x3F,
            p2: 0xFF,
            data: payload,
            le: 0,
            apdu: false,
        },
    ];
    let references = [
        encoded(&select_piv()),
        encoded(&reset_retry_counter()),
        encoded(&put_data(payload)),
    ];

    for (case, reference) in cases.iter().zip(&references) {
        let mut group = crit.benchmark_group(format!("encode/{}", case.name));
        let mut buf = [0u8; 1100];
        check(ours, case, reference);
        group.bench_function("cardunlock", |b| {
            b.iter(|| ours(black_box(case), black_box(&mut buf)))
        });
        check(iso7816, case, reference);
        group.bench_function("iso7816", |b| {
            b.iter(|| iso7816(black_box(case), black_box(&mut buf)))
        });
        // The same with the builder made once outside the timed loop: what serialize_into costs.
        let builder = CommandBuilder::new(
            Class::from_byte(0x00).unwrap(),
            case.ins.into(),
            case.p1,
            case.p2,
            case.data,
            case.le,
        );
        group.bench_function("iso7816_prebuilt", |b| {
            b.iter(|| {
                let buf = black_box(&mut buf);
                let total = buf.len();
                let mut w: &mut [u8] = buf;
                black_box(&builder).serialize_into(&mut w).unwrap();
                total - w.len()
            })
        });
        if case.apdu {
            check(apdu_crate, case, reference);
            group.bench_function("apdu", |b| {
                b.iter(|| apdu_crate(black_box(case), black_box(&mut buf)))
            });
        }
        group.bench_function("copy_floor", |b| {
            b.iter(|| {
                let src: &[u8] = black_box(reference);
                let dst = &mut black_box(&mut buf)[..src.len()];
                dst.copy_from_slice(src);
                src.len()
            })
        });
        group.finish();
    }
}

fn parse(crit: &mut Criterion) {
    let answer = chuid_answer();
    let data = &answer[..answer.len() - 2];

    // Splitting a response: ours decodes the status word into a `Status`, `apdu` keeps it raw;
    // the floor is the bare split with the length check and no decoding.
    let wrong_puk: &[u8] = &[0x63, 0xC2];
    for (name, bytes) in [
        ("parse/chuid_response_63B", answer.as_slice()),
        ("parse/wrong_puk_response_2B", wrong_puk),
    ] {
        let ours = Response::parse(bytes).unwrap();
        let theirs = apdu::Response::from(bytes);
        assert_eq!(ours.data, theirs.payload);
        assert_eq!(
            ours.status.to_u16().to_be_bytes(),
            [theirs.trailer.0, theirs.trailer.1]
        );
        let mut group = crit.benchmark_group(name);
        group.bench_function("cardunlock", |b| {
            b.iter(|| Response::parse(black_box(bytes)).unwrap())
        });
        group.bench_function("apdu", |b| {
            b.iter(|| apdu::Response::from(black_box(bytes)))
        });
        group.bench_function("split_floor", |b| {
            b.iter(|| black_box(bytes).split_last_chunk::<2>().unwrap())
        });
        group.finish();
    }

    let mut group = crit.benchmark_group("parse/chuid_find_guid_tag34");
    group.bench_function("cardunlock", |b| {
        b.iter(|| {
            let chuid = tlv::find(black_box(data), 0x53).unwrap().unwrap();
            tlv::find(chuid, 0x34).unwrap().unwrap()
        })
    });
    let path = [
        iso7816::tlv::Tag::from(0x53u8),
        iso7816::tlv::Tag::from(0x34u8),
    ];
    group.bench_function("iso7816", |b| {
        b.iter(|| iso7816::tlv::get_data_object(black_box(&path), black_box(data)).unwrap())
    });
    group.finish();

    let mut group = crit.benchmark_group("parse/chuid_response_and_guid");
    group.bench_function("cardunlock", |b| {
        b.iter(|| {
            let response = Response::parse(black_box(&answer)).unwrap();
            let chuid = tlv::find(response.data, 0x53).unwrap().unwrap();
            tlv::find(chuid, 0x34).unwrap().unwrap()
        })
    });
    group.finish();
}

/// Parsing a command APDU into a borrowed view (what a card or a CCID reader does with every
/// command): ours against iso7816's `CommandView` (`apdu` has no command parser).
fn parse_command(crit: &mut Criterion) {
    let payload = put_data_payload();
    for (name, bytes) in [
        ("parse_command/select_piv_15B", encoded(&select_piv())),
        (
            "parse_command/reset_retry_counter_21B",
            encoded(&reset_retry_counter()),
        ),
        (
            "parse_command/put_data_extended_1007B",
            encoded(&put_data(&payload)),
        ),
    ] {
        let ours = Command::parse(&bytes).unwrap();
        let theirs = iso7816::command::CommandView::try_from(bytes.as_slice()).unwrap();
        assert_eq!(ours.data, theirs.data(), "{name}");
        assert_eq!(ours.le, theirs.expected(), "{name}");
        let mut group = crit.benchmark_group(name);
        group.bench_function("cardunlock", |b| {
            b.iter(|| Command::parse(black_box(&bytes)).unwrap())
        });
        group.bench_function("iso7816", |b| {
            b.iter(|| iso7816::command::CommandView::try_from(black_box(bytes.as_slice())).unwrap())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = encode, parse, parse_command
}
criterion_main!(benches);
