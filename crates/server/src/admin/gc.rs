//! `artifact admin gc`: what no job refers to and nothing is writing, removed.

use super::*;

/// The shortest grace period [`Admin::gc`] accepts: five lease renewals, so that the lease
/// of an import that is running is never taken for stale.
pub const MIN_GC_GRACE: Duration = Duration::from_secs(10);

/// What [`Admin::gc`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Collected {
    /// Blobs no job refers to, by key.
    pub blobs: Vec<String>,
    /// Temporary files of writes that never finished.
    pub leftovers: Vec<String>,
    /// Verification outcomes kept for archives no job refers to.
    pub verifications: Vec<String>,
    /// Stale leases given up whose blobs were never written (or are gone).
    pub leases: Vec<String>,
    /// Bytes the removed blobs and leftovers held.
    pub bytes: u64,
    /// Blobs no job refers to that were kept: an import holds a live lease on them, or
    /// they are younger than the grace period.
    pub kept: u64,
}

/// The key whose lease and references decide over the blob `key`: the archive's for a
/// blob kept beside an archive, else its own.
fn owner_of(key: &str) -> String {
    match parse_key(key) {
        Some((kind, name)) if kind.rewritable() => format!("{}/{name}", BlobKind::Archive.folder()),
        _ => key.to_owned(),
    }
}

impl Admin {
    /// Removes what no job refers to and nothing is writing: blobs, temporary files of
    /// writes that never finished, verification outcomes of archives no job has, and
    /// stale leases, all older than `grace` (at least [`MIN_GC_GRACE`]). With `dry_run`,
    /// only says what it would remove.
    ///
    /// Never a blob a job refers to, nor one a running import is writing: the blobs are
    /// listed first, then the leases, then what the jobs refer to. An import leases a key
    /// before it writes it and gives the lease up in the transaction that stores the job,
    /// so every blob listed is seen leased or referred to until it is an orphan. A stale
    /// lease is taken over with a compare-and-set ([`Imports::claim_stale_lease`](crate::Imports::claim_stale_lease)) before
    /// its blob is deleted: if the import stored its job meanwhile, the claim fails and the
    /// blob stays; if the claim comes first, the import's job insert fails instead.
    pub fn gc(&self, grace: Duration, dry_run: bool) -> Result<Collected, Error> {
        if grace < MIN_GC_GRACE {
            return Err(invalid(format!(
                "--older-than must be at least {} s (imports renew their leases every {} s)",
                MIN_GC_GRACE.as_secs(),
                LEASE_RENEWAL.as_secs()
            )));
        }
        let cutoff = SystemTime::now() - grace;
        let stale_before = Timestamp::now().0 - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let listed = self.blobs.list().map_err(Error::io("listing the blobs"))?;
        let leftovers = self.blobs.leftovers().map_err(Error::io("listing temporary files"))?;
        let leases: HashMap<String, i64> = self.store.blob_leases()?.into_iter().collect();
        let referenced = self.store.referenced_blobs()?;
        let mut collected = Collected::default();
        let mut claimed: HashSet<String> = HashSet::new();
        for blob in listed {
            let owner = owner_of(&blob.key);
            if referenced.contains(&owner) {
                continue;
            }
            let orphan = match leases.get(&owner) {
                _ if claimed.contains(&owner) => true,
                Some(&renewed) if renewed >= stale_before => false,
                Some(_) if dry_run => true,
                Some(_) => {
                    let taken = self.store.claim_stale_lease(&owner, stale_before)?;
                    if taken {
                        claimed.insert(owner.clone());
                    }
                    taken
                }
                None => blob.modified < cutoff,
            };
            if !orphan {
                collected.kept += 1;
                continue;
            }
            if !dry_run {
                self.blobs.delete(&blob.key).map_err(Error::io(format!("deleting {}", blob.key)))?;
            }
            collected.bytes += blob.size;
            collected.blobs.push(blob.key);
        }
        for leftover in leftovers.into_iter().filter(|l| l.modified < cutoff) {
            if !dry_run {
                self.blobs.remove_leftover(&leftover.key).map_err(Error::io(format!("deleting {}", leftover.key)))?;
            }
            collected.bytes += leftover.size;
            collected.leftovers.push(leftover.key);
        }
        let live =
            |key: &str| leases.get(key).is_some_and(|&renewed| renewed >= stale_before) && !claimed.contains(key);
        for key in self.store.verification_keys()? {
            if !referenced.contains(&key) && !live(&key) {
                if !dry_run {
                    self.store.delete_verification(&key)?;
                }
                collected.verifications.push(key);
            }
        }
        // Leases that went stale before their blob was written (or whose blob is gone).
        for (key, renewed) in &leases {
            if renewed < &stale_before
                && !claimed.contains(key)
                && (dry_run || self.store.claim_stale_lease(key, stale_before)?)
            {
                collected.leases.push(key.clone());
            }
        }
        for list in
            [&mut collected.blobs, &mut collected.leftovers, &mut collected.verifications, &mut collected.leases]
        {
            list.sort();
        }
        Ok(collected)
    }
}
