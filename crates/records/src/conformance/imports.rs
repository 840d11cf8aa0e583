//! The checks of [`Imports`](crate::store::Imports): verification outcomes, leases, imports.

use super::*;

pub(super) fn verifications(s: &dyn Store) {
    assert_eq!(s.verification("conf/v.zip").unwrap(), None);
    s.put_verification("conf/v.zip", r#"{"ok":1}"#).unwrap();
    s.put_verification("conf/v.zip", r#"{"ok":2}"#).unwrap();
    assert_eq!(s.verification("conf/v.zip").unwrap().as_deref(), Some(r#"{"ok":2}"#), "replaced");
    assert!(s.verification_keys().unwrap().contains(&"conf/v.zip".to_owned()));
    s.delete_verification("conf/v.zip").unwrap();
    assert_eq!(s.verification("conf/v.zip").unwrap(), None);
    assert!(!s.verification_keys().unwrap().contains(&"conf/v.zip".to_owned()));
}

pub(super) fn leases_and_imports(s: &dyn Store) {
    let p = project(s, "conf/imports");
    let keys = vec!["conf-import/archive.zip".to_owned(), "conf-import/metadata.gz".to_owned()];
    s.lease_blobs(&keys, 1000).unwrap();
    s.lease_blobs(&keys[..1], 2000).unwrap();
    let mut leases = s.blob_leases().unwrap();
    leases.retain(|(k, _)| k.starts_with("conf-import/"));
    leases.sort();
    assert_eq!(leases, [(keys[0].clone(), 2000), (keys[1].clone(), 1000)], "a lease is renewed");

    let new = new_pipeline(p, "main", false);
    let imported = job(p, 0, "conf-import", Status::Success);
    let stored = s.insert_imported_job(Some(&new), &imported, None, &keys).unwrap();
    assert!(s.pipeline(stored.pipeline_id).unwrap().is_some(), "its new pipeline is stored with it");
    assert!(s.blob_leases().unwrap().iter().all(|(k, _)| !keys.contains(k)), "its leases are given up");
    let referenced = s.referenced_blobs().unwrap();
    assert!(referenced.contains("conf-import/archive.zip") && referenced.contains("conf-import/metadata.gz"));

    // One of its leases collected meanwhile: nothing is stored, and the lease that was
    // still there is still there (one transaction).
    let before = s.list_jobs(&all_jobs(p)).unwrap().total;
    let held = vec!["conf-held".to_owned(), "conf-collected".to_owned()];
    s.lease_blobs(&held[..1], 3000).unwrap();
    let lost = s.insert_imported_job(Some(&new), &job(p, 0, "conf-lost", Status::Success), None, &held);
    assert!(matches!(lost, Err(StoreError::Missing(_))), "{lost:?}");
    assert_eq!(s.list_jobs(&all_jobs(p)).unwrap().total, before, "no job");
    assert!(s.blob_leases().unwrap().contains(&("conf-held".to_owned(), 3000)), "the held lease is back");
    let next = s.create_pipeline(&new).unwrap();
    assert_eq!(next.iid, s.pipeline(stored.pipeline_id).unwrap().unwrap().iid + 1, "no pipeline either");
    s.release_blobs(&held).unwrap();

    s.lease_blobs(&["conf-stale".to_owned(), "conf-fresh".to_owned()], 1000).unwrap();
    assert!(!s.claim_stale_lease("conf-stale", 1000).unwrap(), "renewed at the bound: not stale");
    assert!(s.claim_stale_lease("conf-stale", 1001).unwrap(), "stale: claimed");
    assert!(!s.claim_stale_lease("conf-stale", 1001).unwrap(), "once");
    s.release_blobs(&["conf-fresh".to_owned()]).unwrap();
    assert!(s.blob_leases().unwrap().iter().all(|(k, _)| !k.starts_with("conf-")));
}

pub(super) fn all_jobs(project_id: i64) -> JobQuery {
    JobQuery {
        project_id,
        pipeline_id: None,
        kind: JobKind::Build,
        scope: vec![],
        include_retried: true,
        newest_first: true,
        before_id: None,
        count: true,
        offset: 0,
        limit: 1,
    }
}
