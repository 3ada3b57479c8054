//! The index against a plaintext reference model (a BTreeMap): random batches of upserts and
//! removes over S, N or B sort keys (unicode, byte edge cases, numbers across magnitudes and
//! signs, tokens shared between keys as in a secondary index), with pages small enough that a
//! few dozen entries make a deep tree; then random ranges in both directions with limits,
//! ExclusiveStartKey paging and begins_with must return exactly what the model says, and the
//! tree must satisfy every structural invariant after each batch.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

#[derive(Clone, Copy, Debug)]
enum Kind {
    S,
    N,
    B,
}

fn sort_key(kind: Kind) -> BoxedStrategy<AttributeValue> {
    match kind {
        Kind::S => {
            let chars = vec![
                'a',
                'b',
                'z',
                '\u{0}',
                '\u{7f}',
                '\u{80}',
                'é',
                '日',
                '\u{D7FF}',
                '\u{E000}',
                '\u{FFFF}',
                '\u{10000}',
                '\u{10FFFF}',
            ];
            proptest::collection::vec(proptest::sample::select(chars), 0..5)
                .prop_map(|v| AttributeValue::S(v.into_iter().collect()))
                .boxed()
        }
        Kind::B => {
            let bytes = vec![0x00u8, 0x01, 0x7f, 0x80, 0xfe, 0xff];
            proptest::collection::vec(proptest::sample::select(bytes), 0..5)
                .prop_map(AttributeValue::B)
                .boxed()
        }
        Kind::N => {
            let edges = vec![
                "0",
                "1",
                "-1",
                "0.1",
                "-0.1",
                "1E+125",
                "-1E+125",
                "9.9999999999999999999999999999999999999E+125",
                "-9.9999999999999999999999999999999999999E+125",
                "1E-130",
                "-1E-130",
                "12345678901234567890123456789012345678",
                "1.2345678901234567890123456789012345678",
                "100",
                "1E+2",
            ];
            prop_oneof![
                proptest::sample::select(edges).prop_map(String::from),
                (-999i64..=999, -130i32..=120).prop_map(|(m, e)| format!("{m}E{e}")),
                any::<i64>().prop_map(|v| v.to_string()),
                (-50i64..50).prop_map(|v| v.to_string()),
            ]
            .prop_filter_map("out of range", |t| {
                t.parse::<Number>().ok().map(AttributeValue::N)
            })
            .boxed()
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(AttributeValue, u64, u64),
    /// Removes an entry the model holds (picked at run time), or nothing if it is empty.
    RemoveExisting(Index),
    RemoveAny(AttributeValue, u64),
}

#[derive(Clone, Debug)]
enum Pos {
    None,
    Existing(Index),
    Any(AttributeValue, u64),
}

#[derive(Clone, Debug)]
enum B {
    Unbounded,
    Included(Pos),
    Excluded(Pos),
}

#[derive(Clone, Debug)]
struct Query {
    lower: B,
    upper: B,
    begins_with: Option<AttributeValue>,
    reverse: bool,
    start_after: Pos,
    limit: usize,
}

fn pos(kind: Kind) -> impl Strategy<Value = Pos> {
    prop_oneof![
        1 => Just(Pos::None),
        3 => any::<Index>().prop_map(Pos::Existing),
        2 => (sort_key(kind), 0u64..3).prop_map(|(k, t)| Pos::Any(k, t)),
    ]
}

fn bound(kind: Kind) -> impl Strategy<Value = B> {
    prop_oneof![
        2 => Just(B::Unbounded),
        2 => pos(kind).prop_map(B::Included),
        1 => pos(kind).prop_map(B::Excluded),
    ]
}

fn query(kind: Kind) -> impl Strategy<Value = Query> {
    let prefix = match kind {
        Kind::N => Just(None).boxed(),
        _ => proptest::option::weighted(0.3, sort_key(kind)).boxed(),
    };
    (
        bound(kind),
        bound(kind),
        prefix,
        any::<bool>(),
        pos(kind),
        1usize..12,
    )
        .prop_map(
            |(lower, upper, begins_with, reverse, start_after, limit)| Query {
                lower,
                upper,
                begins_with,
                reverse,
                start_after,
                limit,
            },
        )
}

fn op(kind: Kind) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (sort_key(kind), 0u64..3, 0u64..4).prop_map(|(k, t, s)| Op::Upsert(k, t, s)),
        3 => any::<Index>().prop_map(Op::RemoveExisting),
        1 => (sort_key(kind), 0u64..3).prop_map(|(k, t)| Op::RemoveAny(k, t)),
    ]
}

