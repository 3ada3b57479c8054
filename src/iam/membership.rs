//! Who belongs to what: users to groups, role sessions to roles.
//!
//! Held in casbin's RBAC model (its role manager: `g, member, group` links) behind the
//! [`Membership`] trait, so the graph store can change without touching the catalog. casbin
//! only answers membership questions here; IAM documents are evaluated by `iam::eval` (casbin's
//! matchers do not follow IAM's semantics, see DESIGN.md section 6).
//!
//! Membership is consulted when the directory changes (a user joins a group, a group's policies
//! change, a session is issued), never on the request path: every principal's effective policy
//! list is recomputed then and cached in the principal index.

use casbin::{DefaultRoleManager, RoleManager};

/// The two kinds of links: a user in a group, a role session of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    UserGroup,
    SessionRole,
}

impl Link {
    /// Members and containers live in one graph: prefixes keep a user and a group (or a
    /// session and a role) of the same name apart.
    fn names(self, member: &str, container: &str) -> (String, String) {
        match self {
            Link::UserGroup => (format!("user:{member}"), format!("group:{container}")),
            Link::SessionRole => (format!("session:{member}"), format!("role:{container}")),
        }
    }

    fn member_prefix(self) -> &'static str {
        match self {
            Link::UserGroup => "user:",
            Link::SessionRole => "session:",
        }
    }

    fn container_prefix(self) -> &'static str {
        match self {
            Link::UserGroup => "group:",
            Link::SessionRole => "role:",
        }
    }
}

/// A membership graph. Implementations need not be fast: they are read when the directory
/// changes, not per request.
pub trait Membership: Send + Sync {
    fn add(&mut self, link: Link, member: &str, container: &str);
    fn remove(&mut self, link: Link, member: &str, container: &str);
    /// The containers `member` belongs to directly, sorted.
    fn containers_of(&self, link: Link, member: &str) -> Vec<String>;
    /// The direct members of `container`, sorted.
    fn members_of(&self, link: Link, container: &str) -> Vec<String>;
}

// IAM has no nested groups and a session belongs to one role: one level of links suffices.
const MAX_HIERARCHY: usize = 1;

/// [`Membership`] on casbin's default role manager.
pub struct CasbinMembership {
    rm: DefaultRoleManager,
}

impl Default for CasbinMembership {
    fn default() -> Self {
        CasbinMembership {
            rm: DefaultRoleManager::new(MAX_HIERARCHY),
        }
    }
}

fn strip_sorted(names: Vec<String>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.strip_prefix(prefix).map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Membership for CasbinMembership {
    fn add(&mut self, link: Link, member: &str, container: &str) {
        let (m, c) = link.names(member, container);
        self.rm.add_link(&m, &c, None);
    }

    fn remove(&mut self, link: Link, member: &str, container: &str) {
        let (m, c) = link.names(member, container);
        // casbin reports a link between unknown names as an error: nothing to remove then.
        let _ = self.rm.delete_link(&m, &c, None);
    }

    fn containers_of(&self, link: Link, member: &str) -> Vec<String> {
        let (m, _) = link.names(member, "");
        strip_sorted(self.rm.get_roles(&m, None), link.container_prefix())
    }

    fn members_of(&self, link: Link, container: &str) -> Vec<String> {
        let (_, c) = link.names("", container);
        strip_sorted(self.rm.get_users(&c, None), link.member_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_added_queried_and_removed() {
        let mut m = CasbinMembership::default();
        m.add(Link::UserGroup, "alice", "devs");
        m.add(Link::UserGroup, "alice", "ops");
        m.add(Link::UserGroup, "bob", "devs");
        m.add(Link::SessionRole, "ASIA1", "reader");
        assert_eq!(m.containers_of(Link::UserGroup, "alice"), ["devs", "ops"]);
        assert_eq!(m.members_of(Link::UserGroup, "devs"), ["alice", "bob"]);
        assert_eq!(m.members_of(Link::SessionRole, "reader"), ["ASIA1"]);
        // a user and a group of the same name do not meet
        m.add(Link::UserGroup, "devs", "ops");
        assert_eq!(m.members_of(Link::UserGroup, "devs"), ["alice", "bob"]);
        assert!(m.containers_of(Link::SessionRole, "alice").is_empty());

        m.remove(Link::UserGroup, "alice", "devs");
        assert_eq!(m.containers_of(Link::UserGroup, "alice"), ["ops"]);
        assert_eq!(m.members_of(Link::UserGroup, "devs"), ["bob"]);
        // removing what is not there is harmless
        m.remove(Link::UserGroup, "nobody", "nowhere");
        m.remove(Link::SessionRole, "ASIA1", "reader");
        assert!(m.members_of(Link::SessionRole, "reader").is_empty());
    }
}
