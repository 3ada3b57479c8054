//! The request path after authentication, up to (not including) storage: `X-Amz-Target` ->
//! `Operation`, the JSON body -> the operation's typed input, the input -> its IAM targets
//! (action, resource, condition keys such as LeadingKeys and Attributes), and each target's
//! decision under the example FGAC policies. Nothing may panic.
//!
//! Input layout: byte 0 picks the target header (one of every known operation, or, past the
//! end of the list, the first line of the rest taken literally); the rest is the body.
#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sealdb::audit::Audit;
use sealdb::catalog::Catalog;
use sealdb::config::Config;
use sealdb::crypto::keyring::CachePolicy;
use sealdb::error::ApiError;
use sealdb::iam::context::{global_context, RequestFacts, Target};
use sealdb::iam::eval::{evaluate, AuthzRequest, PolicySet, PrincipalInfo, PrincipalKind};
use sealdb::iam::policy::{Policy, PolicyKind};
use sealdb::iam::targets::targets_for;
use sealdb::kms::local::{LocalKms, DEFAULT_ALIAS};
use sealdb::kms::KmsProvider;
use sealdb::ops::admin::AdminInput;
use sealdb::ops::Services;
use sealdb::protocol::input::*;
use sealdb::protocol::Operation;
use sealdb::storage::{MemStore, Store};

/// Every target header the server knows, plus near misses.
const TARGETS: &[&str] = &[
    "DynamoDB_20120810.CreateTable",
    "DynamoDB_20120810.DescribeTable",
    "DynamoDB_20120810.DeleteTable",
    "DynamoDB_20120810.ListTables",
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.GetItem",
    "DynamoDB_20120810.DeleteItem",
    "DynamoDB_20120810.UpdateItem",
    "DynamoDB_20120810.Query",
    "DynamoDB_20120810.Scan",
    "DynamoDB_20120810.BatchGetItem",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.TransactGetItems",
    "DynamoDB_20120810.TransactWriteItems",
    "DynamoDB_20120810.DescribeLimits",
    "DynamoDB_20120810.DescribeEndpoints",
    "DynamoDB_20120810.UpdateTable",
    "DynamoDB_20120810.UpdateTimeToLive",
    "DynamoDB_20120810.DescribeTimeToLive",
    "DynamoDB_20120810.TagResource",
    "DynamoDB_20120810.UntagResource",
    "DynamoDB_20120810.ListTagsOfResource",
    "DynamoDB_20120810.PutResourcePolicy",
    "DynamoDB_20120810.GetResourcePolicy",
    "DynamoDB_20120810.DeleteResourcePolicy",
    "DynamoDB_20120810.CreateBackup",
    "SealDBAdmin_20261101.CreateUser",
    "SealDBAdmin_20261101.DeleteUser",
    "SealDBAdmin_20261101.ListUsers",
    "SealDBAdmin_20261101.CreateAccessKey",
    "SealDBAdmin_20261101.DeleteAccessKey",
    "SealDBAdmin_20261101.ListAccessKeys",
    "SealDBAdmin_20261101.PutUserPolicy",
    "SealDBAdmin_20261101.DeleteUserPolicy",
    "SealDBAdmin_20261101.CreateGroup",
    "SealDBAdmin_20261101.AddUserToGroup",
    "SealDBAdmin_20261101.CreateRole",
    "SealDBAdmin_20261101.CreateRoleSession",
    "SealDBAdmin_20261101.PutUserPermissionsBoundary",
    "SealDBAdmin_20261101.SimulatePrincipalPolicy",
    "SealDBAdmin_20261101.KeysStatus",
    "SealDBAdmin_20261101.RotateDataKey",
    "SealDBAdmin_20261101.ReencryptTable",
    "SealDBAdmin_20261101.RetireGeneration",
];

struct World {
    svc: Services,
    principal: PrincipalInfo,
    policies: Vec<Arc<Policy>>,
    // Kept alive for anything the catalog spawned.
    _rt: tokio::runtime::Runtime,
}

const POLICIES: &[&str] = &[
    include_str!("../../policies/tenant-isolation.json"),
    include_str!("../../policies/attribute-restriction.json"),
    include_str!("../../policies/deny-delete.json"),
    include_str!("../../policies/read-only.json"),
];

