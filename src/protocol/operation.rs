//! `X-Amz-Target` -> [`Operation`]. Every DynamoDB operation name is known; the ones sealdb
//! does not implement yet answer with an error naming them, never a crash.

use crate::error::ApiError;

pub const DYNAMODB_PREFIX: &str = "DynamoDB_20120810.";
/// sealdb's own administration API (principals, keys), authorized with `sealdb:*` actions.
pub const ADMIN_PREFIX: &str = "SealDBAdmin_20261101.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateTable,
    DescribeTable,
    ListTables,
    DeleteTable,
    DescribeLimits,
    DescribeEndpoints,
    PutItem,
    GetItem,
    DeleteItem,
    UpdateItem,
    Query,
    Scan,
    BatchGetItem,
    BatchWriteItem,
    TransactWriteItems,
    TransactGetItems,
    UpdateTable,
    UpdateTimeToLive,
    DescribeTimeToLive,
    TagResource,
    UntagResource,
    ListTagsOfResource,
    PutResourcePolicy,
    GetResourcePolicy,
    DeleteResourcePolicy,
    /// A DynamoDB operation sealdb does not implement yet.
    NotImplemented(&'static str),
    Admin(AdminOp),
    /// sealdb's key administration API (authorized as `sealdb:<name>` on the table ARN).
    Keys(KeysOp),
}

/// Key administration operations (`SealDBAdmin_20261101.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysOp {
    KeysStatus,
    RotateDataKey,
    ReencryptTable,
    RetireGeneration,
}