fn case() -> impl Strategy<Value = (Kind, usize, Vec<Vec<Op>>, Vec<Query>)> {
    prop_oneof![Just(Kind::S), Just(Kind::N), Just(Kind::B)].prop_flat_map(|kind| {
        (
            Just(kind),
            prop_oneof![Just(120usize), Just(300), Just(PAGE_SPLIT_BYTES)],
            proptest::collection::vec(proptest::collection::vec(op(kind), 1..4), 1..120),
            proptest::collection::vec(query(kind), 1..16),
        )
    })
}

/// The model's order, written out independently of the index's: type, then S/B as raw bytes
/// or N by `Number`'s order, then the token.
type MKey = (u8, Vec<u8>, Option<Number>, Token);

fn mkey(sk: &AttributeValue, t: &Token) -> MKey {
    match sk {
        AttributeValue::B(b) => (0, b.clone(), None, *t),
        AttributeValue::N(n) => (1, Vec::new(), Some(*n), *t),
        AttributeValue::S(s) => (2, s.as_bytes().to_vec(), None, *t),
        _ => unreachable!(),
    }
}

/// The sort-key part of a model key, for comparing against bounds.
fn msk(k: &MKey) -> (u8, &[u8], Option<Number>) {
    (k.0, &k.1, k.2)
}

type Model = BTreeMap<MKey, (AttributeValue, u64)>;

fn resolve(m: &Model, p: &Pos) -> Option<(AttributeValue, Token)> {
    match p {
        Pos::None => None,
        Pos::Existing(i) if m.is_empty() => None,
        Pos::Existing(i) => m
            .iter()
            .nth(i.index(m.len()))
            .map(|(k, v)| (v.0.clone(), k.3)),
        Pos::Any(sk, t) => Some((sk.clone(), token(*t))),
    }
}