/// An in-memory server (MemStore, in-memory local KMS) with the two tables the example
/// policies name, built once: target mapping only reads the catalog.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let svc = rt.block_on(async {
            let config = Config::default();
            let store: Arc<dyn Store> = Arc::new(MemStore::new());
            let kms: Arc<dyn KmsProvider> = Arc::new(
                LocalKms::in_memory(&config.account_id, &config.region).expect("local kms"),
            );
            let default_kms_key = kms
                .describe_key(DEFAULT_ALIAS)
                .await
                .expect("default key")
                .arn;
            let catalog = Catalog::open(
                store.clone(),
                kms.as_ref(),
                &default_kms_key,
                &config.account_id,
                &config.region,
            )
            .await
            .expect("catalog");
            let svc = Services {
                config,
                store,
                kms,
                default_kms_key,
                catalog,
                audit: Audit::disabled(),
                key_cache: CachePolicy {
                    ttl: std::time::Duration::from_secs(300),
                    max_stale: std::time::Duration::from_secs(3600),
                },
                local_kms: None,
            };
            for body in [
                r#"{"TableName":"Tenants","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}"#,
                r#"{"TableName":"Profiles","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}],"BillingMode":"PAY_PER_REQUEST"}"#,
            ] {
                let input: CreateTableInput = decode(body.as_bytes()).expect("table input");
                sealdb::ops::tables::create_table(&svc, input)
                    .await
                    .expect("create table");
            }
            svc
        });
        let policies = POLICIES
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Arc::new(
                    Policy::parse(&format!("p{i}"), p, PolicyKind::Identity)
                        .unwrap_or_else(|e| panic!("example policy {i}: {e:?}")),
                )
            })
            .collect();
        let principal = PrincipalInfo {
            kind: PrincipalKind::IAMUser,
            arn: "arn:aws:iam::000000000000:user/alice".into(),
            account: "000000000000".into(),
            userid: "AIDAFUZZ".into(),
            username: Some("alice".into()),
            role_arn: None,
            tags: BTreeMap::from([("team".to_owned(), "blue".to_owned())]),
        };
        World {
            svc,
            principal,
            policies,
            _rt: rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (target, body): (String, &[u8]) = match TARGETS.get(usize::from(sel)) {
        Some(t) => ((*t).to_owned(), rest),
        None => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            (
                String::from_utf8_lossy(&rest[..end]).into_owned(),
                rest.get(end + 1..).unwrap_or_default(),
            )
        }
    };
    let Ok(op) = Operation::parse(Some(&target)) else {
        return;
    };
    let w = world();
    let targets = match targets_of(&w.svc, op, body) {
        Ok(t) => t,
        Err(e) => {
            // Every error must map to the wire without panicking.
            let _ = format!("{e:?} {e}");
            return;
        }
    };
    authorize(w, &targets);
});

fn targets_of(svc: &Services, op: Operation, body: &[u8]) -> Result<Vec<Target>, ApiError> {
    fn t<I>(svc: &Services, body: &[u8]) -> Result<Vec<Target>, ApiError>
    where
        I: serde::de::DeserializeOwned + sealdb::iam::targets::Targets,
    {
        let input: I = decode(body)?;
        targets_for(svc, &input)
    }
    match op {
        Operation::CreateTable => t::<CreateTableInput>(svc, body),
        Operation::DescribeTable | Operation::DeleteTable => {
            let i: TableNameInput = decode(body)?;
            targets_for(svc, &(op, &i))
        }
        Operation::ListTables => t::<ListTablesInput>(svc, body),
        Operation::PutItem => t::<PutItemInput>(svc, body),
        Operation::GetItem => t::<GetItemInput>(svc, body),
        Operation::DeleteItem => t::<DeleteItemInput>(svc, body),
        Operation::UpdateItem => t::<UpdateItemInput>(svc, body),
        Operation::Query => t::<QueryInput>(svc, body),
        Operation::Scan => t::<ScanInput>(svc, body),
        Operation::BatchGetItem => t::<BatchGetItemInput>(svc, body),
        Operation::BatchWriteItem => t::<BatchWriteItemInput>(svc, body),
        Operation::TransactGetItems => t::<TransactGetItemsInput>(svc, body),
        Operation::TransactWriteItems => t::<TransactWriteItemsInput>(svc, body),
        Operation::UpdateTable => t::<sealdb::ops::update_table::UpdateTableInput>(svc, body),
        Operation::UpdateTimeToLive => t::<sealdb::ops::ttl::UpdateTimeToLiveInput>(svc, body),
        Operation::DescribeTimeToLive => {
            let i: TableNameInput = decode(body)?;
            sealdb::iam::targets::describe_ttl_targets(svc, &i)
        }
        Operation::TagResource => t::<sealdb::ops::tags::TagResourceInput>(svc, body),
        Operation::UntagResource => t::<sealdb::ops::tags::UntagResourceInput>(svc, body),
        Operation::ListTagsOfResource => t::<sealdb::ops::tags::ListTagsOfResourceInput>(svc, body),
        Operation::PutResourcePolicy
        | Operation::GetResourcePolicy
        | Operation::DeleteResourcePolicy => {
            let i: sealdb::ops::resource_policy::ResourcePolicyInput = decode(body)?;
            targets_for(svc, &(op, &i))
        }
        Operation::Keys(k) => {
            let i: sealdb::ops::key_admin::KeysInput = decode(body)?;
            let (action, resource) = i.target(k, &svc.config.region, &svc.config.account_id);
            Ok(vec![Target::new(action, resource)])
        }
        Operation::Admin(a) => {
            let i: AdminInput = decode(body)?;
            let (action, resource) = i.target(a, &svc.config.account_id);
            Ok(vec![Target::new(action, resource)])
        }
        _ => Ok(Vec::new()),
    }
}

/// As the pipeline's Authorizer: global keys plus each target's keys, every policy in turn.
fn authorize(w: &World, targets: &[Target]) {
    let facts = RequestFacts {
        source_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        secure_transport: true,
        now: time::OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("fixed time"),
        region: w.svc.config.region.clone(),
    };
    let base = global_context(&w.principal, &facts);
    for t in targets {
        let mut context = base.clone();
        for (k, v) in &t.keys {
            context.insert(k.clone(), v.clone());
        }
        let req = AuthzRequest {
            principal: &w.principal,
            action: &t.action,
            resource: &t.resource,
            context: &context,
        };
        for p in &w.policies {
            let d = evaluate(
                &req,
                &PolicySet {
                    identity: std::slice::from_ref(p),
                    boundary: None,
                    resource: None,
                },
            );
            let _ = d.denial_reason(&t.action);
        }
    }
}
