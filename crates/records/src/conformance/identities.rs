//! The checks of [`Identities`](crate::store::Identities): users, tokens, projects, members.

use super::*;

pub(super) fn users(s: &dyn Store) {
    let u = s.create_user("conf-user", "Conformance", true).expect("create a user");
    assert_eq!((u.username.as_str(), u.name.as_str(), u.admin), ("conf-user", "Conformance", true));
    assert_eq!(s.user(u.id).unwrap(), Some(u.clone()), "a user reads back by id");
    assert_eq!(s.user_by_username("conf-user").unwrap(), Some(u.clone()), "and by name");
    assert!(matches!(s.create_user("conf-user", "Again", false), Err(StoreError::Exists(_))), "names are unique");
    assert_eq!(s.user_by_username("conf-nobody").unwrap(), None);
    assert_eq!(s.user(i64::MAX).unwrap(), None);
}

pub(super) fn tokens(s: &dyn Store) {
    let u = s.create_user("conf-token-owner", "Owner", false).unwrap();
    let d = digest("conf-token");
    let t = s.create_token(u.id, &d, &[Scope::ReadApi, Scope::Api], Some("2031-01-02")).unwrap();
    assert_eq!(
        (t.user_id, t.scopes.as_slice(), t.expires_at.as_deref()),
        (u.id, &[Scope::ReadApi, Scope::Api][..], Some("2031-01-02"))
    );
    assert!(!t.revoked);
    assert_eq!(s.personal_token(&d).unwrap(), Some((t.clone(), u.clone())), "a token reads back with its user");
    assert_eq!(s.personal_token_by_id(t.id).unwrap(), Some(t.clone()));
    assert_eq!(s.personal_token(&digest("conf-no-such-token")).unwrap(), None);
    let plain = s.create_token(u.id, &digest("conf-token-2"), &[], None).unwrap();
    assert_eq!(s.personal_token_by_id(plain.id).unwrap().map(|t| (t.scopes, t.expires_at)), Some((vec![], None)));
    assert!(s.revoke_token(t.id).unwrap(), "revoked");
    assert!(!s.revoke_token(t.id).unwrap(), "once");
    assert!(!s.revoke_token(i64::MAX).unwrap(), "no such token");
    let revoked = s.personal_token(&d).unwrap().expect("a revoked token still reads back");
    assert!(revoked.0.revoked);
}

pub(super) fn projects_and_members(s: &dyn Store) {
    let p = s.create_project("conf/members", true).unwrap();
    assert!(p.public && p.keep_latest_artifact, "a new project keeps its latest artifacts");
    assert_eq!(s.project(&ProjectRef::Id(p.id)).unwrap(), Some(p.clone()));
    assert_eq!(s.project(&ProjectRef::Path("conf/members".into())).unwrap(), Some(p.clone()));
    assert_eq!(s.project(&ProjectRef::Path("conf/none".into())).unwrap(), None);
    assert!(matches!(s.create_project("conf/members", false), Err(StoreError::Exists(_))), "paths are unique");

    assert!(s.set_keep_latest_artifact(p.id, false).unwrap());
    assert!(!s.project(&ProjectRef::Id(p.id)).unwrap().unwrap().keep_latest_artifact);
    assert!(!s.set_keep_latest_artifact(i64::MAX, true).unwrap(), "no such project");

    let u = s.create_user("conf-member", "Member", false).unwrap();
    assert_eq!(s.role(p.id, u.id).unwrap(), None);
    s.set_member(p.id, u.id, Role::Reporter).unwrap();
    assert_eq!(s.role(p.id, u.id).unwrap(), Some(Role::Reporter));
    s.set_member(p.id, u.id, Role::Maintainer).unwrap();
    assert_eq!(s.role(p.id, u.id).unwrap(), Some(Role::Maintainer), "a member's role is replaced");
}
