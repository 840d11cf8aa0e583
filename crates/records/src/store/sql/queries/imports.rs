//! [`Imports`] on every [`Backend`]: verification outcomes, leases, referenced blobs.

use std::collections::HashSet;

use super::*;

impl<B: Backend> Imports for B {
    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()> {
        self.run(Mode::Single, |c| {
            c.execute(
                "INSERT INTO verifications (archive_key, outcome) VALUES ($1, $2) \
                 ON CONFLICT (archive_key) DO UPDATE SET outcome = excluded.outcome",
                &[archive_key.into(), outcome.into()],
            )
            .map(drop)
        })
    }

    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>> {
        self.run(Mode::Single, |c| {
            c.first("SELECT outcome FROM verifications WHERE archive_key = $1", &[archive_key.into()], |r| r.text(0))
        })
    }

    fn delete_verification(&self, archive_key: &str) -> StoreResult<()> {
        self.run(Mode::Single, |c| {
            c.execute("DELETE FROM verifications WHERE archive_key = $1", &[archive_key.into()]).map(drop)
        })
    }

    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job> {
        self.run(Mode::Write, |c| {
            for key in leases {
                if c.execute("DELETE FROM blob_leases WHERE key = $1", &[key.as_str().into()])? == 0 {
                    return Err(StoreError::Missing(format!("the lease on blob {key}")));
                }
            }
            let pipeline_id = match pipeline {
                Some(new) => insert_pipeline(c, new, Timestamp::now())?.id,
                None => job.pipeline_id,
            };
            insert_job_tx(c, &Job { pipeline_id, ..job.clone() }, token)
        })
    }

    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()> {
        self.run(Mode::Write, |c| {
            for key in keys {
                c.execute(
                    "INSERT INTO blob_leases (key, renewed_at) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET renewed_at = excluded.renewed_at",
                    &[key.as_str().into(), now_ms.into()],
                )?;
            }
            Ok(())
        })
    }

    fn release_blobs(&self, keys: &[String]) -> StoreResult<()> {
        self.run(Mode::Write, |c| {
            for key in keys {
                c.execute("DELETE FROM blob_leases WHERE key = $1", &[key.as_str().into()])?;
            }
            Ok(())
        })
    }

    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.run(Mode::Single, |c| {
            Ok(c.execute(
                "DELETE FROM blob_leases WHERE key = $1 AND renewed_at < $2",
                &[key.into(), stale_before_ms.into()],
            )? > 0)
        })
    }

    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.run(Mode::Single, |c| {
            c.all("SELECT key, renewed_at FROM blob_leases", &[], |r| Ok((r.text(0)?, r.int(1)?)))
        })
    }

    fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.run(Mode::Single, |c| {
            let keys = c.all(
                "SELECT archive_key FROM jobs WHERE archive_key IS NOT NULL \
                 UNION SELECT metadata_key FROM jobs WHERE metadata_key IS NOT NULL \
                 UNION SELECT trace_key FROM jobs WHERE trace_key IS NOT NULL",
                &[],
                |r| r.text(0),
            )?;
            Ok(keys.into_iter().collect())
        })
    }

    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.run(Mode::Single, |c| c.all("SELECT archive_key FROM verifications", &[], |r| r.text(0)))
    }
}
