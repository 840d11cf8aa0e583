//! `spec/requests/api/ci/job_artifacts_spec.rb`, and the job and bridge lists of
//! `spec/requests/api/ci/pipelines_spec.rb`, in GitLab's repository, case by case: a test
//! for every `it` that applies, named after its context, citing the spec's line.
