//! Query against a plaintext reference model (a BTreeMap per partition): random partitions with
//! S, N and B sort keys (unicode and byte edge cases included, one partition of 20,000 items),
//! random key conditions in both directions, Limit and ExclusiveStartKey paging. The same
//! random queries run on the live server, after a flush + compaction, and after a restart.

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, ScalarAttributeType, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A sort key as the model orders it: S by UTF-8 bytes, N numerically, B as unsigned bytes.
#[derive(Clone, Debug)]
enum Sk {
    S(String),
    /// Numeric value (every generated number is exact in f64) and its wire text.
    N(f64, String),
    B(Vec<u8>),
}

impl PartialEq for Sk {
    fn eq(&self, o: &Sk) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Sk {}
impl PartialOrd for Sk {
    fn partial_cmp(&self, o: &Sk) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sk {
    fn cmp(&self, o: &Sk) -> Ordering {
        match (self, o) {
            (Sk::S(a), Sk::S(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Sk::N(a, _), Sk::N(b, _)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Sk::B(a), Sk::B(b)) => a.cmp(b),
            _ => panic!("mixed sort key types"),
        }
    }
}

impl Sk {
    fn av(&self) -> Av {
        match self {
            Sk::S(s) => Av::S(s.clone()),
            Sk::N(_, t) => Av::N(t.clone()),
            Sk::B(b) => Av::B(Blob::new(b.clone())),
        }
    }

    fn from_av(v: &Av) -> Sk {
        match v {
            Av::S(s) => Sk::S(s.clone()),
            Av::N(t) => Sk::N(t.parse().unwrap(), t.clone()),
            Av::B(b) => Sk::B(b.as_ref().to_vec()),
            other => panic!("not a sort key: {other:?}"),
        }
    }

    fn starts_with(&self, p: &Sk) -> bool {
        match (self, p) {
            (Sk::S(a), Sk::S(b)) => a.starts_with(b.as_str()),
            (Sk::B(a), Sk::B(b)) => a.starts_with(b),
            _ => false,
        }
    }
}

/// A small deterministic generator (the proptest case supplies the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const EDGE_S: &[&str] = &[
    "a",
    "a\u{0}",
    "\u{0}",
    "\u{1}",
    "\u{7f}",
    "\u{80}",
    "\u{7ff}",
    "\u{800}",
    "\u{D7FF}",
    "\u{E000}",
    "\u{FFFF}",
    "\u{10000}",
    "\u{10FFFF}",
    "\u{10FFFF}\u{10FFFF}",
    "é",
    "e\u{301}",
    "😀",
    "ab",
    "abc",
    "ab\u{10FFFF}",
    "Z",
    "z",
    " ",
];

fn random_s(r: &mut Rng) -> String {
    const ALPHA: &[char] = &[
        'a',
        'b',
        'c',
        'é',
        '😀',
        '\u{0}',
        '\u{10FFFF}',
        'Z',
        '~',
        '\u{FFFF}',
    ];
    let len = 1 + r.below(6);
    (0..len).map(|_| ALPHA[r.below(ALPHA.len())]).collect()
}

fn random_b(r: &mut Rng) -> Vec<u8> {
    const BYTES: &[u8] = &[0, 1, 0x7f, 0x80, 0xfe, 0xff, b'a'];
    let len = 1 + r.below(5);
    (0..len).map(|_| BYTES[r.below(BYTES.len())]).collect()
}

fn random_n(r: &mut Rng) -> Sk {
    match r.below(10) {
        0 => {
            let edges = ["1E+125", "-1E+125", "1E-130", "-1E-130", "0", "9.5", "-9.5"];
            let t = edges[r.below(edges.len())];
            Sk::N(t.parse().unwrap(), t.to_string())
        }
        1..=3 => {
            let v = r.below(2_000_000) as i64 - 1_000_000;
            let t = format!("{v}.5");
            Sk::N(t.parse().unwrap(), t)
        }
        _ => {
            let v = r.below(2_000_000) as i64 - 1_000_000;
            Sk::N(v as f64, v.to_string())
        }
    }
}

fn random_key(kind: ScalarAttributeType, r: &mut Rng) -> Sk {
    match kind {
        ScalarAttributeType::S => {
            if r.below(3) == 0 {
                Sk::S(EDGE_S[r.below(EDGE_S.len())].to_string())
            } else {
                Sk::S(random_s(r))
            }
        }
        ScalarAttributeType::B => Sk::B(random_b(r)),
        _ => random_n(r),
    }
}

type Partition = BTreeMap<Sk, u64>;

struct Model {
    /// (table, sort type, pk) -> partition
    parts: Vec<(String, ScalarAttributeType, String, Partition)>,
}

/// Loads a partition with transactions of up to 100 puts (one commit each).
async fn load(c: &Client, table: &str, pk: &str, part: &Partition) {
    let entries: Vec<(&Sk, &u64)> = part.iter().collect();
    for chunk in entries.chunks(100) {
        let mut b = c.transact_write_items();
        for (sk, v) in chunk {
            let item = HashMap::from([
                ("pk".to_string(), Av::S(pk.to_string())),
                ("sk".to_string(), sk.av()),
                ("v".to_string(), Av::N(v.to_string())),
            ]);
            b = b.transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(table)
                            .set_item(Some(item))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            );
        }
        b.send().await.unwrap();
    }
}

#[derive(Debug, Clone)]
enum Cond {
    All,
    Eq(Sk),
    Lt(Sk),
    Le(Sk),
    Gt(Sk),
    Ge(Sk),
    Between(Sk, Sk),
    BeginsWith(Sk),
}

impl Cond {
    fn matches(&self, k: &Sk) -> bool {
        match self {
            Cond::All => true,
            Cond::Eq(v) => k == v,
            Cond::Lt(v) => k < v,
            Cond::Le(v) => k <= v,
            Cond::Gt(v) => k > v,
            Cond::Ge(v) => k >= v,
            Cond::Between(a, b) => k >= a && k <= b,
            Cond::BeginsWith(p) => k.starts_with(p),
        }
    }

