//! [`Identities`] on every [`Backend`]: users, tokens, projects, members.

use super::*;

impl<B: Backend> Identities for B {
    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User> {
        let now = Timestamp::now();
        let res = self.run(Mode::Single, |c| {
            returned_id(
                c,
                "INSERT INTO users (username, name, admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[username.into(), name.into(), admin.into(), now.0.into()],
            )
        });
        match res {
            Ok(id) => Ok(User { id, username: username.into(), name: name.into(), admin, created_at: now }),
            Err(e) if self.is_unique_violation(&e) => Err(StoreError::Exists(format!("user {username}"))),
            Err(e) => Err(e),
        }
    }

    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[id.into()], |r| rows::user(r, 0))
        })
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"), &[username.into()], |r| {
                rows::user(r, 0)
            })
        })
    }

    fn create_token(
        &self,
        user_id: i64,
        token: &TokenDigest,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> StoreResult<PersonalToken> {
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let now = Timestamp::now();
        let id = self.run(Mode::Single, |c| {
            returned_id(
                c,
                "INSERT INTO personal_tokens (digest, user_id, created_at, scopes, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[digest(token), user_id.into(), now.0.into(), names.join(" ").into(), expires_at.into()],
            )
        })?;
        Ok(PersonalToken {
            id,
            user_id,
            scopes: scopes.to_vec(),
            expires_at: expires_at.map(str::to_owned),
            revoked: false,
            created_at: now,
        })
    }

    fn personal_token(&self, token: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>> {
        self.run(Mode::Single, |c| {
            c.first(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, u.id, u.username, u.name, u.admin, u.created_at \
                     FROM personal_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1"
                ),
                &[digest(token)],
                |r| {
                    let user = rows::user(r, 6)?;
                    Ok((rows::token(r)?, user))
                },
            )
        })
    }

    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.run(Mode::Single, |c| {
            c.first(
                &format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens t WHERE t.id = $1"),
                &[id.into()],
                rows::token,
            )
        })
    }

    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.run(Mode::Write, |c| {
            let n = c.execute(
                "UPDATE personal_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[Timestamp::now().0.into(), id.into()],
            )?;
            if n == 1 {
                c.announce()?;
            }
            Ok(n == 1)
        })
    }

    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project> {
        let now = Timestamp::now();
        let res = self.run(Mode::Single, |c| {
            returned_id(
                c,
                "INSERT INTO projects (full_path, public, created_at) VALUES ($1, $2, $3) RETURNING id",
                &[full_path.into(), public.into(), now.0.into()],
            )
        });
        match res {
            Ok(id) => {
                Ok(Project { id, full_path: full_path.into(), public, keep_latest_artifact: true, created_at: now })
            }
            Err(e) if self.is_unique_violation(&e) => Err(StoreError::Exists(format!("project {full_path}"))),
            Err(e) => Err(e),
        }
    }

    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>> {
        let (column, value) = match project {
            ProjectRef::Id(id) => ("id", Value::Int(*id)),
            ProjectRef::Path(path) => ("full_path", Value::from(path.as_str())),
        };
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE {column} = $1"), &[value], rows::project)
        })
    }

    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()> {
        self.run(Mode::Write, |c| {
            c.execute(
                "INSERT INTO members (project_id, user_id, access_level) VALUES ($1, $2, $3) \
                 ON CONFLICT (project_id, user_id) DO UPDATE SET access_level = excluded.access_level",
                &[project_id.into(), user_id.into(), role.access_level().into()],
            )?;
            c.announce()
        })
    }

    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
        let level = self.run(Mode::Single, |c| {
            c.first(
                "SELECT access_level FROM members WHERE project_id = $1 AND user_id = $2",
                &[project_id.into(), user_id.into()],
                |r| r.int(0),
            )
        })?;
        Ok(level.and_then(Role::from_access_level))
    }

    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool> {
        self.run(Mode::Write, |c| {
            let n = c.execute(
                "UPDATE projects SET keep_latest_artifact = $1 WHERE id = $2",
                &[keep.into(), project_id.into()],
            )?;
            c.announce()?;
            Ok(n == 1)
        })
    }
}
