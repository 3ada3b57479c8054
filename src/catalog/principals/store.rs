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
                Role::compile(r)
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
        if let Ok(mut p) = self.principals.write() {
            *p = Arc::new(next);
        }
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

    pub async fn delete_principal(&self, name: &str) -> Result<(), CatalogError> {
        self.iam_change(|index, ch| {
            if !index.by_name.contains_key(name) {
                return Err(CatalogError::UserNotFound(name.to_string()));
            }
            ch.delete_user(name);
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