    fn expression(&self) -> (&'static str, Vec<Sk>) {
        match self {
            Cond::All => ("pk = :p", vec![]),
            Cond::Eq(v) => ("pk = :p AND sk = :a", vec![v.clone()]),
            Cond::Lt(v) => ("pk = :p AND sk < :a", vec![v.clone()]),
            Cond::Le(v) => ("pk = :p AND sk <= :a", vec![v.clone()]),
            Cond::Gt(v) => ("pk = :p AND :a < sk", vec![v.clone()]),
            Cond::Ge(v) => ("pk = :p AND sk >= :a", vec![v.clone()]),
            Cond::Between(a, b) => (
                "sk BETWEEN :a AND :b AND pk = :p",
                vec![a.clone(), b.clone()],
            ),
            Cond::BeginsWith(v) => ("pk = :p AND begins_with(sk, :a)", vec![v.clone()]),
        }
    }
}

/// A random case derived from `seed`.
struct Case {
    part: usize,
    cond: Cond,
    forward: bool,
    limit: Option<i32>,
    max_pages: usize,
}

fn make_case(model: &Model, seed: u64) -> Case {
    let mut r = Rng(seed | 1);
    let part = r.below(model.parts.len());
    let (_, kind, _, p) = &model.parts[part];
    let keys: Vec<&Sk> = p.keys().collect();
    let pick = |r: &mut Rng| -> Sk {
        if !keys.is_empty() && r.below(3) > 0 {
            keys[r.below(keys.len())].clone()
        } else {
            random_key(kind.clone(), r)
        }
    };
    let cond = match r.below(8) {
        0 => Cond::All,
        1 => Cond::Eq(pick(&mut r)),
        2 => Cond::Lt(pick(&mut r)),
        3 => Cond::Le(pick(&mut r)),
        4 => Cond::Gt(pick(&mut r)),
        5 => Cond::Ge(pick(&mut r)),
        6 => {
            let (a, b) = (pick(&mut r), pick(&mut r));
            if a <= b {
                Cond::Between(a, b)
            } else {
                Cond::Between(b, a)
            }
        }
        _ if *kind == ScalarAttributeType::N => Cond::Ge(pick(&mut r)),
        _ => {
            let full = pick(&mut r);
            let prefix = match full {
                Sk::S(s) => {
                    let chars: Vec<char> = s.chars().collect();
                    let n = 1 + r.below(chars.len());
                    Sk::S(chars[..n].iter().collect())
                }
                Sk::B(b) => {
                    let n = 1 + r.below(b.len());
                    Sk::B(b[..n].to_vec())
                }
                n => n,
            };
            Cond::BeginsWith(prefix)
        }
    };
    let big = p.len() > 5000;
    let limit = match r.below(4) {
        0 if !big => None,
        _ => Some(1 + r.below(if big { 60 } else { 40 }) as i32),
    };
    Case {
        part,
        cond,
        forward: r.below(2) == 0,
        limit,
        max_pages: if big { 4 } else { usize::MAX },
    }
}

/// Runs a case against the server, paging, and compares with the model.
async fn check(c: &Client, model: &Model, case: &Case) -> Result<(), String> {
    let (table, _, pk, p) = &model.parts[case.part];
    let mut want: Vec<(&Sk, &u64)> = p.iter().filter(|(k, _)| case.cond.matches(k)).collect();
    if !case.forward {
        want.reverse();
    }
    let (expr, vals) = case.cond.expression();
    let mut got: Vec<(Sk, u64)> = Vec::new();
    let mut start = None;
    let mut pages = 0;
    let complete = loop {
        let mut q = c
            .query()
            .table_name(table)
            .key_condition_expression(expr)
            .expression_attribute_values(":p", Av::S(pk.clone()))
            .scan_index_forward(case.forward)
            .set_limit(case.limit)
            .set_exclusive_start_key(start.take());
        for (name, v) in [":a", ":b"].iter().zip(&vals) {
            q = q.expression_attribute_values(*name, v.av());
        }
        let out = q.send().await.map_err(|e| format!("{e:?}"))?;
        if let Some(l) = case.limit {
            if out.items().len() > l as usize {
                return Err(format!("page of {} > limit {l}", out.items().len()));
            }
        }
        for i in out.items() {
            got.push((
                Sk::from_av(&i["sk"]),
                i["v"].as_n().unwrap().parse().unwrap(),
            ));
        }
        pages += 1;
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            break true;
        }
        if pages >= case.max_pages {
            break false;
        }
    };
    let want: Vec<(Sk, u64)> = want.into_iter().map(|(k, v)| (k.clone(), *v)).collect();
    let want = if complete {
        &want[..]
    } else {
        &want[..got.len().min(want.len())]
    };
    if got != want {
        return Err(format!(
            "{table}/{pk} {:?} fwd={} limit={:?}: got {} items, want {}; first diff at {:?}",
            case.cond,
            case.forward,
            case.limit,
            got.len(),
            want.len(),
            got.iter().zip(want).position(|(a, b)| a != b)
        ));
    }
    Ok(())
}

