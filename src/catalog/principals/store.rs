//! Storing directory changes: compile what changed, seal and commit it in one atomic write,
//! then rebuild only the affected part of the index (the changed principals, the members of a
//! changed group, the sessions of a changed role) and publish it. A change that does not
//! compile is rejected before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    Group, GroupRecord, KeyEntry, Principal, PrincipalIndex, PrincipalRecord, Role, RoleRecord,
    SessionAuth, KEY_ACTIVE,
};
use crate::catalog::{blocking, prefixed, Catalog, CatalogError, USER_PREFIX};
use crate::iam::membership::Link;
use crate::storage::{Space, Write};

const GROUP_PREFIX: &[u8] = b"grp/";
const ROLE_PREFIX: &[u8] = b"rol/";

// Our choice: an expired session stays known for a day, so that its key is answered with
// "expired" rather than "invalid"; then it is dropped the next time its role is written.
const EXPIRED_SESSION_RETENTION_SECS: f64 = 86_400.0;

/// The records a directory change writes (`None`: delete), by name.
#[derive(Default)]
pub struct IamChange {
    users: BTreeMap<String, Option<PrincipalRecord>>,
    groups: BTreeMap<String, Option<GroupRecord>>,
    roles: BTreeMap<String, Option<RoleRecord>>,
}

impl IamChange {
    pub fn put_user(&mut self, r: PrincipalRecord) {
        self.users.insert(r.name.clone(), Some(r));
    }
    pub fn delete_user(&mut self, name: &str) {
        self.users.insert(name.to_string(), None);
    }
    pub fn put_group(&mut self, r: GroupRecord) {
        self.groups.insert(r.name.clone(), Some(r));
    }
    pub fn delete_group(&mut self, name: &str) {
        self.groups.insert(name.to_string(), None);
    }
    pub fn put_role(&mut self, r: RoleRecord) {
        self.roles.insert(r.name.clone(), Some(r));
    }
    pub fn delete_role(&mut self, name: &str) {
        self.roles.insert(name.to_string(), None);
    }
}

/// A change, compiled.
#[derive(Default)]
struct Compiled {
    users: Vec<(String, Option<Principal>)>,
    groups: Vec<(String, Option<Group>)>,
    roles: Vec<(String, Option<Role>)>,
}

fn compile(ch: IamChange, account: &str, now: f64) -> Result<Compiled, CatalogError> {
    let mut c = Compiled::default();
    for (name, r) in ch.users {
        let p = r
            .map(|r| Principal::compile(r, account))
            .transpose()
            .map_err(CatalogError::Invalid)?;
        c.users.push((name, p));
    }
    for (name, r) in ch.groups {
        let g = r
            .map(Group::compile)
            .transpose()
            .map_err(CatalogError::Invalid)?;
        c.groups.push((name, g));
    }
    for (name, r) in ch.roles {
        let r = r
            .map(|mut r| {
                r.sessions
                    .retain(|s| s.expires + EXPIRED_SESSION_RETENTION_SECS > now);
                Role::compile(r, account)
            })
            .transpose()
            .map_err(CatalogError::Invalid)?;
        c.roles.push((name, r));
    }
    Ok(c)
}

fn user_keys(index: &mut PrincipalIndex, p: &Principal) {
    for k in &p.record.access_keys {
        index.by_access_key.insert(
            k.id.clone(),
            Arc::new(KeyEntry {
                subject: p.subject.clone(),
                secret: k.secret.clone(),
                active: k.status == KEY_ACTIVE,
                session: None,
            }),
        );
    }
}

