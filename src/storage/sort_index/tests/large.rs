//! Real page sizes and many entries: the O(log n + k) read cost of a Limit-10 range on a
//! 200,000-entry partition, and readers and writers racing on one partition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

const BIG: u64 = 200_000;

/// Spreads 0..n over 0..n in a scattered order (multiplication by a unit mod n).
fn scatter(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(7_919) + 13) % n
}

/// Page reads of one Limit-10 range, and checks it returns what `want` says.
fn reads_of(st: &CountingStore, c: &TestCrypto, q: &RangeQuery, want: &[u64]) -> usize {
    st.take_gets();
    let got = range(st, c, &PART, q).unwrap();
    let n = st.take_gets();
    let keys: Vec<AttributeValue> = got.into_iter().map(|e| e.sort_key).collect();
    let want: Vec<AttributeValue> = want.iter().map(|i| num(&i.to_string())).collect();
    assert_eq!(keys, want);
    n
}

#[test]
fn limit_10_on_200k_entries_reads_a_handful_of_pages() {
    let st = CountingStore::default();
    let c = TestCrypto::new();
    // Three quarters appended in ascending order (the time-series case), 100 entries per plan
    // as a bulk load would; then a quarter inserted scattered between them, one plan and
    // commit per entry as PutItem will do.
    const SCATTERED: u64 = BIG / 4;
    let seq: Vec<u64> = (0..BIG).filter(|k| k % 4 != 1).collect();
    let appended: Vec<Entry> = seq
        .iter()
        .map(|&k| entry(num(&k.to_string()), token(k), 1))
        .collect();
    for chunk in appended.chunks(100) {
        let changes: Vec<Change> = chunk.iter().map(Change::Upsert).collect();
        apply(&st, &c, &PART, &changes);
    }
    for i in 0..SCATTERED {
        let k = 4 * scatter(i, SCATTERED) + 1;
        let e = entry(num(&k.to_string()), token(k), 1);
        apply(&st, &c, &PART, &[Change::Upsert(&e)]);
    }
    let (height, entries) = check_tree(&st, &c, &PART);
    assert_eq!(entries.len() as u64, BIG);
    // ~3,000 leaves under a fan-out of ~100: root, one inner level, leaves.
    assert!(height <= 4, "height {height}");

    // A small partition for comparison.
    let small_prefix = [1u8; 33];
    let small = PartitionRef {
        prefix: &small_prefix,
    };
    for i in 0..100u64 {
        let e = entry(num(&i.to_string()), token(i), 1);
        apply(&st, &c, &small, &[Change::Upsert(&e)]);
    }
    st.take_gets();
    let q = RangeQuery {
        limit: 10,
        ..RangeQuery::default()
    };
    assert_eq!(range(&st, &c, &small, &q).unwrap().len(), 10);
    let small_reads = st.take_gets();
    assert!(small_reads <= 2, "{small_reads}");

    let lo = num("100000");
    let hi = num("100004");
    let after = num("150001");
    let after_tok = token(150_001);
    let cases: Vec<(RangeQuery, Vec<u64>)> = vec![
        (q, (0..10).collect()),
        (
            RangeQuery { reverse: true, ..q },
            (BIG - 10..BIG).rev().collect(),
        ),
        (
            RangeQuery {
                lower: Bound::Excluded(&lo),
                ..q
            },
            (100_001..100_011).collect(),
        ),
        (
            RangeQuery {
                upper: Bound::Included(&hi),
                lower: Bound::Included(&lo),
                reverse: true,
                ..q
            },
            (100_000..=100_004).rev().collect(),
        ),
        (
            RangeQuery {
                start_after: Some(Position {
                    sort_key: &after,
                    item_token: &after_tok,
                }),
                ..q
            },
            (150_002..150_012).collect(),
        ),
        (
            RangeQuery {
                start_after: Some(Position {
                    sort_key: &after,
                    item_token: &after_tok,
                }),
                reverse: true,
                ..q
            },
            (149_991..150_001).rev().collect(),
        ),
    ];
    for (q, want) in &cases {
        let n = reads_of(&st, &c, q, want);
        // One path down, plus at most one neighbour leaf when the ten straddle two leaves.
        assert!(
            n <= height + 1,
            "{n} page reads at height {height} for {q:?}"
        );
    }

    // Shrinking back to 1,000 scattered survivors: first 20,000 scattered removals, 20 per plan
    // (a BatchWriteItem's worth), then the rest in key order, 200 per plan (a range delete).
    // Pages left under-full merge, so the survivors end up dense again in fewer levels.
    let by_scatter: Vec<u64> = (0..BIG - 1_000).map(|i| scatter(i, BIG)).collect();
    let (first, rest) = by_scatter.split_at(20_000);
    let mut rest = rest.to_vec();
    rest.sort_unstable();
    for (chunk_len, keys) in [(20, first), (200, rest.as_slice())] {
        let gone: Vec<(AttributeValue, Token)> = keys
            .iter()
            .map(|&k| (num(&k.to_string()), token(k)))
            .collect();
        for chunk in gone.chunks(chunk_len) {
            let changes: Vec<Change> = chunk
                .iter()
                .map(|(sk, t)| {
                    Change::Remove(Position {
                        sort_key: sk,
                        item_token: t,
                    })
                })
                .collect();
            apply(&st, &c, &PART, &changes);
        }
    }
    let (h2, rest) = check_tree(&st, &c, &PART);
    assert_eq!(rest.len(), 1_000);
    assert!(h2 < height, "height {height} -> {h2}");
    let mut left: Vec<u64> = (BIG - 1_000..BIG).map(|i| scatter(i, BIG)).collect();
    left.sort_unstable();
    let n = reads_of(&st, &c, &q, &left[..10]);
    // Merged leaves: the ten survivors sit in one or two leaves, not ten.
    assert!(n <= h2 + 1, "{n} reads at height {h2}");
}