fn run_cases(rt: &tokio::runtime::Runtime, c: &Client, model: &Model, cases: u32, phase: &str) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&any::<u64>(), |seed| {
        let case = make_case(model, seed);
        rt.block_on(check(c, model, &case))
            .map_err(|e| TestCaseError::fail(format!("[{phase}] seed {seed}: {e}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn query_matches_a_plaintext_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let srv = rt.block_on(TestServer::start());
    let c = srv.client();
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let mut model = Model { parts: Vec::new() };
    let mut value = 0u64;
    for (table, kind) in [
        ("ModelS", ScalarAttributeType::S),
        ("ModelN", ScalarAttributeType::N),
        ("ModelB", ScalarAttributeType::B),
    ] {
        rt.block_on(create_table(&c, table, Some(kind.clone())));
        for pi in 0..3 {
            let mut p = Partition::new();
            let size = [0usize, 40, 400][pi];
            if kind == ScalarAttributeType::S && pi == 2 {
                for e in EDGE_S {
                    value += 1;
                    p.insert(Sk::S(e.to_string()), value);
                }
                value += 1;
                p.insert(Sk::S("x".repeat(1024)), value);
            }
            if kind == ScalarAttributeType::B && pi == 2 {
                for e in [
                    vec![0u8],
                    vec![0, 0],
                    vec![0xff],
                    vec![0xff, 0xff],
                    vec![0x80],
                    vec![1; 1024],
                ] {
                    value += 1;
                    p.insert(Sk::B(e), value);
                }
            }
            while p.len() < size {
                value += 1;
                p.insert(random_key(kind.clone(), &mut r), value);
            }
            let pk = format!("part-{pi}-ünï");
            rt.block_on(load(&c, table, &pk, &p));
            model.parts.push((table.to_string(), kind.clone(), pk, p));
        }
    }
    // One large partition.
    let mut big = Partition::new();
    while big.len() < 20_000 {
        value += 1;
        big.insert(random_n(&mut r), value);
    }
    rt.block_on(load(&c, "ModelN", "big", &big));
    model
        .parts
        .push(("ModelN".into(), ScalarAttributeType::N, "big".into(), big));
    let big_idx = model.parts.len() - 1;
    // The whole large partition in order, both ways.
    for forward in [true, false] {
        let case = Case {
            part: big_idx,
            cond: Cond::All,
            forward,
            limit: None,
            max_pages: usize::MAX,
        };
        rt.block_on(check(&c, &model, &case)).unwrap();
    }

    run_cases(&rt, &c, &model, 60, "live");

    // Deletions leave the index too.
    for pi in [2usize, 5, 8] {
        let (table, _, pk, p) = &mut model.parts[pi];
        let victims: Vec<Sk> = p.keys().step_by(3).cloned().collect();
        for k in victims {
            rt.block_on(
                c.delete_item()
                    .table_name(table.as_str())
                    .key("pk", Av::S(pk.clone()))
                    .key("sk", k.av())
                    .send(),
            )
            .unwrap();
            p.remove(&k);
        }
    }
    srv.services().store.flush_and_compact().unwrap();
    run_cases(&rt, &c, &model, 40, "compacted");

    let dir = rt.block_on(srv.stop());
    let srv = rt.block_on(TestServer::start_in(dir));
    let c = srv.client();
    run_cases(&rt, &c, &model, 40, "restarted");
    let _ = rt.block_on(srv.stop());
}
