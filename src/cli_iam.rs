//! `sealdb iam ...` for groups, roles, role sessions, boundaries, tags, key status and the
//! simulator of a stored principal. Each command becomes one admin request, sent signed to a
//! running server (`--endpoint`) or run on a stopped server's data dir (`--data-dir`), like the
//! user commands in main.rs.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use sealdb::ops::admin::{AdminInput, AdminTag};
use sealdb::protocol::AdminOp;

use crate::Target;

#[derive(Subcommand)]
pub enum IamDirectoryCommand {
    CreateGroup {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a group that has no members and no policies.
    DeleteGroup {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        target: Target,
    },
    ListGroups {
        #[command(flatten)]
        target: Target,
    },
    AddUserToGroup {
        #[arg(long)]
        group: String,
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    RemoveUserFromGroup {
        #[arg(long)]
        group: String,
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    /// Attach a policy document (JSON file) to a group under a name.
    AttachGroupPolicy {
        #[arg(long)]
        group: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    DetachGroupPolicy {
        #[arg(long)]
        group: String,
        #[arg(long)]
        policy_name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Put an inline policy (JSON file) on a group.
    PutGroupPolicy {
        #[arg(long)]
        group: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    DeleteGroupPolicy {
        #[arg(long)]
        group: String,
        #[arg(long)]
        policy_name: String,
        #[command(flatten)]
        target: Target,
    },
    CreateRole {
        #[arg(long)]
        role: String,
        /// Longest session, in seconds (3600-43200).
        #[arg(long)]
        max_session_duration: Option<u64>,
        /// Permissions boundary document (JSON file).
        #[arg(long)]
        boundary_file: Option<PathBuf>,
        /// Trust policy (AssumeRolePolicyDocument, JSON file): who may create sessions of the
        /// role. Default: the account (`arn:aws:iam::ACCOUNT:root`), so a caller also needs an
        /// identity-based policy allowing sts:AssumeRole on the role.
        #[arg(long)]
        trust_policy: Option<PathBuf>,
        /// KEY=VALUE, repeatable.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Replace a role's trust policy (JSON file).
    UpdateAssumeRolePolicy {
        #[arg(long)]
        role: String,
        #[arg(long)]
        policy: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a role (once its policies are deleted and detached) and every session of it.
    DeleteRole {
        #[arg(long)]
        role: String,
        #[command(flatten)]
        target: Target,
    },
    ListRoles {
        #[command(flatten)]
        target: Target,
    },
    AttachRolePolicy {
        #[arg(long)]
        role: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    DetachRolePolicy {
        #[arg(long)]
        role: String,
        #[arg(long)]
        policy_name: String,
        #[command(flatten)]
        target: Target,
    },
    PutRolePolicy {
        #[arg(long)]
        role: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    DeleteRolePolicy {
        #[arg(long)]
        role: String,
        #[arg(long)]
        policy_name: String,
        #[command(flatten)]
        target: Target,
    },
    PutUserPermissionsBoundary {
        #[arg(long)]
        user: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    DeleteUserPermissionsBoundary {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    PutRolePermissionsBoundary {
        #[arg(long)]
        role: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    DeleteRolePermissionsBoundary {
        #[arg(long)]
        role: String,
        #[command(flatten)]
        target: Target,
    },
    /// Add or overwrite tags (KEY=VALUE, repeatable) of a user: `aws:PrincipalTag/KEY`.
    TagUser {
        #[arg(long)]
        user: String,
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    TagRole {
        #[arg(long)]
        role: String,
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Issue temporary credentials (access key, secret, session token) for a role session.
    CreateRoleSession {
        #[arg(long)]
        role: String,
        #[arg(long)]
        session_name: String,
        /// Lifetime in seconds (900 up to the role's maximum; default 3600).
        #[arg(long)]
        duration_seconds: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Activate or deactivate a user's access key.
    UpdateAccessKey {
        #[arg(long)]
        access_key_id: String,
        /// Active or Inactive.
        #[arg(long)]
        status: String,
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Simulate a request for a stored user or role: --input is the JSON of `sealdb policy
    /// simulate` without identity_policies and permissions_boundary.
    SimulatePrincipalPolicy {
        #[arg(long, conflicts_with = "role")]
        user: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, requires = "role")]
        session_name: Option<String>,
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn tags(list: &[String]) -> Result<Vec<AdminTag>, String> {
    list.iter()
        .map(|t| {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| format!("--tag {t}: expected KEY=VALUE"))?;
            Ok(AdminTag {
                key: Some(k.to_string()),
                value: Some(v.to_string()),
            })
        })
        .collect()
}

fn named(group: Option<String>, role: Option<String>, user: Option<String>) -> AdminInput {
    AdminInput {
        group_name: group,
        role_name: role,
        user_name: user,
        ..Default::default()
    }
}

fn with_policy(mut i: AdminInput, name: String, doc: Option<String>) -> AdminInput {
    i.policy_name = Some(name);
    i.policy_document = doc;
    i
}

/// The admin request a command stands for.
pub fn request(cmd: IamDirectoryCommand) -> Result<(AdminOp, AdminInput, Target), String> {
    use IamDirectoryCommand as C;
    let g = |s: String| named(Some(s), None, None);
    let r = |s: String| named(None, Some(s), None);
    let u = |s: String| named(None, None, Some(s));
    Ok(match cmd {
        C::CreateGroup { group, target } => (AdminOp::CreateGroup, g(group), target),
        C::DeleteGroup { group, target } => (AdminOp::DeleteGroup, g(group), target),
        C::ListGroups { target } => (AdminOp::ListGroups, AdminInput::default(), target),
        C::AddUserToGroup {
            group,
            user,
            target,
        } => (
            AdminOp::AddUserToGroup,
            named(Some(group), None, Some(user)),
            target,
        ),
        C::RemoveUserFromGroup {
            group,
            user,
            target,
        } => (
            AdminOp::RemoveUserFromGroup,
            named(Some(group), None, Some(user)),
            target,
        ),
        C::AttachGroupPolicy {
            group,
            policy_name,
            file,
            target,
        } => (
            AdminOp::AttachGroupPolicy,
            with_policy(g(group), policy_name, Some(read(&file)?)),
            target,
        ),
        C::DetachGroupPolicy {
            group,
            policy_name,
            target,
        } => (
            AdminOp::DetachGroupPolicy,
            with_policy(g(group), policy_name, None),
            target,
        ),
        C::PutGroupPolicy {
            group,
            policy_name,
            file,
            target,
        } => (
            AdminOp::PutGroupPolicy,
            with_policy(g(group), policy_name, Some(read(&file)?)),
            target,
        ),
        C::DeleteGroupPolicy {
            group,
            policy_name,
            target,
        } => (
            AdminOp::DeleteGroupPolicy,
            with_policy(g(group), policy_name, None),
            target,
        ),
        C::CreateRole {
            role,
            max_session_duration,
            boundary_file,
            trust_policy,
            tags: t,
            target,
        } => {
            let mut i = r(role);
            i.max_session_duration = max_session_duration;
            i.permissions_boundary = boundary_file.as_deref().map(read).transpose()?;
            i.assume_role_policy_document = trust_policy.as_deref().map(read).transpose()?;
            i.tags = Some(tags(&t)?).filter(|v| !v.is_empty());
            (AdminOp::CreateRole, i, target)
        }
        C::UpdateAssumeRolePolicy {
            role,
            policy,
            target,
        } => {
            let mut i = r(role);
            i.policy_document = Some(read(&policy)?);
            (AdminOp::UpdateAssumeRolePolicy, i, target)
        }
        C::DeleteRole { role, target } => (AdminOp::DeleteRole, r(role), target),
        C::ListRoles { target } => (AdminOp::ListRoles, AdminInput::default(), target),
        C::AttachRolePolicy {
            role,
            policy_name,
            file,
            target,
        } => (
            AdminOp::AttachRolePolicy,
            with_policy(r(role), policy_name, Some(read(&file)?)),
            target,
        ),
        C::DetachRolePolicy {
            role,
            policy_name,
            target,
        } => (
            AdminOp::DetachRolePolicy,
            with_policy(r(role), policy_name, None),
            target,
        ),
        C::PutRolePolicy {
            role,
            policy_name,
            file,
            target,
        } => (
            AdminOp::PutRolePolicy,
            with_policy(r(role), policy_name, Some(read(&file)?)),
            target,
        ),
        C::DeleteRolePolicy {
            role,
            policy_name,
            target,
        } => (
            AdminOp::DeleteRolePolicy,
            with_policy(r(role), policy_name, None),
            target,
        ),
        C::PutUserPermissionsBoundary { user, file, target } => {
            let mut i = u(user);
            i.permissions_boundary = Some(read(&file)?);
            (AdminOp::PutUserPermissionsBoundary, i, target)
        }
        C::DeleteUserPermissionsBoundary { user, target } => {
            (AdminOp::DeleteUserPermissionsBoundary, u(user), target)
        }
        C::PutRolePermissionsBoundary { role, file, target } => {
            let mut i = r(role);
            i.permissions_boundary = Some(read(&file)?);
            (AdminOp::PutRolePermissionsBoundary, i, target)
        }
        C::DeleteRolePermissionsBoundary { role, target } => {
            (AdminOp::DeleteRolePermissionsBoundary, r(role), target)
        }
        C::TagUser {
            user,
            tags: t,
            target,
        } => {
            let mut i = u(user);
            i.tags = Some(tags(&t)?);
            (AdminOp::TagUser, i, target)
        }
        C::TagRole {
            role,
            tags: t,
            target,
        } => {
            let mut i = r(role);
            i.tags = Some(tags(&t)?);
            (AdminOp::TagRole, i, target)
        }
        C::CreateRoleSession {
            role,
            session_name,
            duration_seconds,
            target,
        } => {
            let mut i = r(role);
            i.role_session_name = Some(session_name);
            i.duration_seconds = duration_seconds;
            (AdminOp::CreateRoleSession, i, target)
        }
        C::UpdateAccessKey {
            access_key_id,
            status,
            user,
            target,
        } => {
            let mut i = named(None, None, user);
            i.access_key_id = Some(access_key_id);
            i.status = Some(status);
            (AdminOp::UpdateAccessKey, i, target)
        }
        C::SimulatePrincipalPolicy {
            user,
            role,
            session_name,
            input,
            target,
        } => {
            if user.is_none() && role.is_none() {
                return Err("give --user or --role".into());
            }
            let req: serde_json::Value = serde_json::from_str(&read(&input)?)
                .map_err(|e| format!("{}: not JSON: {e}", input.display()))?;
            for forbidden in ["identity_policies", "permissions_boundary", "principal"] {
                if req.get(forbidden).is_some() {
                    return Err(format!(
                        "{}: {forbidden} comes from the stored principal; remove it",
                        input.display()
                    ));
                }
            }
            let mut i = named(None, role, user);
            i.role_session_name = session_name;
            i.action = req["action"].as_str().map(str::to_string);
            i.resource = req["resource"].as_str().map(str::to_string);
            i.context = req.get("context").cloned();
            i.resource_policy = req.get("resource_policy").cloned();
            (AdminOp::SimulatePrincipalPolicy, i, target)
        }
    })
}
