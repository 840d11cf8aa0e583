//! Putting data in: users, tokens, projects, members, and jobs with their artifacts and
//! logs (`artifact admin` and `artifact import`). Everything goes through the [`Store`] and
//! [`Blobs`] traits, so it works while a server runs on the same data directory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use artifact_core::{Archive, FileSource, Verification, VerifyOptions};
use serde_json::Value;

use crate::blobs::{BlobKind, Blobs, new_key, parse_key};
use crate::entities::Render;
use crate::error::Error;
use crate::ids::random_hex;
use crate::model::{BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, When};
use crate::routes::jobs::Related;
use crate::store::{NewPipeline, ProjectRef, Store, TokenDigest};
use crate::time::{Timestamp, parse_duration};

mod gc;
mod import;

pub use self::gc::{Collected, MIN_GC_GRACE};
pub use self::import::{ImportJob, Imported, LEASE_RENEWAL};

/// Administration over a store and blobs. `base` is the external URL used in the JSON it
/// prints (e.g. `http://127.0.0.1:8080`).
#[derive(Debug, Clone)]
pub struct Admin {
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    base: String,
}

/// A personal access token named for [`Admin::revoke_token`].
#[derive(Debug, Clone, Copy)]
pub enum TokenRef<'a> {
    /// By its numeric id.
    Id(i64),
    /// By the token itself.
    Token(&'a str),
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// A new secret token: 20 random bytes, hex, with GitLab's personal-token prefix.
fn new_token(prefix: &str) -> Result<String, Error> {
    let a = random_hex().map_err(Error::io("generating a token"))?;
    let b = random_hex().map_err(Error::io("generating a token"))?;
    Ok(format!("{prefix}{}{}", a, &b[..8]))
}

impl Admin {
    /// Administration over `store` and `blobs`.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>, base: &str) -> Admin {
        Admin { store, blobs, base: base.trim_end_matches('/').to_owned() }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn render(&self) -> Render<'_> {
        Render { base: &self.base, now: Timestamp::now() }
    }

    fn user_named(&self, name: &str) -> Result<User, Error> {
        self.store.user_by_username(name)?.ok_or_else(|| invalid(format!("no user named {name}")))
    }

    fn project_at(&self, path: &str) -> Result<Project, Error> {
        self.store.project(&ProjectRef::Path(path.to_owned()))?.ok_or_else(|| invalid(format!("no project {path}")))
    }

    /// Adds a user; returns it as the API shows it.
    pub fn add_user(&self, username: &str, admin: bool) -> Result<Value, Error> {
        let valid = !username.is_empty()
            && username.len() <= 255
            && username.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(invalid(format!("invalid username {username:?}: use letters, digits, '_', '.' and '-'")));
        }
        let user = self.store.create_user(username, username, admin)?;
        Ok(self.render().current_user(&user))
    }

    /// Adds a personal access token with the `api` scope and no expiry for a user; returns
    /// the token (shown only once).
    pub fn add_token(&self, username: &str) -> Result<String, Error> {
        Ok(self.add_token_with(username, &[Scope::Api], None)?.0)
    }

    /// Adds a personal access token for a user with `scopes` (at least one) and the day it
    /// expires (`YYYY-MM-DD`: it works through the day before); returns the token (shown
    /// only once) and its record.
    pub fn add_token_with(
        &self,
        username: &str,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> Result<(String, PersonalToken), Error> {
        let user = self.user_named(username)?;
        if scopes.is_empty() {
            return Err(invalid("a token needs at least one scope: api, read_api or sudo"));
        }
        let mut unique: Vec<Scope> = Vec::new();
        for scope in scopes {
            if !unique.contains(scope) {
                unique.push(*scope);
            }
        }
        let expires_at = match expires_at {
            Some(day) => Some(
                crate::time::parse_day(day)
                    .ok_or_else(|| invalid(format!("invalid expiry date {day:?}: use YYYY-MM-DD")))?,
            ),
            None => None,
        };
        let token = new_token("glpat-")?;
        let record = self.store.create_token(user.id, &TokenDigest::of(&token), &unique, expires_at.as_deref())?;
        Ok((token, record))
    }

    /// Revokes a personal access token, named by the token itself or by its numeric id;
    /// returns its record. Revoking one that is already revoked is an error.
    pub fn revoke_token(&self, which: TokenRef<'_>) -> Result<PersonalToken, Error> {
        let record = match which {
            TokenRef::Id(id) => self.store.personal_token_by_id(id)?,
            TokenRef::Token(token) => self.store.personal_token(&TokenDigest::of(token))?.map(|(t, _)| t),
        };
        let record = record.ok_or_else(|| invalid("no such token"))?;
        if !self.store.revoke_token(record.id)? {
            return Err(invalid(format!("token {} is already revoked", record.id)));
        }
        Ok(PersonalToken { revoked: true, ..record })
    }

    /// Adds a project; returns it as the API shows it.
    pub fn add_project(&self, full_path: &str, public: bool) -> Result<Value, Error> {
        let valid = !full_path.is_empty()
            && full_path.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            });
        if !valid || full_path.parse::<i64>().is_ok() {
            return Err(invalid(format!("invalid project path {full_path:?}: use group/name")));
        }
        let project = self.store.create_project(full_path, public)?;
        Ok(self.render().project(&project, true))
    }

    /// Changes a project's settings (each one given); returns it as the API shows it.
    /// `keep_latest_artifact`: GitLab's "Keep artifacts from most recent successful jobs".
    pub fn set_project(&self, full_path: &str, keep_latest_artifact: Option<bool>) -> Result<Value, Error> {
        let mut project = self.project_at(full_path)?;
        if let Some(keep) = keep_latest_artifact {
            if !self.store.set_keep_latest_artifact(project.id, keep)? {
                return Err(invalid(format!("no project {full_path:?}")));
            }
            project.keep_latest_artifact = keep;
        }
        Ok(self.render().project(&project, true))
    }

    /// Gives a user a role in a project (or changes it).
    pub fn add_member(&self, full_path: &str, username: &str, role: &str) -> Result<(), Error> {
        let role = Role::parse(role).ok_or_else(|| {
            invalid(format!("unknown role {role:?}: guest, reporter, developer, maintainer or owner"))
        })?;
        let project = self.project_at(full_path)?;
        let user = self.user_named(username)?;
        Ok(self.store.set_member(project.id, user.id, role)?)
    }
}