/// The next index: `current` with the compiled change applied. Pure (no I/O).
fn rebuild(
    current: &PrincipalIndex,
    c: Compiled,
    account: &str,
) -> Result<PrincipalIndex, CatalogError> {
    let mut next = current.clone();
    let mut affected: BTreeSet<String> = BTreeSet::new();
    {
        let mut m = next
            .membership
            .lock()
            .map_err(|_| CatalogError::Corrupt("membership lock poisoned".into()))?;
        for (name, p) in &c.users {
            let old: BTreeSet<String> = current
                .by_name
                .get(name)
                .map(|o| o.record.groups.clone())
                .unwrap_or_default();
            let new: BTreeSet<String> = p
                .as_ref()
                .map(|p| p.record.groups.clone())
                .unwrap_or_default();
            for g in old.difference(&new) {
                m.remove(Link::UserGroup, name, g);
            }
            for g in new.difference(&old) {
                m.add(Link::UserGroup, name, g);
            }
            affected.insert(name.clone());
        }
        // A group's policies reach its members: the graph says who they are.
        for (name, _) in &c.groups {
            affected.extend(m.members_of(Link::UserGroup, name));
        }
        for (name, r) in &c.roles {
            let old: BTreeSet<String> = current
                .roles
                .get(name)
                .map(|o| {
                    o.record
                        .sessions
                        .iter()
                        .map(|s| s.access_key_id.clone())
                        .collect()
                })
                .unwrap_or_default();
            let new: BTreeSet<String> = r
                .as_ref()
                .map(|r| {
                    r.record
                        .sessions
                        .iter()
                        .map(|s| s.access_key_id.clone())
                        .collect()
                })
                .unwrap_or_default();
            for s in old.difference(&new) {
                m.remove(Link::SessionRole, s, name);
            }
            for s in new.difference(&old) {
                m.add(Link::SessionRole, s, name);
            }
        }
    }

    for (name, g) in c.groups {
        match g {
            Some(g) => next.groups.insert(name, Arc::new(g)),
            None => next.groups.remove(&name),
        };
    }
    for (name, r) in c.roles {
        if let Some(old) = next.roles.remove(&name) {
            for s in &old.record.sessions {
                next.by_access_key.remove(&s.access_key_id);
            }
        }
        if let Some(r) = r {
            let r = Arc::new(r);
            for s in &r.record.sessions {
                next.by_access_key.insert(
                    s.access_key_id.clone(),
                    Arc::new(KeyEntry {
                        subject: Arc::new(r.session_subject(&s.session_name, account)),
                        secret: s.secret.clone(),
                        active: true,
                        session: Some(SessionAuth {
                            token: s.token.clone(),
                            expires: s.expires,
                        }),
                    }),
                );
            }
            next.roles.insert(name, r);
        }
    }

    let mut changed: BTreeMap<String, Option<Principal>> = c.users.into_iter().collect();
    for name in affected {
        if let Some(old) = next.by_name.remove(&name) {
            for k in &old.record.access_keys {
                next.by_access_key.remove(&k.id);
            }
            if !changed.contains_key(&name) {
                // unchanged record, changed group: recompute from what the user has
                changed.insert(name.clone(), Some(old.with_groups(&[])));
            }
        }
        let Some(Some(p)) = changed.remove(&name) else {
            continue;
        };
        // The stored record lists the user's groups; the graph was just updated from it.
        let groups: Vec<Arc<Group>> = p
            .record
            .groups
            .iter()
            .filter_map(|g| next.groups.get(g).cloned())
            .collect();
        let p = Arc::new(p.with_groups(&groups));
        user_keys(&mut next, &p);
        next.by_name.insert(name, p);
    }
    Ok(next)
}

fn decode<T: serde::de::DeserializeOwned>(plain: &[u8]) -> Result<T, CatalogError> {
    serde_json::from_slice(plain).map_err(|e| CatalogError::Corrupt(e.to_string()))
}

impl Catalog {
    /// Loads users, groups and roles and builds the index (start-up).
    pub(crate) fn load_principals(&self) -> Result<PrincipalIndex, CatalogError> {
        let mut ch = IamChange::default();
        for plain in self.open_records(USER_PREFIX)? {
            ch.put_user(decode(&plain)?);
        }
        for plain in self.open_records(GROUP_PREFIX)? {
            ch.put_group(decode(&plain)?);
        }
        for plain in self.open_records(ROLE_PREFIX)? {
            ch.put_role(decode(&plain)?);
        }
        let c = compile(ch, &self.account, crate::util::epoch_seconds_f64())?;
        rebuild(&PrincipalIndex::default(), c, &self.account)
    }

