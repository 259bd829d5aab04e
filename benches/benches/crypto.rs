//! One admin-key block operation through `AdminKey::encrypt_ecb`, which keys the cipher afresh
//! on every call (nothing keyed outlives the call), next to the same block through a cipher keyed
//! once: the difference is the key schedule.

mod common;

use std::hint::black_box;

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cipher::{BlockEncrypt, KeyInit};
use criterion::{criterion_group, criterion_main, Criterion};

fn admin_key(crit: &mut Criterion) {
    let keys = [
        ("3des_8B_block", AdminKey::piv_default()),
        (
            "aes128_16B_block",
            AdminKey::from_hex(Algorithm::Aes128, "11223344556677881122334455667788").unwrap(),
        ),
        (
            "aes192_16B_block",
            AdminKey::new(Algorithm::Aes192, &cardunlock_core::crypto::PIV_DEFAULT_KEY).unwrap(),
        ),
        (
            "aes256_16B_block",
            AdminKey::from_hex(
                Algorithm::Aes256,
                "1122334455667788112233445566778811223344556677881122334455667788",
            )
            .unwrap(),
        ),
    ];
    for (name, key) in &keys {
        let mut group = crit.benchmark_group(format!("crypto/{name}"));
        let len = key.algorithm().block_len();
        let mut block = [0u8; 16];
        group.bench_function("cardunlock_encrypt_ecb", |b| {
            b.iter(|| {
                let block = &mut black_box(&mut block)[..len];
                key.encrypt_ecb(block).unwrap();
            })
        });
        match key.algorithm() {
            Algorithm::TripleDes => {
                let cipher = des::TdesEde3::new_from_slice(key.expose_bytes()).unwrap();
                group.bench_function("prekeyed_block_floor", |b| {
                    b.iter(|| {
                        let block = &mut black_box(&mut block)[..8];
                        cipher.encrypt_block(block.into());
                    })
                });
            }
            Algorithm::Aes128 => {
                let cipher = aes::Aes128::new_from_slice(key.expose_bytes()).unwrap();
                group.bench_function("prekeyed_block_floor", |b| {
                    b.iter(|| cipher.encrypt_block(black_box(&mut block).into()))
                });
            }
            Algorithm::Aes192 => {
                let cipher = aes::Aes192::new_from_slice(key.expose_bytes()).unwrap();
                group.bench_function("prekeyed_block_floor", |b| {
                    b.iter(|| cipher.encrypt_block(black_box(&mut block).into()))
                });
            }
            Algorithm::Aes256 => {
                let cipher = aes::Aes256::new_from_slice(key.expose_bytes()).unwrap();
                group.bench_function("prekeyed_block_floor", |b| {
                    b.iter(|| cipher.encrypt_block(black_box(&mut block).into()))
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = admin_key
}
criterion_main!(benches);
