//! `Admin::gc`: what a killed import leaves behind is collected, and nothing a job refers to
//! or a running import holds ever is. Each leftover is made the way a kill at that moment
//! leaves it (the import's own steps, stopped there), on the suite's store.

use std::time::{Duration, SystemTime};

use artifact_server::{BlobKind, ImportJob, MIN_GC_GRACE, StoreError, Timestamp, new_key};

use crate::support::{World, fixture, private};

/// Unix milliseconds `ago` before now.
fn ms_ago(ago: Duration) -> i64 {
    Timestamp::now().0 - ago.as_millis() as i64
}

/// Every blob key in the world's blob folder.
fn keys(w: &World) -> Vec<String> {
    let mut keys: Vec<String> = w.blobs.list().unwrap().into_iter().map(|l| l.key).collect();
    keys.sort();
    keys
}

/// A blob written under a leased key, as an import killed between the blob and the record
/// leaves it: the lease last renewed `renewed` ago.
fn leased_blob(w: &World, kind: BlobKind, renewed: Duration) -> String {
    let key = new_key(kind).unwrap();
    w.store.lease_blobs(std::slice::from_ref(&key), ms_ago(renewed)).unwrap();
    w.blobs.put_at(&key, &mut &b"half an import"[..]).unwrap();
    key
}

#[tokio::test]
async fn gc_removes_what_killed_imports_left_and_keeps_everything_referred_to_or_held() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let referenced = keys(&w);
    assert_eq!(referenced.len(), 3, "archive, metadata.gz and log: {referenced:?}");
    let stale = Duration::from_secs(120);
    // Killed between the blobs and the record: an archive with its checkpoints beside it,
    // and a log, under stale leases.
    let archive = leased_blob(&w, BlobKind::Archive, stale);
    let beside = artifact_server::beside(&archive, BlobKind::Checkpoints).unwrap();
    w.blobs.put_beside(&archive, BlobKind::Checkpoints, &mut &b"checkpoints"[..]).unwrap();
    w.store.put_verification(&archive, "{}").unwrap();
    let log = leased_blob(&w, BlobKind::Trace, stale);
    // Killed after leasing, before writing: a lease and no blob.
    let unwritten = new_key(BlobKind::Metadata).unwrap();
    w.store.lease_blobs(std::slice::from_ref(&unwritten), ms_ago(stale)).unwrap();
    // Killed mid-write: a temporary file, last written two minutes ago.
    let tmp = w.dir.path().join("data/blobs/tmp").join(format!("{}.part", "ab".repeat(16)));
    let part = std::fs::File::create(&tmp).unwrap();
    part.set_modified(SystemTime::now() - stale).unwrap();
    // An import that is running: its lease renewed just now.
    let running = leased_blob(&w, BlobKind::Archive, Duration::ZERO);
    w.store.put_verification(&running, "{}").unwrap();
    // A blob no record or lease names but that is younger than the grace period.
    let young = w.blobs.put(BlobKind::Trace, &mut &b"just written"[..]).unwrap().key;

    let grace = Duration::from_secs(60);
    let dry = w.admin.gc(grace, true).unwrap();
    let mut expected_blobs = vec![archive.clone(), beside.clone(), log.clone()];
    expected_blobs.sort();
    assert_eq!(dry.blobs, expected_blobs);
    assert_eq!(keys(&w).len(), 3 + 3 + 2, "a dry run removes nothing");

    let done = w.admin.gc(grace, false).unwrap();
    assert_eq!(done.blobs, expected_blobs);
    assert_eq!(done.leftovers.len(), 1);
    assert_eq!(done.verifications, vec![archive.clone()]);
    assert_eq!(done.leases, vec![unwritten.clone()]);
    assert_eq!(done.kept, 2, "the running import's blob and the young one");
    assert!(!tmp.exists());
    let mut left = referenced.clone();
    left.extend([running.clone(), young.clone()]);
    left.sort();
    assert_eq!(keys(&w), left);
    assert!(w.store.verification(&archive).unwrap().is_none());
    assert!(w.store.verification(&running).unwrap().is_some(), "held by a live lease");
    let leases: Vec<String> = w.store.blob_leases().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(leases, vec![running.clone()]);
    // The job still serves every byte.
    let reply = w.get(&private(&format!("/jobs/{id}/artifacts/docs/readme.txt")), "developer").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(w.get(&private(&format!("/jobs/{id}/trace")), "developer").await.text(), "line one\nline two\n");

    // A second run finds nothing more to do.
    let again = w.admin.gc(grace, false).unwrap();
    assert!(again.blobs.is_empty() && again.leftovers.is_empty() && again.verifications.is_empty());
    assert!(again.leases.is_empty());
}

#[tokio::test]
async fn a_stale_lease_is_taken_by_gc_or_by_the_import_never_both() {
    let w = World::new();
    let project = w.store.project(&artifact_server::ProjectRef::Path(crate::support::PRIVATE.into())).unwrap().unwrap();
    // The import's lease went stale (it stalled past the grace period); gc claims it first.
    let key = leased_blob(&w, BlobKind::Trace, Duration::from_secs(120));
    let done = w.admin.gc(Duration::from_secs(60), false).unwrap();
    assert_eq!(done.blobs, vec![key.clone()]);
    // The import, resuming, cannot store a job that refers to the collected blob.
    let pipeline = w
        .store
        .create_pipeline(&artifact_server::NewPipeline {
            project_id: project.id,
            ref_name: "main".into(),
            tag: false,
            sha: "0".repeat(40),
            source: "push".into(),
            parent_id: None,
            user_id: None,
        })
        .unwrap();
    let id = w.build_with_artifacts();
    let mut stalled = w.store.job(id).unwrap().unwrap();
    stalled.pipeline_id = pipeline.id;
    let refused = w.store.insert_imported_job(None, &stalled, None, std::slice::from_ref(&key));
    assert!(matches!(refused, Err(StoreError::Missing(_))), "{refused:?}");
    // And the other order: the job is stored first (giving the lease up), gc's claim fails.
    let held = leased_blob(&w, BlobKind::Trace, Duration::from_secs(120));
    w.store.insert_imported_job(None, &stalled, None, std::slice::from_ref(&held)).unwrap();
    assert!(!w.store.claim_stale_lease(&held, Timestamp::now().0).unwrap());
}

#[tokio::test]
async fn a_failed_import_leaves_no_pipeline_no_blob_and_no_lease() {
    let w = World::new();
    let before = keys(&w);
    // The log does not exist: the archive and metadata.gz are stored first, then it fails.
    let job = ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        trace: Some(w.dir.path().join("no-such.log")),
        ..w.job("build")
    };
    assert!(w.admin.import(&job).is_err());
    assert_eq!(keys(&w), before);
    assert!(w.store.blob_leases().unwrap().is_empty());
    assert!(w.store.pipeline(1).unwrap().is_none(), "no pipeline without its job");
    assert!(w.admin.gc(MIN_GC_GRACE, false).unwrap().verifications.is_empty());
}

#[test]
fn gc_refuses_a_grace_period_shorter_than_a_few_lease_renewals() {
    let w = World::new();
    let err = w.admin.gc(Duration::from_secs(5), false).unwrap_err();
    assert!(err.to_string().contains("at least 10 s"), "{err}");
}