    /// Changes the directory: `change` reads the current index and records the new versions
    /// of the records it changes (returning an error changes nothing). The records are
    /// compiled, written in one atomic commit, and the rebuilt index is published: the next
    /// request sees the change. Serialized with every other catalog mutation.
    pub async fn iam_change<T, E: From<CatalogError>>(
        &self,
        change: impl FnOnce(&PrincipalIndex, &mut IamChange) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = self.mutate.lock().await;
        let current = self.principals();
        let mut ch = IamChange::default();
        let out = change(&current, &mut ch)?;
        let c = compile(ch, &self.account, crate::util::epoch_seconds_f64())?;

        let mut writes = Vec::new();
        for (name, p) in &c.users {
            let (id, rec) = match p {
                Some(p) => (
                    p.record.id.clone(),
                    Some(self.seal_for(USER_PREFIX, &p.record.id, &p.record)?),
                ),
                None => match current.by_name.get(name) {
                    Some(o) => (o.record.id.clone(), None),
                    None => continue,
                },
            };
            writes.push(write(USER_PREFIX, &id, rec));
        }
        for (name, g) in &c.groups {
            let (id, rec) = match g {
                Some(g) => (
                    g.record.id.clone(),
                    Some(self.seal_for(GROUP_PREFIX, &g.record.id, &g.record)?),
                ),
                None => match current.groups.get(name) {
                    Some(o) => (o.record.id.clone(), None),
                    None => continue,
                },
            };
            writes.push(write(GROUP_PREFIX, &id, rec));
        }
        for (name, r) in &c.roles {
            let (id, rec) = match r {
                Some(r) => (
                    r.record.id.clone(),
                    Some(self.seal_for(ROLE_PREFIX, &r.record.id, &r.record)?),
                ),
                None => match current.roles.get(name) {
                    Some(o) => (o.record.id.clone(), None),
                    None => continue,
                },
            };
            writes.push(write(ROLE_PREFIX, &id, rec));
        }
        if !writes.is_empty() {
            let s = self.store.clone();
            blocking(move || {
                s.commit(&[], &writes)?;
                Ok(())
            })
            .await?;
        }
        let next = rebuild(&current, c, &self.account)?;
        self.principals.store(Arc::new(next));
        Ok(out)
    }

    fn seal_for(
        &self,
        prefix: &[u8],
        id: &str,
        value: &impl serde::Serialize,
    ) -> Result<Vec<u8>, CatalogError> {
        self.seal(&prefixed(prefix, id.as_bytes()), value)
    }

    /// Stores a principal record (new or changed).
    pub async fn put_principal(&self, record: PrincipalRecord) -> Result<(), CatalogError> {
        self.iam_change(|_, ch| {
            ch.put_user(record);
            Ok::<_, CatalogError>(())
        })
        .await
    }

    /// Applies `change` to the named user's record under the catalog lock.
    pub async fn update_principal<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut PrincipalRecord) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        self.iam_change(|index, ch| {
            let mut record = index
                .by_name
                .get(name)
                .map(|p| p.record.clone())
                .ok_or_else(|| CatalogError::UserNotFound(name.to_string()))?;
            let out = change(&mut record)?;
            ch.put_user(record);
            Ok(out)
        })
        .await
    }

    pub async fn create_principal(&self, record: PrincipalRecord) -> Result<(), CatalogError> {
        self.iam_change(|index, ch| {
            if index.by_name.contains_key(&record.name) {
                return Err(CatalogError::UserExists(record.name));
            }
            if let Some(k) = record
                .access_keys
                .iter()
                .find(|k| index.by_access_key.contains_key(&k.id))
            {
                return Err(CatalogError::AccessKeyExists(k.id.clone()));
            }
            ch.put_user(record);
            Ok(())
        })
        .await
    }

    pub fn access_key_in_use(&self, id: &str) -> bool {
        self.principals().by_access_key.contains_key(id)
    }
}

