//! Role trust policies (CreateRoleSession is authorized as `sts:AssumeRole` under AWS's
//! same-account rules) and IAM's DeleteConflict refusals, through the real server.

use super::*;

fn role_arn(r: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{r}")
}

fn user_arn(u: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{u}")
}

fn trust(effect: &str, principal: Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})
    .to_string()
}

fn admin_target(op: &str) -> String {
    format!("{}{op}", sealdb::protocol::operation::ADMIN_PREFIX)
}

/// A signed admin call as `key`; returns (status, body).
async fn call(srv: &TestServer, key: &(String, String), op: &str, body: Value) -> (u16, Value) {
    raw_request(
        &srv.endpoint,
        &key.0,
        &key.1,
        Some(&admin_target(op)),
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// A user with an access key and, optionally, one inline policy; returns its key.
async fn user_key(srv: &TestServer, name: &str, policy: Option<String>) -> (String, String) {
    admin(srv, AdminOp::CreateUser, names(Some(name), None, None))
        .await
        .unwrap();
    if let Some(doc) = policy {
        admin(
            srv,
            AdminOp::PutUserPolicy,
            with_policy(names(Some(name), None, None), "p", doc),
        )
        .await
        .unwrap();
    }
    let k = admin(srv, AdminOp::CreateAccessKey, names(Some(name), None, None))
        .await
        .unwrap();
    (
        k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
        k["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

async fn create_role(srv: &TestServer, name: &str, trust_doc: Option<String>) {
    admin(
        srv,
        AdminOp::CreateRole,
        AdminInput {
            assume_role_policy_document: trust_doc,
            ..names(None, None, Some(name))
        },
    )
    .await
    .unwrap();
    admin(
        srv,
        AdminOp::PutRolePolicy,
        with_policy(
            names(None, None, Some(name)),
            "read",
            allow(&["dynamodb:GetItem"], "*"),
        ),
    )
    .await
    .unwrap();
}

/// CreateRoleSession for `role` as `key`: Ok(credentials) or Err((status, __type, message)).
async fn assume(
    srv: &TestServer,
    key: &(String, String),
    role: &str,
) -> Result<Value, (u16, String, String)> {
    let (status, out) = call(
        srv,
        key,
        "CreateRoleSession",
        serde_json::json!({"RoleName": role, "RoleSessionName": "s1"}),
    )
    .await;
    if status == 200 {
        return Ok(out);
    }
    let t = out["__type"].as_str().unwrap_or("");
    Err((
        status,
        t.rsplit('#').next().unwrap_or("").to_string(),
        out["message"].as_str().unwrap_or("").to_string(),
    ))
}

fn denied_msg(user: &str, role: &str) -> String {
    format!(
        "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
        user_arn(user),
        role_arn(role)
    )
}

fn assert_denied(r: Result<Value, (u16, String, String)>, user: &str, role: &str) {
    let (status, t, m) = r.unwrap_err();
    assert_eq!((status, t.as_str()), (400, DENIED), "{m}");
    assert_eq!(m, denied_msg(user, role));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_policies_follow_the_same_account_rules() {
    let srv = TestServer::start().await;
    create_table(&srv.client(), "Docs", None).await;
    put(&srv.client(), "Docs", "d").await.unwrap();
    let assume_any = allow(
        &["sts:AssumeRole"],
        &format!("arn:aws:iam::{ACCOUNT}:role/*"),
    );

    // default trust: the account, so an identity-based allow is needed as well
    create_role(&srv, "acct", None).await;
    let nobody = user_key(&srv, "nobody", None).await;
    assert_denied(assume(&srv, &nobody, "acct").await, "nobody", "acct");
    let idu = user_key(&srv, "idu", Some(assume_any.clone())).await;
    let creds = assume(&srv, &idu, "acct").await.unwrap();
    let c = &creds["Credentials"];
    let session = session_client(
        &srv.endpoint,
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        c["SessionToken"].as_str(),
    );
    assert_eq!(get(&session, "Docs", "d").await, Ok(()));

    // a trust policy naming the user ARN is enough on its own
    create_role(
        &srv,
        "direct",
        Some(trust("Allow", Value::String(user_arn("named")))),
    )
    .await;
    let named = user_key(&srv, "named", None).await;
    assume(&srv, &named, "direct").await.unwrap();
    // and an identity-based allow is not enough when the trust policy names someone else
    assert_denied(assume(&srv, &idu, "direct").await, "idu", "direct");

    // the bare account id delegates to identity policies, like the root ARN
    create_role(
        &srv,
        "bare",
        Some(trust("Allow", Value::String(ACCOUNT.into()))),
    )
    .await;
    assert_denied(assume(&srv, &named, "bare").await, "named", "bare");
    assume(&srv, &idu, "bare").await.unwrap();

    // an explicit deny in the identity policy wins over a trust policy naming the user
    admin(
        &srv,
        AdminOp::PutUserPolicy,
        with_policy(
            names(Some("named"), None, None),
            "no-assume",
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
                "Action": "sts:AssumeRole", "Resource": role_arn("direct")}]})
            .to_string(),
        ),
    )
    .await
    .unwrap();
    assert_denied(assume(&srv, &named, "direct").await, "named", "direct");

    // an explicit deny in the trust policy wins over an identity allow and an account grant;
    // the change is online (iam:UpdateAssumeRolePolicy) and effective on the next request
    let dev = (srv.access_key.clone(), srv.secret.clone());
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
         "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": {"AWS": user_arn("idu")}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let (status, out) = call(
        &srv,
        &dev,
        "UpdateAssumeRolePolicy",
        serde_json::json!({"RoleName": "acct", "PolicyDocument": doc}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_denied(assume(&srv, &idu, "acct").await, "idu", "acct");
    // a caller with only sts:AssumeRole may not change trust policies
    let (status, out) = call(
        &srv,
        &idu,
        "UpdateAssumeRolePolicy",
        serde_json::json!({"RoleName": "bare", "PolicyDocument": trust("Allow", "*".into())}),
    )
    .await;
    assert_eq!(status, 400);
    let m = out["message"].as_str().unwrap();
    assert!(m.contains("iam:UpdateAssumeRolePolicy"), "{m}");

    // an unknown role is denied like an untrusting one (no enumeration)
    assert_denied(assume(&srv, &idu, "missing").await, "idu", "missing");

    // the trust policy is sealed with the role: it survives a restart
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir).await;
    let index = srv.services().catalog.principals();
    let stored = index.roles["acct"].record.trust_policy.clone().unwrap();
    assert_eq!(stored, doc);
    let key = |u: &str| {
        let k = &index.by_name[u].record.access_keys[0];
        (k.id.clone(), k.secret.to_string())
    };
    assert_denied(assume(&srv, &key("idu"), "acct").await, "idu", "acct");
    assume(&srv, &key("idu"), "bare").await.unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_policies_are_validated_as_iam_does() {
    let srv = TestServer::start().await;
    let bad =
        |stmt: Value| serde_json::json!({"Version": "2012-10-17", "Statement": [stmt]}).to_string();
    let cases = [
        (
            bad(serde_json::json!({"Effect": "Allow", "Action": "sts:AssumeRole"})),
            "Statement[0].Principal",
        ),
        (
            bad(
                serde_json::json!({"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                "Action": "sts:AssumeRole", "Resource": "*"}),
            ),
            "Has prohibited field Resource",
        ),
        (
            bad(
                serde_json::json!({"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                "Action": "dynamodb:GetItem"}),
            ),
            "may only specify STS AssumeRole actions",
        ),
        (
            bad(
                serde_json::json!({"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                "Action": "*"}),
            ),
            "may only specify STS AssumeRole actions",
        ),
    ];
    for (doc, expect) in &cases {
        let e = admin(
            &srv,
            AdminOp::CreateRole,
            AdminInput {
                assume_role_policy_document: Some(doc.clone()),
                ..names(None, None, Some("r"))
            },
        )
        .await
        .unwrap_err();
        assert!(e.contains(expect), "{doc}: {e}");
    }
    assert!(srv.services().catalog.principals().roles.is_empty());

    // accepted: sts:* and several STS role actions
    let ok = bad(
        serde_json::json!({"Effect": "Allow", "Principal": {"AWS": user_arn("x")},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}),
    );
    admin(
        &srv,
        AdminOp::CreateRole,
        AdminInput {
            assume_role_policy_document: Some(ok.clone()),
            ..names(None, None, Some("r"))
        },
    )
    .await
    .unwrap();
    // an invalid update changes nothing
    let e = admin(
        &srv,
        AdminOp::UpdateAssumeRolePolicy,
        with_policy(names(None, None, Some("r")), "", cases[2].0.clone()),
    )
    .await
    .unwrap_err();
    assert!(e.contains("STS AssumeRole actions"), "{e}");
    let roles = admin(&srv, AdminOp::ListRoles, AdminInput::default())
        .await
        .unwrap();
    assert_eq!(roles["Roles"][0]["AssumeRolePolicyDocument"], ok);
    // IAM's trust policy length quota
    let long = trust(
        "Allow",
        Value::Array(vec![Value::String(ACCOUNT.into()); 200]),
    );
    let e = admin(
        &srv,
        AdminOp::UpdateAssumeRolePolicy,
        with_policy(names(None, None, Some("r")), "", long),
    )
    .await
    .unwrap_err();
    assert!(e.contains("ACLSizePerRole: 2048"), "{e}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_conflict_while_something_is_attached() {
    let srv = TestServer::start().await;
    let dev = (srv.access_key.clone(), srv.secret.clone());
    let conflict = |why: &str| format!("Cannot delete entity, {why}.");
    let del = |op: &'static str, body: Value| {
        let (srv, dev) = (&srv, &dev);
        async move {
            let (status, out) = call(srv, dev, op, body).await;
            (status, out["message"].as_str().unwrap_or("").to_string())
        }
    };

    // a user: access keys, then inline policies, then group memberships
    let key = user_key(&srv, "hank", Some(allow(&["dynamodb:GetItem"], "*"))).await;
    admin(&srv, AdminOp::CreateGroup, names(None, Some("g"), None))
        .await
        .unwrap();
    admin(
        &srv,
        AdminOp::AddUserToGroup,
        names(Some("hank"), Some("g"), None),
    )
    .await
    .unwrap();
    let user = serde_json::json!({"UserName": "hank"});
    assert_eq!(
        del("DeleteUser", user.clone()).await,
        (409, conflict("must delete access keys first"))
    );
    admin(
        &srv,
        AdminOp::DeleteAccessKey,
        AdminInput {
            access_key_id: Some(key.0.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        del("DeleteUser", user.clone()).await.1,
        conflict("must delete policies first")
    );
    admin(
        &srv,
        AdminOp::DeleteUserPolicy,
        AdminInput {
            policy_name: Some("p".into()),
            ..names(Some("hank"), None, None)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        del("DeleteUser", user.clone()).await.1,
        conflict("must remove user from all groups first")
    );
    // a group: members, then policies
    assert_eq!(
        del("DeleteGroup", serde_json::json!({"GroupName": "g"}))
            .await
            .1,
        conflict("must remove users from group first")
    );
    admin(
        &srv,
        AdminOp::RemoveUserFromGroup,
        names(Some("hank"), Some("g"), None),
    )
    .await
    .unwrap();
    assert_eq!(del("DeleteUser", user).await.0, 200);
    assert!(!srv
        .services()
        .catalog
        .principals()
        .by_name
        .contains_key("hank"));
    admin(
        &srv,
        AdminOp::AttachGroupPolicy,
        with_policy(
            names(None, Some("g"), None),
            "m",
            allow(&["dynamodb:*"], "*"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        del("DeleteGroup", serde_json::json!({"GroupName": "g"}))
            .await
            .1,
        conflict("must detach all policies first")
    );

    // a role: inline policies, then managed ones
    create_role(&srv, "r", None).await; // with an inline policy "read"
    admin(
        &srv,
        AdminOp::AttachRolePolicy,
        with_policy(
            names(None, None, Some("r")),
            "m",
            allow(&["dynamodb:*"], "*"),
        ),
    )
    .await
    .unwrap();
    let role = serde_json::json!({"RoleName": "r"});
    assert_eq!(
        del("DeleteRole", role.clone()).await.1,
        conflict("must delete policies first")
    );
    admin(
        &srv,
        AdminOp::DeleteRolePolicy,
        AdminInput {
            policy_name: Some("read".into()),
            ..names(None, None, Some("r"))
        },
    )
    .await
    .unwrap();
    assert_eq!(
        del("DeleteRole", role.clone()).await.1,
        conflict("must detach all policies first")
    );
    assert!(srv.services().catalog.principals().roles.contains_key("r"));
    admin(
        &srv,
        AdminOp::DetachRolePolicy,
        AdminInput {
            policy_name: Some("m".into()),
            ..names(None, None, Some("r"))
        },
    )
    .await
    .unwrap();
    assert_eq!(del("DeleteRole", role).await.0, 200);
    srv.stop().await;
}

#[test]
fn cli_trust_policies_and_conflicts_offline() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = rt.block_on(async {
        TestServer::start_in(tempfile::tempdir().unwrap())
            .await
            .stop()
            .await
    });
    let data = dir.path().to_str().unwrap().to_string();
    let sealdb = |args: &[&str]| offline_cli(&data, args);
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let t1 = trust("Allow", Value::String(user_arn("ivy")));
    let t2 = trust("Allow", Value::String(ACCOUNT.into()));
    let (f1, f2) = (file("t1.json", &t1), file("t2.json", &t2));
    let bad = file(
        "bad.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
    );

    let (ok, out, err) = sealdb(&["iam", "create-role", "--role", "job", "--trust-policy", &f1]);
    assert!(ok, "{out} {err}");
    let (ok, _, err) = sealdb(&[
        "iam",
        "update-assume-role-policy",
        "--role",
        "job",
        "--policy",
        &bad,
    ]);
    assert!(!ok);
    assert!(err.contains("Statement[0].Principal"), "{err}");
    let (ok, out, err) = sealdb(&[
        "iam",
        "update-assume-role-policy",
        "--role",
        "job",
        "--policy",
        &f2,
    ]);
    assert!(ok, "{out} {err}");
    let (ok, out, _) = sealdb(&["iam", "list-roles"]);
    assert!(ok);
    let roles: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(roles["Roles"][0]["AssumeRolePolicyDocument"], t2);

    let policy = source_path("policies/read-only.json").display().to_string();
    let (ok, _, err) = sealdb(&[
        "iam",
        "put-role-policy",
        "--role",
        "job",
        "--policy-name",
        "ro",
        "--file",
        &policy,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = sealdb(&["iam", "delete-role", "--role", "job"]);
    assert!(!ok);
    assert!(
        err.contains("Cannot delete entity, must delete policies first."),
        "{err}"
    );
    let (ok, _, err) = sealdb(&["iam", "create-user", "--user", "ivy"]);
    assert!(ok, "{err}");
    let (ok, _, err) = sealdb(&["iam", "create-access-key", "--user", "ivy"]);
    assert!(ok, "{err}");
    let (ok, _, err) = sealdb(&["iam", "delete-user", "--user", "ivy"]);
    assert!(!ok);
    assert!(
        err.contains("Cannot delete entity, must delete access keys first."),
        "{err}"
    );

    let srv = rt.block_on(TestServer::start_in(dir));
    let index = srv.services().catalog.principals();
    assert_eq!(
        index.roles["job"].record.trust_policy.as_deref(),
        Some(&*t2)
    );
    assert!(index.by_name.contains_key("ivy"));
    rt.block_on(srv.stop());
}
