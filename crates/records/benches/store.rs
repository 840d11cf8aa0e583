//! The store's hot path on SQLite: the look-ups every request that misses the server's
//! memory of look-ups makes (a token with its user, a project by path, a member's role, a
//! job by id) and a page of twenty jobs, on a file of 10,000 jobs.
//!
//! `cargo bench -p artifact-records --bench store`; the results and the baseline they are
//! measured against are in `benches/README.md`.

use std::hint::black_box;

use artifact_records::*;
use criterion::{Criterion, criterion_group, criterion_main};

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("records.db")).unwrap();
    let user = s.create_user("bench", "Bench", false).unwrap();
    let token = TokenDigest::of("bench-token");
    s.create_token(user.id, &token, &[Scope::Api], None).unwrap();
    let project = s.create_project("group/bench", false).unwrap();
    s.set_member(project.id, user.id, Role::Developer).unwrap();
    let mut last = 0;
    for p in 0..100 {
        let pipeline = s
            .create_pipeline(&NewPipeline {
                project_id: project.id,
                ref_name: "main".into(),
                tag: false,
                sha: format!("{p:040}"),
                source: "push".into(),
                parent_id: None,
                user_id: Some(user.id),
            })
            .unwrap();
        for j in 0..100 {
            let job = Job {
                id: 0,
                project_id: project.id,
                pipeline_id: pipeline.id,
                kind: JobKind::Build,
                name: format!("job-{j}"),
                stage: "test".into(),
                status: Status::Success,
                when: When::OnSuccess,
                allow_failure: false,
                retried: false,
                coverage: Some(90.0),
                failure_reason: None,
                user_id: Some(user.id),
                created_at: Timestamp(1_700_000_000_000),
                queued_at: Some(Timestamp(1_700_000_000_000)),
                started_at: Some(Timestamp(1_700_000_001_000)),
                finished_at: Some(Timestamp(1_700_000_002_000)),
                erased_at: None,
                erased_by: None,
                archive: Some(BlobRef { key: format!("a/{p}/{j}.zip"), size: 1 << 20 }),
                metadata: Some(BlobRef { key: format!("a/{p}/{j}.gz"), size: 1 << 10 }),
                trace: Some(BlobRef { key: format!("a/{p}/{j}.log"), size: 1 << 12 }),
                artifacts_expire_at: None,
                tag_list: vec!["linux".into()],
                downstream_pipeline_id: None,
                lock_version: 0,
            };
            last = s.insert_job(&job, None).unwrap().id;
        }
    }
    let path = ProjectRef::Path("group/bench".into());
    c.bench_function("store/personal_token", |b| b.iter(|| black_box(s.personal_token(&token).unwrap())));
    c.bench_function("store/project_by_path", |b| b.iter(|| black_box(s.project(&path).unwrap())));
    c.bench_function("store/role", |b| b.iter(|| black_box(s.role(project.id, user.id).unwrap())));
    c.bench_function("store/job", |b| b.iter(|| black_box(s.job(last).unwrap())));
    let page = JobQuery {
        project_id: project.id,
        pipeline_id: None,
        kind: JobKind::Build,
        scope: vec![Status::Success],
        include_retried: false,
        newest_first: true,
        before_id: None,
        count: true,
        offset: 0,
        limit: 20,
    };
    c.bench_function("store/list_jobs_20_counted", |b| b.iter(|| black_box(s.list_jobs(&page).unwrap())));
}

criterion_group!(benches, store);
criterion_main!(benches);
