//! Groups, roles and role sessions, permissions boundaries, resource-based policies and access
//! key status, enforced end to end through aws-sdk-dynamodb against an in-process server.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::AttributeValue as Av;
use aws_sdk_dynamodb::Client;
use common::*;
use sealdb::catalog::principals::SessionRecord;
use sealdb::ops::admin::{run, AdminInput};
use sealdb::protocol::AdminOp;
use serde_json::Value;

// Trust policies (CreateRoleSession as sts:AssumeRole) and IAM's delete conflicts.
#[path = "iam_principals/directory_rules.rs"]
mod directory_rules;

const DENIED: &str = "AccessDeniedException";
const UNRECOGNIZED: &str = "UnrecognizedClientException";
const ACCOUNT: &str = "000000000000";

fn policy_file(name: &str) -> String {
    std::fs::read_to_string(source_path(&format!("policies/{name}"))).unwrap()
}

fn allow(actions: &[&str], resource: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": resource}]})
    .to_string()
}

fn table_arn(t: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{t}")
}

async fn admin(srv: &TestServer, op: AdminOp, input: AdminInput) -> Result<Value, String> {
    run(&srv.services().catalog, op, input)
        .await
        .map_err(|e| e.to_string())
}

fn names(user: Option<&str>, group: Option<&str>, role: Option<&str>) -> AdminInput {
    AdminInput {
        user_name: user.map(str::to_string),
        group_name: group.map(str::to_string),
        role_name: role.map(str::to_string),
        ..Default::default()
    }
}

fn with_policy(mut i: AdminInput, name: &str, doc: String) -> AdminInput {
    i.policy_name = Some(name.into());
    i.policy_document = Some(doc);
    i
}

/// A user with an access key (and no policies); returns its client and key id.
async fn new_user(srv: &TestServer, name: &str) -> (Client, String) {
    admin(srv, AdminOp::CreateUser, names(Some(name), None, None))
        .await
        .unwrap();
    let key = admin(srv, AdminOp::CreateAccessKey, names(Some(name), None, None))
        .await
        .unwrap();
    let id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap();
    (client_for(&srv.endpoint, &id, secret), id)
}

fn session_client(endpoint: &str, id: &str, secret: &str, token: Option<&str>) -> Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            id,
            secret,
            token.map(str::to_string),
            None,
            "sealdb-tests",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .http_client(http_client())
        .build();
    Client::from_conf(conf)
}

async fn put(c: &Client, t: &str, pk: &str) -> Result<(), String> {
    c.put_item()
        .table_name(t)
        .item("pk", Av::S(pk.into()))
        .item("v", Av::S("x".into()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e))
}