fn write(prefix: &[u8], id: &str, sealed: Option<Vec<u8>>) -> Write {
    let key = prefixed(prefix, id.as_bytes());
    match sealed {
        Some(value) => Write::Put {
            space: Space::Meta,
            key,
            value,
        },
        None => Write::Delete {
            space: Space::Meta,
            key,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::principals::{AccessKeyRecord, SessionRecord};
    use zeroize::Zeroizing;

    const ALLOW_GET: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#;

    fn user(name: &str, groups: &[&str]) -> PrincipalRecord {
        PrincipalRecord {
            id: format!("id-{name}"),
            name: name.into(),
            user_id: format!("AIDA{name}"),
            created: 0.0,
            tags: Default::default(),
            policies: Default::default(),
            access_keys: vec![AccessKeyRecord {
                id: format!("AKIA{name}"),
                secret: Zeroizing::new("secret".into()),
                status: KEY_ACTIVE.into(),
                created: 0.0,
            }],
            boundary: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn group(name: &str, docs: &[&str]) -> GroupRecord {
        GroupRecord {
            id: format!("id-{name}"),
            name: name.into(),
            group_id: format!("AGPA{name}"),
            created: 0.0,
            policies: docs
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("p{i}"), d.to_string()))
                .collect(),
            attached: Default::default(),
        }
    }

    fn apply(index: &PrincipalIndex, ch: IamChange) -> PrincipalIndex {
        rebuild(
            index,
            compile(ch, "000000000000", 1000.0).unwrap(),
            "000000000000",
        )
        .unwrap()
    }

    fn policies_of(index: &PrincipalIndex, key: &str) -> usize {
        index.by_access_key[key].subject.policies.len()
    }

    #[test]
    fn group_changes_reach_members_and_share_compiled_policies() {
        let mut ch = IamChange::default();
        ch.put_group(group("devs", &[ALLOW_GET]));
        ch.put_user(user("alice", &["devs"]));
        ch.put_user(user("bob", &[]));
        let idx = apply(&PrincipalIndex::default(), ch);
        assert_eq!(policies_of(&idx, "AKIAalice"), 1);
        assert_eq!(policies_of(&idx, "AKIAbob"), 0);
        // compiled once: the member's subject holds the group's policy itself
        assert!(Arc::ptr_eq(
            &idx.by_access_key["AKIAalice"].subject.policies[0],
            &idx.groups["devs"].policies[0]
        ));
        assert_eq!(idx.members_of("devs"), ["alice"]);

        // a group change alone (no user record written) reaches every member
        let mut ch = IamChange::default();
        ch.put_group(group("devs", &[ALLOW_GET, ALLOW_GET]));
        let idx2 = apply(&idx, ch);
        assert_eq!(policies_of(&idx2, "AKIAalice"), 2);
        assert_eq!(policies_of(&idx2, "AKIAbob"), 0);
        // the old snapshot is untouched
        assert_eq!(policies_of(&idx, "AKIAalice"), 1);

        // leaving the group
        let mut ch = IamChange::default();
        ch.put_user(user("alice", &[]));
        let idx3 = apply(&idx2, ch);
        assert_eq!(policies_of(&idx3, "AKIAalice"), 0);
        assert!(idx3.members_of("devs").is_empty());

        // deleting a user drops its keys
        let mut ch = IamChange::default();
        ch.delete_user("alice");
        let idx4 = apply(&idx3, ch);
        assert!(!idx4.by_access_key.contains_key("AKIAalice"));
        assert!(idx4.by_access_key.contains_key("AKIAbob"));
    }

    #[test]
    fn role_sessions_get_keys_and_old_expired_ones_are_dropped() {
        let session = |id: &str, expires: f64| SessionRecord {
            access_key_id: id.into(),
            secret: Zeroizing::new("s".into()),
            token: Zeroizing::new("t".into()),
            session_name: format!("n{id}"),
            created: 0.0,
            expires,
        };
        let role = RoleRecord {
            id: "r".into(),
            name: "reader".into(),
            role_id: "AROAX".into(),
            created: 0.0,
            tags: Default::default(),
            policies: [("p".to_string(), ALLOW_GET.to_string())].into(),
            attached: Default::default(),
            boundary: Some(ALLOW_GET.into()),
            trust_policy: None,
            max_session_secs: 3600,
            sessions: vec![
                session("ASIALIVE", 2000.0),
                session("ASIARECENT", 900.0),
                session("ASIAANCIENT", 1000.0 - EXPIRED_SESSION_RETENTION_SECS - 1.0),
            ],
        };
        let mut ch = IamChange::default();
        ch.put_role(role);
        let idx = apply(&PrincipalIndex::default(), ch);
        let live = &idx.by_access_key["ASIALIVE"];
        assert!(!live.expired(1000.0));
        assert!(live.subject.boundary.is_some());
        assert_eq!(
            live.subject.info.arn,
            "arn:aws:sts::000000000000:assumed-role/reader/nASIALIVE"
        );
        assert_eq!(live.subject.info.userid, "AROAX:nASIALIVE");
        assert!(idx.by_access_key["ASIARECENT"].expired(1000.0));
        assert!(!idx.by_access_key.contains_key("ASIAANCIENT"));

        let mut ch = IamChange::default();
        ch.delete_role("reader");
        let idx = apply(&idx, ch);
        assert!(idx.by_access_key.is_empty());
    }
}
