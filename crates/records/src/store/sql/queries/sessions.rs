//! [`Sessions`] on every [`Backend`]: the pages' browser sessions and grants.

use super::*;

impl<B: Backend> Sessions for B {
    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let insert = "INSERT INTO browser_sessions (id, token_digest, expires_at) VALUES ($1, $2, $3)";
        let values = [digest(&session.id), digest(&session.token), session.expires_at.into()];
        insert_bounded(self, "browser_sessions", insert, &values, &session.token, keep, now_ms)
    }

    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        self.run(Mode::Single, |c| {
            c.first(
                "SELECT token_digest FROM browser_sessions WHERE id = $1 AND expires_at > $2",
                &[digest(id), now_ms.into()],
                |r| read_digest(r.bytes(0)?, 0),
            )
        })
    }

    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.run(Mode::Single, |c| c.execute("DELETE FROM browser_sessions WHERE id = $1", &[digest(id)]).map(drop))
    }

    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let insert = "INSERT INTO page_grants (id, token_digest, project, job_id, expires_at) \
                      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";
        let values = [
            digest(&grant.id),
            digest(&grant.token),
            grant.project.as_str().into(),
            grant.job.into(),
            grant.expires_at.into(),
        ];
        insert_bounded(self, "page_grants", insert, &values, &grant.token, keep, now_ms)
    }

    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        self.run(Mode::Single, |c| {
            c.first(
                "SELECT token_digest, project, job_id, expires_at FROM page_grants WHERE id = $1 AND expires_at > $2",
                &[digest(id), now_ms.into()],
                |r| {
                    Ok(PageGrant {
                        id: *id,
                        token: read_digest(r.bytes(0)?, 0)?,
                        project: r.text(1)?,
                        job: r.int(2)?,
                        expires_at: r.int(3)?,
                    })
                },
            )
        })
    }
}