/// Readers walk the partition while writers split and empty leaves under them: every read
/// must be strictly ordered, and must contain every entry that existed throughout.
#[test]
fn readers_race_writers() {
    let st = Arc::new(MemStore::new());
    let c = Arc::new(TestCrypto::new());
    const STABLE: u64 = 400;
    with_split_bytes(200, || {
        for i in 0..STABLE {
            let k = i * 4;
            let e = entry(num(&k.to_string()), token(k), 1);
            apply(&*st, &*c, &PART, &[Change::Upsert(&e)]);
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (st, c, stop) = (Arc::clone(&st), Arc::clone(&c), Arc::clone(&stop));
            std::thread::spawn(move || {
                with_split_bytes(200, || {
                    let mut round = 0u64;
                    while !stop.load(Ordering::SeqCst) && round < 40 {
                        // Fill the gaps of this writer's residue class, then empty them again.
                        for i in 0..STABLE {
                            let k = i * 4 + 1 + w;
                            let e = entry(num(&k.to_string()), token(k), round);
                            apply(&*st, &*c, &PART, &[Change::Upsert(&e)]);
                        }
                        for i in 0..STABLE {
                            let k = i * 4 + 1 + w;
                            let pos = Position {
                                sort_key: &num(&k.to_string()),
                                item_token: &token(k),
                            };
                            apply(&*st, &*c, &PART, &[Change::Remove(pos)]);
                        }
                        round += 1;
                    }
                })
            })
        })
        .collect();
    let stable: Vec<AttributeValue> = (0..STABLE).map(|i| num(&(i * 4).to_string())).collect();
    for n in 0..300 {
        let reverse = n % 2 == 1;
        let got = range(
            &*st,
            &*c,
            &PART,
            &RangeQuery {
                reverse,
                ..RangeQuery::default()
            },
        )
        .unwrap();
        let mut keys: Vec<AttributeValue> = got.into_iter().map(|e| e.sort_key).collect();
        if reverse {
            keys.reverse();
        }
        let ks: Vec<Number> = keys
            .iter()
            .map(|k| match k {
                AttributeValue::N(n) => *n,
                _ => unreachable!(),
            })
            .collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]), "out of order");
        let seen: Vec<&AttributeValue> = keys.iter().filter(|k| stable.contains(k)).collect();
        assert_eq!(seen.len(), stable.len(), "a stable entry went missing");
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    // Each writer emptied what it filled, through plans that raced each other on the same
    // pages: no lost update may leave an entry behind or take a stable one away.
    let (_, left) = check_tree(&*st, &*c, &PART);
    let left: Vec<AttributeValue> = left.into_iter().map(|(k, _)| k.sk.to_attr()).collect();
    assert_eq!(left, stable);
}
