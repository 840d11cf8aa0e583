//! What an artifact download names, parsed from the raw (still percent-encoded) path: the
//! project, the job (by id, or by ref + job name), and for a single file its path. The path
//! is kept raw so that it is decoded exactly once, by the path rule.

use artifact_core::JobRef;
use percent_encoding::percent_decode_str;

use crate::error::{ApiError, ApiResult};

/// An artifact download's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `:id` decoded once: a number or a full path.
    pub project: String,
    /// The job: by id, or the latest of a ref by name.
    pub job: JobRef,
    /// The single file's artifact path, raw; `None` for the whole archive.
    pub file: Option<String>,
}

/// A segment decoded once (the router's decoding).
fn decoded(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

impl Target {
    /// `/api/v4/projects/:id/jobs/:job_id/artifacts/<path...>` (endpoint 7).
    pub fn by_id(raw_path: &str) -> ApiResult<Target> {
        let raw: Vec<&str> = raw_path.split('/').collect();
        let project = decoded(raw.get(4).copied().unwrap_or(""));
        let job_id = id_param(raw.get(6).copied().unwrap_or(""), "job_id")?;
        let file = raw.get(8..).map(|s| s.join("/")).unwrap_or_default();
        Ok(Target { project, job: JobRef::Id(job_id as u64), file: Some(file) })
    }

    /// `/api/v4/projects/:id/jobs/artifacts/<ref...>/download?job=NAME` (6) and
    /// `.../<ref...>/raw/<path...>?job=NAME` (8). The ref may hold raw `/`s: a last segment
    /// `download` is the archive (GitLab's route order); otherwise the first `raw` segment
    /// after the ref's first segment ends the ref.
    pub fn by_ref(raw_path: &str, job: Option<&str>) -> ApiResult<Target> {
        let project = decoded(raw_path.split('/').nth(4).unwrap_or(""));
        let raw: Vec<&str> = raw_path.split('/').skip(7).collect();
        let job = || match job {
            Some(j) if !j.is_empty() => Ok(j.to_owned()),
            _ => Err(ApiError::InvalidParam("job is missing".into())),
        };
        if raw.len() >= 2 && raw.last() == Some(&"download") {
            let ref_name = decoded(&raw[..raw.len() - 1].join("/"));
            return Ok(Target { project, job: JobRef::Latest { ref_name, job: job()? }, file: None });
        }
        if let Some(at) = raw.iter().skip(1).position(|s| *s == "raw").map(|p| p + 1) {
            let ref_name = decoded(&raw[..at].join("/"));
            let file = Some(raw[at + 1..].join("/"));
            return Ok(Target { project, job: JobRef::Latest { ref_name, job: job()? }, file });
        }
        Err(ApiError::NotFound("Not Found"))
    }
}

impl Target {
    /// The target of a single file's download (endpoint 7, or 8 with `job` as `?job=`), if
    /// `raw_path` has that shape and parses; its `file` is then set.
    pub fn single_file(raw_path: &str, job: Option<&str>) -> Option<Target> {
        if !single_file_route(raw_path) {
            return None;
        }
        let target = if raw_path.split('/').nth(6) == Some("artifacts") {
            Target::by_ref(raw_path, job).ok()?
        } else {
            Target::by_id(raw_path).ok()?
        };
        target.file.is_some().then_some(target)
    }
}

impl Target {
    /// The target of an artifacts tree listing, if `raw_path` has that shape (then with no
    /// `file`): `/api/v4/projects/:id/jobs/:job_id/artifacts/tree`, or
    /// `/api/v4/projects/:id/jobs/artifacts/<ref...>/tree` with `job` as `?job=`. A ref's
    /// last segment `tree` ends it unless a `raw` segment after its first one made the
    /// path a single file's (endpoint 8, whose order stays: `<ref>/raw/tree` is the file
    /// `tree`); a ref holding such a `raw` segment is listed with its `/`s encoded.
    pub fn tree(raw_path: &str, job: Option<&str>) -> Option<ApiResult<Target>> {
        let segs: Vec<&str> = raw_path.split('/').collect();
        if segs.len() < 9
            || segs[..4] != ["", "api", "v4", "projects"]
            || segs[5] != "jobs"
            || segs.last() != Some(&"tree")
        {
            return None;
        }
        let project = decoded(segs[4]);
        if segs[6] == "artifacts" {
            let ref_segs = &segs[7..segs.len() - 1];
            if ref_segs.iter().skip(1).any(|s| *s == "raw") {
                return None;
            }
            let ref_name = decoded(&ref_segs.join("/"));
            let job = match job {
                Some(j) if !j.is_empty() => j.to_owned(),
                _ => return Some(Err(ApiError::InvalidParam("job is missing".into()))),
            };
            return Some(Ok(Target { project, job: JobRef::Latest { ref_name, job }, file: None }));
        }
        if segs.len() != 9 || segs[7] != "artifacts" {
            return None;
        }
        Some(id_param(segs[6], "job_id").map(|id| Target { project, job: JobRef::Id(id as u64), file: None }))
    }
}

/// Whether `path` has the shape of a single file's download (endpoint 7 or 8).
pub fn single_file_route(path: &str) -> bool {
    let segs: Vec<&str> = path.splitn(9, '/').collect();
    segs.len() == 9
        && segs[..4] == ["", "api", "v4", "projects"]
        && segs[5] == "jobs"
        && (segs[6] == "artifacts" || segs[7] == "artifacts")
}

/// A numeric path parameter; anything else is 400 `{"error":"<name> is invalid"}`.
pub fn id_param(value: &str, name: &str) -> ApiResult<i64> {
    match value.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        // A positive integer too large for any id names no record (GitLab answers 404):
        // the largest id, which no record has.
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow && value.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(i64::MAX)
        }
        _ => Err(ApiError::InvalidParam(format!("{name} is invalid"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(ref_name: &str, job: &str) -> JobRef {
        JobRef::Latest { ref_name: ref_name.into(), job: job.into() }
    }

    #[test]
    fn a_file_by_job_id_keeps_its_path_raw() {
        let t = Target::by_id("/api/v4/projects/group%2Fapp/jobs/42/artifacts/dist/a%20b.js").unwrap();
        assert_eq!(t, Target { project: "group/app".into(), job: JobRef::Id(42), file: Some("dist/a%20b.js".into()) });
        assert_eq!(Target::by_id("/api/v4/projects/7/jobs/1/artifacts/").unwrap().file.as_deref(), Some(""));
        assert!(matches!(Target::by_id("/api/v4/projects/7/jobs/x/artifacts/a"), Err(ApiError::InvalidParam(_))));
    }

    #[test]
    fn refs_with_slashes_end_at_download_or_the_first_raw() {
        let base = "/api/v4/projects/7/jobs/artifacts";
        let t = Target::by_ref(&format!("{base}/feature/login/download"), Some("build")).unwrap();
        assert_eq!((t.job, t.file), (latest("feature/login", "build"), None));
        let t = Target::by_ref(&format!("{base}/feature%2Flogin/raw/raw/x.txt"), Some("build")).unwrap();
        assert_eq!((t.job, t.file.as_deref()), (latest("feature/login", "build"), Some("raw/x.txt")));
        // A ref named `raw`: the first segment is always the ref's.
        let t = Target::by_ref(&format!("{base}/raw/raw/a"), Some("b")).unwrap();
        assert_eq!((t.job, t.file.as_deref()), (latest("raw", "b"), Some("a")));
        assert!(matches!(Target::by_ref(&format!("{base}/main/raw/a"), Some("")), Err(ApiError::InvalidParam(_))));
        assert!(matches!(Target::by_ref(&format!("{base}/main/other"), Some("b")), Err(ApiError::NotFound(_))));
    }

    #[test]
    fn trees_by_id_and_by_ref_leave_single_files_alone() {
        let tree = |path: &str, job| Target::tree(path, job).map(|t| t.map(|t| (t.project, t.job, t.file)));
        let p = "/api/v4/projects/group%2Fapp/jobs";
        assert_eq!(
            tree(&format!("{p}/42/artifacts/tree"), None).unwrap().unwrap(),
            ("group/app".into(), JobRef::Id(42), None)
        );
        assert_eq!(
            tree(&format!("{p}/artifacts/feature/login/tree"), Some("b")).unwrap().unwrap().1,
            latest("feature/login", "b")
        );
        assert_eq!(tree(&format!("{p}/artifacts/raw/tree"), Some("b")).unwrap().unwrap().1, latest("raw", "b"));
        assert_eq!(tree(&format!("{p}/artifacts/a%2Fraw/tree"), Some("b")).unwrap().unwrap().1, latest("a/raw", "b"));
        assert!(matches!(tree(&format!("{p}/artifacts/main/tree"), None), Some(Err(ApiError::InvalidParam(_)))));
        assert!(matches!(tree(&format!("{p}/x/artifacts/tree"), None), Some(Err(ApiError::InvalidParam(_)))));
        // Single files: endpoint 7's `dir/tree`, endpoint 8's `raw/tree`.
        for path in
            ["42/artifacts/dir/tree", "artifacts/main/raw/tree", "artifacts/main/raw/dir/tree", "42/artifacts/tree/x"]
        {
            assert!(tree(&format!("{p}/{path}"), Some("b")).is_none(), "{path}");
        }
    }
}
