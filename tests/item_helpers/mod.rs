//! Helpers shared by the item API tests: tables keyed `pk` (S) [+ `sk`], attribute shorthands.
#![allow(dead_code)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue as Av, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;

pub type Item = HashMap<String, Av>;

pub fn s(v: &str) -> Av {
    Av::S(v.to_string())
}

pub fn n(v: i64) -> Av {
    Av::N(v.to_string())
}

pub fn key(pk: &str, sk: Option<Av>) -> Item {
    let mut k = HashMap::from([("pk".to_string(), s(pk))]);
    if let Some(sk) = sk {
        k.insert("sk".to_string(), sk);
    }
    k
}

pub fn num(item: &Item, attr: &str) -> i64 {
    item[attr].as_n().unwrap().parse().unwrap()
}

pub async fn put(c: &Client, table: &str, item: Item) {
    c.put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

pub async fn fill(c: &Client, table: &str, pk: &str, count: i64) {
    let mut reqs = Vec::new();
    for i in 0..count {
        let item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), n(i)),
            ("v".to_string(), n(i % 7)),
            ("pad".to_string(), s("payload")),
        ]);
        reqs.push(
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build(),
        );
        if reqs.len() == 25 {
            let out = c
                .batch_write_item()
                .request_items(table, std::mem::take(&mut reqs))
                .send()
                .await
                .unwrap();
            assert!(out
                .unprocessed_items()
                .unwrap_or(&HashMap::new())
                .is_empty());
        }
    }
    if !reqs.is_empty() {
        c.batch_write_item()
            .request_items(table, reqs)
            .send()
            .await
            .unwrap();
    }
}

pub fn sks(items: &[Item]) -> Vec<i64> {
    items.iter().map(|i| num(i, "sk")).collect()
}

pub fn tx_put(table: &str, item: Item) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .build()
                .unwrap(),
        )
        .build()
}