impl KeysOp {
    pub const ALL: [KeysOp; 4] = [
        KeysOp::KeysStatus,
        KeysOp::RotateDataKey,
        KeysOp::ReencryptTable,
        KeysOp::RetireGeneration,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            KeysOp::KeysStatus => "KeysStatus",
            KeysOp::RotateDataKey => "RotateDataKey",
            KeysOp::ReencryptTable => "ReencryptTable",
            KeysOp::RetireGeneration => "RetireGeneration",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOp {
    CreateUser,
    DeleteUser,
    ListUsers,
    CreateAccessKey,
    DeleteAccessKey,
    ListAccessKeys,
    PutUserPolicy,
    DeleteUserPolicy,
    // Groups, roles, sessions, boundaries, tags (issue 5): parsed through `AdminOp::DIRECTORY`.
    CreateGroup,
    DeleteGroup,
    ListGroups,
    AddUserToGroup,
    RemoveUserFromGroup,
    PutGroupPolicy,
    DeleteGroupPolicy,
    AttachGroupPolicy,
    DetachGroupPolicy,
    CreateRole,
    DeleteRole,
    ListRoles,
    PutRolePolicy,
    DeleteRolePolicy,
    AttachRolePolicy,
    DetachRolePolicy,
    PutUserPermissionsBoundary,
    DeleteUserPermissionsBoundary,
    PutRolePermissionsBoundary,
    DeleteRolePermissionsBoundary,
    TagUser,
    TagRole,
    CreateRoleSession,
    UpdateAccessKey,
    SimulatePrincipalPolicy,
    /// Replaces a role's trust policy (IAM UpdateAssumeRolePolicy).
    UpdateAssumeRolePolicy,
}

impl AdminOp {
    /// The directory operations beyond users and access keys.
    pub const DIRECTORY: [AdminOp; 26] = [
        AdminOp::CreateGroup,
        AdminOp::DeleteGroup,
        AdminOp::ListGroups,
        AdminOp::AddUserToGroup,
        AdminOp::RemoveUserFromGroup,
        AdminOp::PutGroupPolicy,
        AdminOp::DeleteGroupPolicy,
        AdminOp::AttachGroupPolicy,
        AdminOp::DetachGroupPolicy,
        AdminOp::CreateRole,
        AdminOp::DeleteRole,
        AdminOp::ListRoles,
        AdminOp::PutRolePolicy,
        AdminOp::DeleteRolePolicy,
        AdminOp::AttachRolePolicy,
        AdminOp::DetachRolePolicy,
        AdminOp::PutUserPermissionsBoundary,
        AdminOp::DeleteUserPermissionsBoundary,
        AdminOp::PutRolePermissionsBoundary,
        AdminOp::DeleteRolePermissionsBoundary,
        AdminOp::TagUser,
        AdminOp::TagRole,
        AdminOp::CreateRoleSession,
        AdminOp::UpdateAccessKey,
        AdminOp::SimulatePrincipalPolicy,
        AdminOp::UpdateAssumeRolePolicy,
    ];
}

/// Every operation in DynamoDB's 2012-08-10 service model.
const DYNAMODB_OPERATIONS: &[&str] = &[
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "CreateBackup",
    "CreateGlobalTable",
    "CreateTable",
    "DeleteBackup",
    "DeleteItem",
    "DeleteResourcePolicy",
    "DeleteTable",
    "DescribeBackup",
    "DescribeContinuousBackups",
    "DescribeContributorInsights",
    "DescribeEndpoints",
    "DescribeExport",
    "DescribeGlobalTable",
    "DescribeGlobalTableSettings",
    "DescribeImport",
    "DescribeKinesisStreamingDestination",
    "DescribeLimits",
    "DescribeTable",
    "DescribeTableReplicaAutoScaling",
    "DescribeTimeToLive",
    "DisableKinesisStreamingDestination",
    "EnableKinesisStreamingDestination",
    "ExecuteStatement",
    "ExecuteTransaction",
    "ExportTableToPointInTime",
    "GetItem",
    "GetResourcePolicy",
    "ImportTable",
    "ListBackups",
    "ListContributorInsights",
    "ListExports",
    "ListGlobalTables",
    "ListImports",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "PutResourcePolicy",
    "Query",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateContinuousBackups",
    "UpdateContributorInsights",
    "UpdateGlobalTable",
    "UpdateGlobalTableSettings",
    "UpdateItem",
    "UpdateKinesisStreamingDestination",
    "UpdateTable",
    "UpdateTableReplicaAutoScaling",
    "UpdateTimeToLive",
];

impl Operation {
    pub fn parse(target: Option<&str>) -> Result<Operation, ApiError> {
        let unknown = || ApiError::UnknownOperation("An unknown operation was requested.".into());
        let target = target.ok_or_else(unknown)?;
        if let Some(name) = target.strip_prefix(DYNAMODB_PREFIX) {
            return Ok(match name {
                "CreateTable" => Operation::CreateTable,
                "DescribeTable" => Operation::DescribeTable,
                "ListTables" => Operation::ListTables,
                "DeleteTable" => Operation::DeleteTable,
                "DescribeLimits" => Operation::DescribeLimits,
                "DescribeEndpoints" => Operation::DescribeEndpoints,
                "PutItem" => Operation::PutItem,
                "GetItem" => Operation::GetItem,
                "DeleteItem" => Operation::DeleteItem,
                "UpdateItem" => Operation::UpdateItem,
                "Query" => Operation::Query,
                "Scan" => Operation::Scan,
                "BatchGetItem" => Operation::BatchGetItem,
                "BatchWriteItem" => Operation::BatchWriteItem,
                "TransactWriteItems" => Operation::TransactWriteItems,
                "TransactGetItems" => Operation::TransactGetItems,
                "UpdateTable" => Operation::UpdateTable,
                "UpdateTimeToLive" => Operation::UpdateTimeToLive,
                "DescribeTimeToLive" => Operation::DescribeTimeToLive,
                "TagResource" => Operation::TagResource,
                "UntagResource" => Operation::UntagResource,
                "ListTagsOfResource" => Operation::ListTagsOfResource,
                "PutResourcePolicy" => Operation::PutResourcePolicy,
                "GetResourcePolicy" => Operation::GetResourcePolicy,
                "DeleteResourcePolicy" => Operation::DeleteResourcePolicy,
                other => match DYNAMODB_OPERATIONS.iter().find(|n| **n == other) {
                    Some(n) => Operation::NotImplemented(n),
                    None => return Err(unknown()),
                },
            });
        }
        if let Some(name) = target.strip_prefix(ADMIN_PREFIX) {
            if let Some(k) = KeysOp::ALL.iter().find(|k| k.name() == name) {
                return Ok(Operation::Keys(*k));
            }
            if let Some(a) = AdminOp::DIRECTORY.iter().find(|a| a.name() == name) {
                return Ok(Operation::Admin(*a));
            }
            return Ok(Operation::Admin(match name {
                "CreateUser" => AdminOp::CreateUser,
                "DeleteUser" => AdminOp::DeleteUser,
                "ListUsers" => AdminOp::ListUsers,
                "CreateAccessKey" => AdminOp::CreateAccessKey,
                "DeleteAccessKey" => AdminOp::DeleteAccessKey,
                "ListAccessKeys" => AdminOp::ListAccessKeys,
                "PutUserPolicy" => AdminOp::PutUserPolicy,
                "DeleteUserPolicy" => AdminOp::DeleteUserPolicy,
                _ => return Err(unknown()),
            }));
        }
        Err(unknown())
    }

    pub fn name(&self) -> &'static str {
        match self {
            Operation::CreateTable => "CreateTable",
            Operation::DescribeTable => "DescribeTable",
            Operation::ListTables => "ListTables",
            Operation::DeleteTable => "DeleteTable",
            Operation::DescribeLimits => "DescribeLimits",
            Operation::DescribeEndpoints => "DescribeEndpoints",
            Operation::PutItem => "PutItem",
            Operation::GetItem => "GetItem",
            Operation::DeleteItem => "DeleteItem",
            Operation::UpdateItem => "UpdateItem",
            Operation::Query => "Query",
            Operation::Scan => "Scan",
            Operation::BatchGetItem => "BatchGetItem",
            Operation::BatchWriteItem => "BatchWriteItem",
            Operation::TransactWriteItems => "TransactWriteItems",
            Operation::TransactGetItems => "TransactGetItems",
            Operation::UpdateTable => "UpdateTable",
            Operation::UpdateTimeToLive => "UpdateTimeToLive",
            Operation::DescribeTimeToLive => "DescribeTimeToLive",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::ListTagsOfResource => "ListTagsOfResource",
            Operation::PutResourcePolicy => "PutResourcePolicy",
            Operation::GetResourcePolicy => "GetResourcePolicy",
            Operation::DeleteResourcePolicy => "DeleteResourcePolicy",
            Operation::NotImplemented(n) => n,
            Operation::Admin(a) => a.name(),
            Operation::Keys(k) => k.name(),
        }
    }
}

impl AdminOp {
    pub fn name(&self) -> &'static str {
        match self {
            AdminOp::CreateUser => "CreateUser",
            AdminOp::DeleteUser => "DeleteUser",
            AdminOp::ListUsers => "ListUsers",
            AdminOp::CreateAccessKey => "CreateAccessKey",
            AdminOp::DeleteAccessKey => "DeleteAccessKey",
            AdminOp::ListAccessKeys => "ListAccessKeys",
            AdminOp::PutUserPolicy => "PutUserPolicy",
            AdminOp::DeleteUserPolicy => "DeleteUserPolicy",
            AdminOp::CreateGroup => "CreateGroup",
            AdminOp::DeleteGroup => "DeleteGroup",
            AdminOp::ListGroups => "ListGroups",
            AdminOp::AddUserToGroup => "AddUserToGroup",
            AdminOp::RemoveUserFromGroup => "RemoveUserFromGroup",
            AdminOp::PutGroupPolicy => "PutGroupPolicy",
            AdminOp::DeleteGroupPolicy => "DeleteGroupPolicy",
            AdminOp::AttachGroupPolicy => "AttachGroupPolicy",
            AdminOp::DetachGroupPolicy => "DetachGroupPolicy",
            AdminOp::CreateRole => "CreateRole",
            AdminOp::DeleteRole => "DeleteRole",
            AdminOp::ListRoles => "ListRoles",
            AdminOp::PutRolePolicy => "PutRolePolicy",
            AdminOp::DeleteRolePolicy => "DeleteRolePolicy",
            AdminOp::AttachRolePolicy => "AttachRolePolicy",
            AdminOp::DetachRolePolicy => "DetachRolePolicy",
            AdminOp::PutUserPermissionsBoundary => "PutUserPermissionsBoundary",
            AdminOp::DeleteUserPermissionsBoundary => "DeleteUserPermissionsBoundary",
            AdminOp::PutRolePermissionsBoundary => "PutRolePermissionsBoundary",
            AdminOp::DeleteRolePermissionsBoundary => "DeleteRolePermissionsBoundary",
            AdminOp::TagUser => "TagUser",
            AdminOp::TagRole => "TagRole",
            AdminOp::CreateRoleSession => "CreateRoleSession",
            AdminOp::UpdateAccessKey => "UpdateAccessKey",
            AdminOp::SimulatePrincipalPolicy => "SimulatePrincipalPolicy",
            AdminOp::UpdateAssumeRolePolicy => "UpdateAssumeRolePolicy",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Operation::parse(Some("DynamoDB_20120810.PutItem")).unwrap(),
            Operation::PutItem
        );
        assert_eq!(
            Operation::parse(Some("DynamoDB_20120810.CreateBackup")).unwrap(),
            Operation::NotImplemented("CreateBackup")
        );
        for bad in [
            None,
            Some("DynamoDB_20120810.Nope"),
            Some("Other.PutItem"),
            Some(""),
        ] {
            assert!(matches!(
                Operation::parse(bad),
                Err(ApiError::UnknownOperation(_))
            ));
        }
    }
}
