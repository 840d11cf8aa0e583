//! [`Jobs`] on every [`Backend`]: pipelines and jobs.

use super::*;

impl<B: Backend> Jobs for B {
    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline> {
        self.run(Mode::Write, |c| insert_pipeline(c, new, Timestamp::now()))
    }

    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = $1"), &[id.into()], rows::pipeline)
        })
    }

    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
        self.run(Mode::Write, |c| insert_job_tx(c, job, token))
    }

    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.run(Mode::Single, |c| select_job(c, id))
    }

    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE token_digest = $1"), &[digest(token)], rows::job)
        })
    }

    fn list_jobs(&self, q: &JobQuery) -> StoreResult<Listing<Job>> {
        let mut args = Vec::new();
        let mut filter =
            format!("project_id = {} AND kind = {}", arg(&mut args, q.project_id), arg(&mut args, rows::kind(q.kind)));
        if let Some(p) = q.pipeline_id {
            filter += &format!(" AND pipeline_id = {}", arg(&mut args, p));
        }
        if !q.scope.is_empty() {
            // Each status once (a caller may repeat one): one statement per set of statuses.
            let mut scope: Vec<&str> = q.scope.iter().map(|s| s.as_str()).collect();
            scope.sort_unstable();
            scope.dedup();
            let each: Vec<String> = scope.into_iter().map(|s| arg(&mut args, s)).collect();
            filter += &format!(" AND status IN ({})", each.join(", "));
        }
        if !q.include_retried {
            filter += " AND NOT retried";
        }
        if let Some(before) = q.before_id {
            filter += &format!(" AND id < {}", arg(&mut args, before));
        }
        let order = if q.newest_first { "DESC" } else { "ASC" };
        let count = format!("SELECT COUNT(*) FROM jobs WHERE {filter}");
        let mut page_args = args.clone();
        let limit = arg(&mut page_args, q.limit.min(i64::MAX as u64) as i64);
        let offset = arg(&mut page_args, q.offset.min(i64::MAX as u64) as i64);
        let page =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY id {order} LIMIT {limit} OFFSET {offset}");
        // One snapshot for the count and the page.
        self.run(Mode::Snapshot, |c| {
            let total = match q.count {
                true => c.first(&count, &args, |r| r.int(0))?.unwrap_or(0),
                false => 0,
            };
            let rows = c.all(&page, &page_args, rows::job)?;
            Ok(Listing { rows, total: total.max(0) as u64 })
        })
    }

    fn update_job(&self, job: &Job) -> StoreResult<bool> {
        let mut values = job_state(job);
        let set: Vec<String> = STATE_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
        let status = arg(&mut values, job.status.as_str());
        let id = arg(&mut values, job.id);
        let version = arg(&mut values, job.lock_version);
        let sql = format!(
            "UPDATE jobs SET {}, \
             token_digest = CASE WHEN {status} IN ('running', 'pending', 'preparing') THEN token_digest ELSE NULL END, \
             lock_version = lock_version + 1 WHERE id = {id} AND lock_version = {version}",
            set.join(", ")
        );
        self.run(Mode::Write, |c| {
            let changed = c.execute(&sql, &values)? == 1;
            if changed {
                refresh_pipeline(c, job.pipeline_id)?;
                c.announce()?;
            }
            Ok(changed)
        })
    }

    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>> {
        self.run(Mode::Write, |c| {
            let still = c.execute(
                "UPDATE jobs SET retried = TRUE, lock_version = lock_version + 1 \
                 WHERE id = $1 AND lock_version = $2 AND NOT retried",
                &[old.id.into(), old.lock_version.into()],
            )?;
            if still != 1 {
                return Ok(None);
            }
            c.execute(
                "UPDATE jobs SET retried = TRUE, lock_version = lock_version + 1 \
                 WHERE pipeline_id = $1 AND name = $2 AND kind = $3",
                &[old.pipeline_id.into(), old.name.as_str().into(), rows::kind(old.kind).into()],
            )?;
            let id = insert_job_row(c, new, None)?;
            refresh_pipeline(c, new.pipeline_id)?;
            c.announce()?;
            select_job(c, id)
        })
    }

    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        // The pipeline and its descendants, parent first (depth, then id).
        let columns = JOB_COLUMNS.split(", ").map(|col| format!("j.{col}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "WITH RECURSIVE tree(id, depth) AS ( \
                 SELECT CAST($1 AS BIGINT), 0 UNION ALL \
                 SELECT p.id, tree.depth + 1 FROM pipelines p JOIN tree ON p.parent_id = tree.id \
             ) \
             SELECT {columns} FROM jobs j JOIN tree ON j.pipeline_id = tree.id \
             WHERE j.name = $2 AND j.kind = 'build' AND NOT j.retried AND j.archive_key IS NOT NULL \
             AND (j.artifacts_expire_at IS NULL OR CAST($3 AS BIGINT) IS NULL OR j.artifacts_expire_at > $3) \
             ORDER BY tree.depth, j.pipeline_id, j.id DESC LIMIT 1"
        );
        self.run(Mode::Single, |c| {
            let pipeline = c.first(
                "SELECT id FROM pipelines WHERE project_id = $1 AND ref_name = $2 AND status = 'success' \
                     AND parent_id IS NULL ORDER BY id DESC LIMIT 1",
                &[project_id.into(), ref_name.into()],
                |r| r.int(0),
            )?;
            let Some(pipeline) = pipeline else { return Ok(None) };
            c.first(&sql, &[pipeline.into(), job_name.into(), live_at.into()], rows::job)
        })
    }

    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool> {
        self.run(Mode::Single, |c| Ok(c.first(LATEST_SUCCESSFUL, &[pipeline_id.into()], |_| Ok(()))?.is_some()))
    }
}
