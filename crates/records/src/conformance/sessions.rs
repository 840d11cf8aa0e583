//! The checks of [`Sessions`](crate::store::Sessions): browser sessions and grants.

use super::*;

pub(super) fn sessions(s: &dyn Store) {
    let keep = Keep { per_token: 2, total: 100 };
    let token = digest("conf-session-token");
    let session = |n: &str, expires_at| BrowserSession { id: digest(n), token, expires_at };
    s.open_session(&session("conf-s1", 5000), keep, 1000).unwrap();
    assert_eq!(s.browser_session(&digest("conf-s1"), 4999).unwrap(), Some(token));
    assert_eq!(s.browser_session(&digest("conf-s1"), 5000).unwrap(), None, "expired");
    s.open_session(&session("conf-s2", 6000), keep, 1000).unwrap();
    s.open_session(&session("conf-s3", 7000), keep, 1000).unwrap();
    assert_eq!(s.browser_session(&digest("conf-s1"), 1000).unwrap(), None, "past the bound of a token");
    assert_eq!(s.browser_session(&digest("conf-s3"), 1000).unwrap(), Some(token));
    s.close_session(&digest("conf-s3")).unwrap();
    assert_eq!(s.browser_session(&digest("conf-s3"), 1000).unwrap(), None, "closed");

    let small = Keep { per_token: 10, total: 2 };
    for n in 0..3 {
        let other = BrowserSession {
            id: digest(&format!("conf-t{n}")),
            token: digest(&format!("conf-tt{n}")),
            expires_at: 9000,
        };
        s.open_session(&other, small, 1000).unwrap();
    }
    assert_eq!(s.browser_session(&digest("conf-t0"), 1000).unwrap(), None, "past the bound of all");
    assert!(s.browser_session(&digest("conf-t1"), 1000).unwrap().is_some(), "the bound, not fewer");
    assert!(s.browser_session(&digest("conf-t2"), 1000).unwrap().is_some());
}

pub(super) fn grants(s: &dyn Store) {
    let keep = Keep { per_token: 10, total: 100 };
    let grant = PageGrant {
        id: digest("conf-g1"),
        token: digest("conf-gt"),
        project: "conf/p".into(),
        job: 7,
        expires_at: 5000,
    };
    s.put_grant(&grant, keep, 1000).unwrap();
    s.put_grant(&PageGrant { job: 8, ..grant.clone() }, keep, 1000).unwrap();
    assert_eq!(s.page_grant(&grant.id, 1000).unwrap(), Some(grant.clone()), "the same id again changes nothing");
    assert_eq!(s.page_grant(&grant.id, 5000).unwrap(), None, "expired");
    assert_eq!(s.page_grant(&digest("conf-g2"), 1000).unwrap(), None);

    let two = Keep { per_token: 2, total: 100 };
    for (n, expires_at) in [(3, 6000), (4, 7000), (5, 8000)] {
        let g = PageGrant { id: digest(&format!("conf-g{n}")), expires_at, ..grant.clone() };
        s.put_grant(&g, two, 1000).unwrap();
    }
    assert_eq!(s.page_grant(&digest("conf-g3"), 1000).unwrap(), None, "past the bound of a token");
    assert!(s.page_grant(&digest("conf-g5"), 1000).unwrap().is_some());
}