async fn get(c: &Client, t: &str, pk: &str) -> Result<(), String> {
    c.get_item()
        .table_name(t)
        .key("pk", Av::S(pk.into()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_grants_and_revokes_on_the_next_request() {
    let srv = TestServer::start().await;
    create_table(&srv.client(), "Shared", None).await;
    let (alice, _) = new_user(&srv, "alice").await;
    assert_eq!(put(&alice, "Shared", "a").await, Err(DENIED.into()));

    admin(
        &srv,
        AdminOp::CreateGroup,
        names(None, Some("writers"), None),
    )
    .await
    .unwrap();
    let doc = allow(
        &["dynamodb:PutItem", "dynamodb:GetItem"],
        &table_arn("Shared"),
    );
    admin(
        &srv,
        AdminOp::AttachGroupPolicy,
        with_policy(names(None, Some("writers"), None), "rw", doc),
    )
    .await
    .unwrap();
    // policies of a group the user is not in grant nothing
    assert_eq!(put(&alice, "Shared", "a").await, Err(DENIED.into()));

    admin(
        &srv,
        AdminOp::AddUserToGroup,
        names(Some("alice"), Some("writers"), None),
    )
    .await
    .unwrap();
    assert_eq!(put(&alice, "Shared", "a").await, Ok(()));
    assert_eq!(get(&alice, "Shared", "a").await, Ok(()));

    // a group may not be deleted while it has members
    let e = admin(
        &srv,
        AdminOp::DeleteGroup,
        names(None, Some("writers"), None),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e, "Cannot delete entity, must remove users from group first.",
        "{e}"
    );

    // changing the group's policies reaches its members
    admin(
        &srv,
        AdminOp::DetachGroupPolicy,
        AdminInput {
            policy_name: Some("rw".into()),
            ..names(None, Some("writers"), None)
        },
    )
    .await
    .unwrap();
    assert_eq!(get(&alice, "Shared", "a").await, Err(DENIED.into()));
    admin(
        &srv,
        AdminOp::PutGroupPolicy,
        with_policy(
            names(None, Some("writers"), None),
            "read",
            allow(&["dynamodb:GetItem"], "*"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(get(&alice, "Shared", "a").await, Ok(()));
    assert_eq!(put(&alice, "Shared", "b").await, Err(DENIED.into()));

    let groups = admin(&srv, AdminOp::ListGroups, AdminInput::default())
        .await
        .unwrap();
    assert_eq!(groups["Groups"][0]["Members"][0], "alice");

    admin(
        &srv,
        AdminOp::RemoveUserFromGroup,
        names(Some("alice"), Some("writers"), None),
    )
    .await
    .unwrap();
    assert_eq!(get(&alice, "Shared", "a").await, Err(DENIED.into()));
    // empty, but it still has an inline policy
    let e = admin(
        &srv,
        AdminOp::DeleteGroup,
        names(None, Some("writers"), None),
    )
    .await
    .unwrap_err();
    assert_eq!(e, "Cannot delete entity, must delete policies first.");
    admin(
        &srv,
        AdminOp::DeleteGroupPolicy,
        AdminInput {
            policy_name: Some("read".into()),
            ..names(None, Some("writers"), None)
        },
    )
    .await
    .unwrap();
    admin(
        &srv,
        AdminOp::DeleteGroup,
        names(None, Some("writers"), None),
    )
    .await
    .unwrap();

    // the directory survives a restart (sealed in the catalog)
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir).await;
    let index = srv.services().catalog.principals();
    assert!(index.groups.is_empty());
    assert!(index.by_name["alice"].record.groups.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_sessions_need_their_token_and_expire() {
    let srv = TestServer::start().await;
    create_table(&srv.client(), "Docs", None).await;
    put(&srv.client(), "Docs", "d1").await.unwrap();
    admin(&srv, AdminOp::CreateRole, names(None, None, Some("reader")))
        .await
        .unwrap();
    admin(
        &srv,
        AdminOp::PutRolePolicy,
        with_policy(
            names(None, None, Some("reader")),
            "read",
            allow(&["dynamodb:GetItem"], &table_arn("Docs")),
        ),
    )
    .await
    .unwrap();
    let out = admin(
        &srv,
        AdminOp::CreateRoleSession,
        AdminInput {
            role_session_name: Some("job-1".into()),
            ..names(None, None, Some("reader"))
        },
    )
    .await
    .unwrap();
    let c = &out["Credentials"];
    let (id, secret, token) = (
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        c["SessionToken"].as_str().unwrap(),
    );
    assert!(id.starts_with("ASIA"));
    assert_eq!(
        out["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/reader/job-1")
    );

    let session = session_client(&srv.endpoint, id, secret, Some(token));
    assert_eq!(get(&session, "Docs", "d1").await, Ok(()));
    let e = session
        .put_item()
        .table_name("Docs")
        .item("pk", Av::S("x".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED);
    assert!(
        message(&e).contains("assumed-role/reader/job-1"),
        "{}",
        message(&e)
    );

    // the session key without its token, or with another token, is refused
    let no_token = session_client(&srv.endpoint, id, secret, None);
    assert_eq!(get(&no_token, "Docs", "d1").await, Err(UNRECOGNIZED.into()));
    let wrong = session_client(&srv.endpoint, id, secret, Some("not-the-issued-token"));
    assert_eq!(get(&wrong, "Docs", "d1").await, Err(UNRECOGNIZED.into()));

    // the role's policies change for its live sessions on the next request
    admin(
        &srv,
        AdminOp::DeleteRolePolicy,
        AdminInput {
            policy_name: Some("read".into()),
            ..names(None, None, Some("reader"))
        },
    )
    .await
    .unwrap();
    assert_eq!(get(&session, "Docs", "d1").await, Err(DENIED.into()));

    // an expired session is refused with "expired"
    let expired_id = "ASIAEXPIREDSESSION01";
    srv.services()
        .catalog
        .iam_change(|index, ch| {
            let mut role = index.roles["reader"].record.clone();
            role.sessions.push(SessionRecord {
                access_key_id: expired_id.into(),
                secret: zeroize::Zeroizing::new("expired-secret-0123456789".into()),
                token: zeroize::Zeroizing::new("expired-token".into()),
                session_name: "old".into(),
                created: 0.0,
                expires: sealdb::util::epoch_seconds_f64() - 60.0,
            });
            ch.put_role(role);
            Ok::<_, sealdb::catalog::CatalogError>(())
        })
        .await
        .unwrap();
    let old = session_client(
        &srv.endpoint,
        expired_id,
        "expired-secret-0123456789",
        Some("expired-token"),
    );
    let e = old
        .get_item()
        .table_name("Docs")
        .key("pk", Av::S("d1".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ExpiredTokenException");
    assert!(message(&e).contains("expired"), "{}", message(&e));

    // deleting the role ends its sessions
    admin(&srv, AdminOp::DeleteRole, names(None, None, Some("reader")))
        .await
        .unwrap();
    assert_eq!(get(&session, "Docs", "d1").await, Err(UNRECOGNIZED.into()));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permissions_boundary_limits_a_user() {
    let srv = TestServer::start().await;
    create_table(&srv.client(), "Data", None).await;
    let (bob, _) = new_user(&srv, "bob").await;
    admin(
        &srv,
        AdminOp::PutUserPolicy,
        with_policy(
            names(Some("bob"), None, None),
            "admin",
            policy_file("dev-admin.json"),
        ),
    )
    .await
    .unwrap();
    // without a boundary the admin policy allows table management
    bob.describe_table()
        .table_name("Data")
        .send()
        .await
        .unwrap();
    admin(
        &srv,
        AdminOp::PutUserPermissionsBoundary,
        AdminInput {
            permissions_boundary: Some(policy_file("permissions-boundary.json")),
            ..names(Some("bob"), None, None)
        },
    )
    .await
    .unwrap();
    assert_eq!(put(&bob, "Data", "k").await, Ok(()));
    assert_eq!(get(&bob, "Data", "k").await, Ok(()));
    let e = table_request(&bob, "Made", None).send().await.unwrap_err();
    assert_eq!(code(&e), DENIED);
    assert!(
        message(&e)
            .contains("because no permissions boundary allows the dynamodb:CreateTable action"),
        "{}",
        message(&e)
    );
    let e = bob
        .delete_table()
        .table_name("Data")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED);

    admin(
        &srv,
        AdminOp::DeleteUserPermissionsBoundary,
        names(Some("bob"), None, None),
    )
    .await
    .unwrap();
    table_request(&bob, "Made", None).send().await.unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_policies_grant_and_deny() {
    let srv = TestServer::start().await;
    let dev = srv.client();
    create_table(&dev, "Guarded", None).await;
    create_table(&dev, "Other", None).await;
    put(&dev, "Guarded", "g").await.unwrap();
    let (carol, _) = new_user(&srv, "carol").await;
    assert_eq!(get(&carol, "Guarded", "g").await, Err(DENIED.into()));

    let carol_arn = format!("arn:aws:iam::{ACCOUNT}:user/carol");
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "CarolReads", "Effect": "Allow", "Principal": {"AWS": carol_arn},
         "Action": "dynamodb:GetItem", "Resource": table_arn("Guarded")},
        // names another table: no effect on either
        {"Sid": "NotHere", "Effect": "Allow", "Principal": {"AWS": carol_arn},
         "Action": "dynamodb:PutItem", "Resource": table_arn("Other")},
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*",
         "Action": "dynamodb:DeleteItem", "Resource": table_arn("Guarded")}]})
    .to_string();
    let rev = dev
        .put_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .policy(&doc)
        .send()
        .await
        .unwrap()
        .revision_id
        .unwrap();

    // the user ARN named by the resource policy is allowed without any identity policy
    assert_eq!(get(&carol, "Guarded", "g").await, Ok(()));
    assert_eq!(put(&carol, "Guarded", "g2").await, Err(DENIED.into()));
    assert_eq!(put(&carol, "Other", "o").await, Err(DENIED.into()));

    // an explicit deny in the resource policy stops even the dev admin
    let e = dev
        .delete_item()
        .table_name("Guarded")
        .key("pk", Av::S("g".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), DENIED);
    assert!(
        message(&e).contains("explicit deny in a resource-based policy"),
        "{}",
        message(&e)
    );

    // a boundary does not limit what a resource policy grants to the user ARN
    admin(
        &srv,
        AdminOp::PutUserPermissionsBoundary,
        AdminInput {
            permissions_boundary: Some(allow(&["s3:GetObject"], "*")),
            ..names(Some("carol"), None, None)
        },
    )
    .await
    .unwrap();
    assert_eq!(get(&carol, "Guarded", "g").await, Ok(()));

    let got = dev
        .get_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.revision_id(), Some(rev.as_str()));
    assert_eq!(got.policy(), Some(doc.as_str()));

    // ExpectedRevisionId: a stale revision or NO_POLICY on an existing policy is refused
    for stale in ["1", "NO_POLICY"] {
        let e = dev
            .put_resource_policy()
            .resource_arn(table_arn("Guarded"))
            .policy(&doc)
            .expected_revision_id(stale)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "PolicyNotFoundException");
        assert!(message(&e).contains("policy"), "{}", message(&e));
    }
    let rev2 = dev
        .put_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .policy(&doc)
        .expected_revision_id(&rev)
        .send()
        .await
        .unwrap()
        .revision_id
        .unwrap();
    assert_ne!(rev, rev2);

    // invalid documents: no Principal; over 20 KB
    let bad = allow(&["dynamodb:GetItem"], "*");
    let e = dev
        .put_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .policy(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let big = doc.replace("CarolReads", &"x".repeat(21 * 1024));
    let e = dev
        .put_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .policy(big)
        .send()
        .await
        .unwrap_err();
    assert!(message(&e).contains("limit"), "{}", message(&e));

    let deleted = dev
        .delete_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.revision_id(), Some(rev2.as_str()));
    assert_eq!(get(&carol, "Guarded", "g").await, Err(DENIED.into()));
    let e = dev
        .get_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PolicyNotFoundException");

    // the policy is part of the sealed table record: it survives a restart
    dev.put_resource_policy()
        .resource_arn(table_arn("Guarded"))
        .policy(&doc)
        .send()
        .await
        .unwrap();
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir).await;
    let carol_key = srv.services().catalog.principals().by_name["carol"]
        .record
        .access_keys[0]
        .clone();
    let carol = client_for(&srv.endpoint, &carol_key.id, &carol_key.secret);
    assert_eq!(get(&carol, "Guarded", "g").await, Ok(()));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_access_key_is_refused() {
    let srv = TestServer::start().await;
    create_table(&srv.client(), "Keys", None).await;
    let (dave, id) = new_user(&srv, "dave").await;
    admin(
        &srv,
        AdminOp::PutUserPolicy,
        with_policy(
            names(Some("dave"), None, None),
            "all",
            policy_file("dev-admin.json"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(get(&dave, "Keys", "k").await, Ok(()));
    let status = |s: &str| AdminInput {
        access_key_id: Some(id.clone()),
        status: Some(s.into()),
        ..Default::default()
    };
    admin(&srv, AdminOp::UpdateAccessKey, status("Inactive"))
        .await
        .unwrap();
    assert_eq!(get(&dave, "Keys", "k").await, Err(UNRECOGNIZED.into()));
    assert!(admin(&srv, AdminOp::UpdateAccessKey, status("Paused"))
        .await
        .is_err());
    admin(&srv, AdminOp::UpdateAccessKey, status("Active"))
        .await
        .unwrap();
    assert_eq!(get(&dave, "Keys", "k").await, Ok(()));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_restriction_example_policy() {
    let srv = TestServer::start().await;
    let dev = srv.client();
    create_table(&dev, "Profiles", None).await;
    dev.put_item()
        .table_name("Profiles")
        .item("pk", Av::S("u1".into()))
        .item("display_name", Av::S("U".into()))
        .item("secret", Av::S("s".into()))
        .send()
        .await
        .unwrap();
    let (erin, _) = new_user(&srv, "erin").await;
    admin(
        &srv,
        AdminOp::PutUserPolicy,
        with_policy(
            names(Some("erin"), None, None),
            "attrs",
            policy_file("attribute-restriction.json"),
        ),
    )
    .await
    .unwrap();
    let query = |proj: Option<&str>| {
        let mut q = erin
            .query()
            .table_name("Profiles")
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", Av::S("u1".into()));
        if let Some(p) = proj {
            q = q.projection_expression(p);
        }
        q
    };
    let out = query(Some("pk, display_name")).send().await.unwrap();
    assert_eq!(out.items()[0].len(), 2);
    // all attributes (Select ALL_ATTRIBUTES) or a secret attribute: denied
    assert_eq!(code(&query(None).send().await.unwrap_err()), DENIED);
    assert_eq!(
        code(&query(Some("pk, secret")).send().await.unwrap_err()),
        DENIED
    );
    // GetItem with a projection is checked attribute by attribute, names resolved
    let g = erin
        .get_item()
        .table_name("Profiles")
        .key("pk", Av::S("u1".into()))
        .projection_expression("#s")
        .expression_attribute_names("#s", "secret")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&g), DENIED);
    let ok = erin
        .get_item()
        .table_name("Profiles")
        .key("pk", Av::S("u1".into()))
        .projection_expression("display_name")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.item().unwrap().len(), 1);
    // a whole-item read (no projection: dynamodb:Select is ALL_ATTRIBUTES) is denied
    let whole = erin
        .get_item()
        .table_name("Profiles")
        .key("pk", Av::S("u1".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&whole), DENIED);
    // Select ALL_ATTRIBUTES is refused by the policy before the request is validated
    let sel = query(Some("pk"))
        .select(aws_sdk_dynamodb::types::Select::AllAttributes)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&sel), DENIED);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_online_with_iam_action_names_and_simulation() {
    let srv = TestServer::start().await;
    create_table(&srv.client(), "Sim", None).await;
    let target = |op: &str| format!("{}{op}", sealdb::protocol::operation::ADMIN_PREFIX);
    let call = |id: String, secret: String, op: &'static str, body: Value| {
        let endpoint = srv.endpoint.clone();
        async move {
            raw_request(
                &endpoint,
                &id,
                &secret,
                Some(&target(op)),
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    let dev = (srv.access_key.clone(), srv.secret.clone());
    let (status, out) = call(
        dev.0.clone(),
        dev.1.clone(),
        "CreateRole",
        serde_json::json!({"RoleName": "ops", "Tags": [{"Key": "team", "Value": "blue"}]}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let (status, _) = call(
        dev.0.clone(),
        dev.1.clone(),
        "PutRolePolicy",
        serde_json::json!({"RoleName": "ops", "PolicyName": "p",
            "PolicyDocument": allow(&["dynamodb:GetItem"], "*")}),
    )
    .await;
    assert_eq!(status, 200);

    // a user allowed only sts:AssumeRole on this role gets sessions of it, nothing else
    admin(&srv, AdminOp::CreateUser, names(Some("frank"), None, None))
        .await
        .unwrap();
    admin(
        &srv,
        AdminOp::PutUserPolicy,
        with_policy(
            names(Some("frank"), None, None),
            "assume",
            allow(
                &["sts:AssumeRole"],
                &format!("arn:aws:iam::{ACCOUNT}:role/ops"),
            ),
        ),
    )
    .await
    .unwrap();
    let key = admin(
        &srv,
        AdminOp::CreateAccessKey,
        names(Some("frank"), None, None),
    )
    .await
    .unwrap();
    let frank = (
        key["AccessKey"]["AccessKeyId"]
            .as_str()
            .unwrap()
            .to_string(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let (status, out) = call(
        frank.0.clone(),
        frank.1.clone(),
        "CreateRoleSession",
        serde_json::json!({"RoleName": "ops", "RoleSessionName": "s1", "DurationSeconds": 900}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert!(out["Credentials"]["SessionToken"].as_str().unwrap().len() > 40);
    let (status, out) = call(
        frank.0.clone(),
        frank.1.clone(),
        "CreateGroup",
        serde_json::json!({"GroupName": "g"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        out["message"].as_str().unwrap().contains("iam:CreateGroup"),
        "{out}"
    );

    // simulation for the stored role: its policies, its tags as aws:PrincipalTag
    let (status, out) = call(
        dev.0.clone(),
        dev.1.clone(),
        "SimulatePrincipalPolicy",
        serde_json::json!({"RoleName": "ops", "action": "dynamodb:GetItem",
            "resource": table_arn("Sim"), "context": {}}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["decision"], "Allow");
    assert_eq!(out["matched_statements"][0]["policy"], "role/ops/p");
    let (_, out) = call(
        dev.0.clone(),
        dev.1.clone(),
        "SimulatePrincipalPolicy",
        serde_json::json!({"UserName": "frank", "action": "dynamodb:GetItem",
            "resource": table_arn("Sim"), "context": {},
            "resource_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/frank")},
                "Action": "dynamodb:GetItem", "Resource": "*"}]}}),
    )
    .await;
    assert_eq!(out["decision"], "Allow", "{out}");
    assert_eq!(
        out["principal_arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/frank")
    );
    let (_, out) = call(
        dev.0.clone(),
        dev.1.clone(),
        "SimulatePrincipalPolicy",
        serde_json::json!({"UserName": "frank", "action": "dynamodb:GetItem",
            "resource": table_arn("Sim"), "context": {}}),
    )
    .await;
    assert_eq!(out["decision"], "ImplicitDeny", "{out}");
    srv.stop().await;
}

/// `sealdb ARGS --data-dir DATA`, offline: (success, stdout, stderr).
fn offline_cli(data: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(sealdb_bin())
        .args(args)
        .args(["--data-dir", data])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_groups_roles_and_sessions_offline() {
    let dir = tempfile::tempdir().unwrap();
    // A data dir made by a server that then stopped.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = rt.block_on(async move { TestServer::start_in(dir).await.stop().await });
    let data = dir.path().to_str().unwrap().to_string();
    let sealdb = |args: &[&str]| offline_cli(&data, args);
    let ok = |args: &[&str]| {
        let (ok, out, err) = sealdb(args);
        assert!(ok, "{args:?}: {out} {err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let policy = source_path("policies/read-only.json").display().to_string();
    let boundary = source_path("policies/permissions-boundary.json")
        .display()
        .to_string();
    ok(&["iam", "create-group", "--group", "readers"]);
    ok(&[
        "iam",
        "attach-group-policy",
        "--group",
        "readers",
        "--policy-name",
        "ro",
        "--file",
        &policy,
    ]);
    ok(&["iam", "create-user", "--user", "gina"]);
    ok(&[
        "iam",
        "add-user-to-group",
        "--group",
        "readers",
        "--user",
        "gina",
    ]);
    ok(&["iam", "tag-user", "--user", "gina", "--tag", "team=blue"]);
    ok(&[
        "iam",
        "put-user-permissions-boundary",
        "--user",
        "gina",
        "--file",
        &boundary,
    ]);
    ok(&["iam", "create-role", "--role", "batch", "--tag", "tier=1"]);
    ok(&[
        "iam",
        "put-role-policy",
        "--role",
        "batch",
        "--policy-name",
        "ro",
        "--file",
        &policy,
    ]);
    let s = ok(&[
        "iam",
        "create-role-session",
        "--role",
        "batch",
        "--session-name",
        "nightly",
    ]);
    assert!(s["Credentials"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .starts_with("ASIA"));
    let groups = ok(&["iam", "list-groups"]);
    assert_eq!(groups["Groups"][0]["Members"][0], "gina");
    let roles = ok(&["iam", "list-roles"]);
    assert_eq!(roles["Roles"][0]["Tags"]["tier"], "1");
    // a bad document is refused with its JSON path, and nothing changes
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
    )
    .unwrap();
    let (ok_bad, _, err) = sealdb(&[
        "iam",
        "put-group-policy",
        "--group",
        "readers",
        "--policy-name",
        "x",
        "--file",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok_bad);
    assert!(err.contains("Statement[0].Effect"), "{err}");
    let (ok_del, _, err) = sealdb(&["iam", "delete-group", "--group", "readers"]);
    assert!(!ok_del, "{err}");

    // the server sees it all after a restart
    let srv = rt.block_on(TestServer::start_in(dir));
    let index = srv.services().catalog.principals();
    let gina = &index.by_name["gina"];
    assert_eq!(gina.record.tags["team"], "blue");
    assert!(gina.subject.boundary.is_some());
    assert_eq!(gina.subject.policies.len(), 1, "the group's policy");
    assert_eq!(index.roles["batch"].record.sessions.len(), 1);
    rt.block_on(srv.stop());
}
