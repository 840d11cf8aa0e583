//! `spec/requests/api/ci/jobs_spec.rb` in GitLab's repository, case by case: a test for
//! every `it` that applies to the 15 operations and the job lists, named after its context,
//! citing the spec's line.