fn run_query(
    st: &dyn Store,
    c: &dyn PageCrypto,
    m: &Model,
    q: &Query,
) -> Result<(), TestCaseError> {
    let res = |b: &B| -> Option<(bool, AttributeValue)> {
        match b {
            B::Unbounded => None,
            B::Included(p) => resolve(m, p).map(|(k, _)| (true, k)),
            B::Excluded(p) => resolve(m, p).map(|(k, _)| (false, k)),
        }
    };
    let (lo, hi) = (res(&q.lower), res(&q.upper));
    let start = resolve(m, &q.start_after);
    let prefix = q.begins_with.as_ref().map(|p| prefix_range(p).unwrap());
    // The model: filter every entry by the plain definitions.
    let mut want: Vec<Entry> = m
        .iter()
        .filter(|(k, (sk, _))| {
            let ks = msk(k);
            // begins_with combines with no other sort-key condition in DynamoDB.
            let (lo, hi) = if prefix.is_some() {
                (&None, &None)
            } else {
                (&lo, &hi)
            };
            let lo_ok = lo.as_ref().is_none_or(|(inc, b)| {
                let bk = mkey(b, &[0; 16]);
                if *inc {
                    ks >= msk(&bk)
                } else {
                    ks > msk(&bk)
                }
            });
            let hi_ok = hi.as_ref().is_none_or(|(inc, b)| {
                let bk = mkey(b, &[0; 16]);
                if *inc {
                    ks <= msk(&bk)
                } else {
                    ks < msk(&bk)
                }
            });
            let pre_ok = q.begins_with.as_ref().is_none_or(|p| match (p, sk) {
                (AttributeValue::S(p), AttributeValue::S(v)) => v.starts_with(p.as_str()),
                (AttributeValue::B(p), AttributeValue::B(v)) => v.starts_with(p),
                _ => false,
            });
            let after_ok = start.as_ref().is_none_or(|(s, t)| {
                let sk = mkey(s, t);
                if q.reverse {
                    **k < sk
                } else {
                    **k > sk
                }
            });
            lo_ok && hi_ok && pre_ok && after_ok
        })
        .map(|(k, (sk, seq))| entry(sk.clone(), k.3, *seq))
        .collect();
    if q.reverse {
        want.reverse();
    }
    // The index, paging with the last entry of each page as the next ExclusiveStartKey.
    let mut got: Vec<Entry> = Vec::new();
    let mut cursor = start;
    loop {
        let (lower, upper) = match &prefix {
            // begins_with combines with no other sort-key condition in DynamoDB.
            Some(p) => (p.lower(), p.upper()),
            None => (
                match &lo {
                    None => Bound::Unbounded,
                    Some((true, b)) => Bound::Included(b),
                    Some((false, b)) => Bound::Excluded(b),
                },
                match &hi {
                    None => Bound::Unbounded,
                    Some((true, b)) => Bound::Included(b),
                    Some((false, b)) => Bound::Excluded(b),
                },
            ),
        };
        let rq = RangeQuery {
            lower,
            upper,
            reverse: q.reverse,
            start_after: cursor.as_ref().map(|(sk, t)| Position {
                sort_key: sk,
                item_token: t,
            }),
            limit: q.limit,
        };
        let page = range(st, c, &PART, &rq).unwrap();
        prop_assert!(page.len() <= q.limit);
        if got.is_empty() {
            let first: Vec<Entry> = want.iter().take(q.limit).cloned().collect();
            prop_assert_eq!(&page, &first, "first page of {:?}", q);
        }
        let n = page.len();
        got.extend(page);
        if n < q.limit {
            break;
        }
        cursor = got.last().map(|e| (e.sort_key.clone(), e.item_token));
        prop_assert!(got.len() <= want.len(), "paging past the end: {:?}", q);
    }
    prop_assert_eq!(got, want, "all pages of {:?}", q);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_a_btreemap((kind, split, batches, queries) in case()) {
        let _ = kind;
        let st = MemStore::new();
        let c = TestCrypto::new();
        let mut m = Model::new();
        with_split_bytes(split, || -> Result<(), TestCaseError> {
            for batch in &batches {
                // Resolve removals against the model as it evolves within the batch.
                let mut owned: Vec<(bool, Entry)> = Vec::new();
                for op in batch {
                    match op {
                        Op::Upsert(sk, t, seq) => {
                            let e = entry(sk.clone(), token(*t), *seq);
                            m.insert(mkey(sk, &e.item_token), (sk.clone(), *seq));
                            owned.push((true, e));
                        }
                        Op::RemoveExisting(i) => {
                            if m.is_empty() {
                                continue;
                            }
                            let k = m.keys().nth(i.index(m.len())).cloned().unwrap();
                            let (sk, _) = m.remove(&k).unwrap();
                            owned.push((false, entry(sk, k.3, 0)));
                        }
                        Op::RemoveAny(sk, t) => {
                            m.remove(&mkey(sk, &token(*t)));
                            owned.push((false, entry(sk.clone(), token(*t), 0)));
                        }
                    }
                }
                let changes: Vec<Change> = owned
                    .iter()
                    .map(|(up, e)| {
                        if *up {
                            Change::Upsert(e)
                        } else {
                            Change::Remove(Position { sort_key: &e.sort_key, item_token: &e.item_token })
                        }
                    })
                    .collect();
                apply(&st, &c, &PART, &changes);
                let (_, entries) = check_tree(&st, &c, &PART);
                prop_assert_eq!(entries.len(), m.len());
                for ((k, seq), (mk, (sk, mseq))) in entries.iter().zip(m.iter()) {
                    prop_assert_eq!(&k.sk.to_attr(), sk);
                    prop_assert_eq!(&k.token, &mk.3);
                    prop_assert_eq!(seq, mseq);
                }
            }
            for q in &queries {
                run_query(&st, &c, &m, q)?;
            }
            Ok(())
        })?;
    }
}
