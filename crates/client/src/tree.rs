//! A job's artifacts tree (an addition of this project's server and proxy beyond GitLab):
//! the listing's URL from typed parts, and its pages.

use artifact_core::JobRef;
use futures_util::Stream;
use reqwest::Url;

use crate::client::{Client, ref_segment};
use crate::error::{Error, Result};
use crate::models::TreeEntry;
use crate::pages::{Page, items};

/// Which entries of a job's artifacts tree a listing returns ([`Client::artifacts_tree`]).
#[derive(Debug, Clone, Default)]
pub struct TreeFilter {
    /// The folder listed (`""`: the archive's root; `dir` or `dir/`).
    pub path: String,
    /// Every path under the folder, not only its children.
    pub recursive: bool,
    /// Entries per page (the server caps it at 100).
    pub per_page: Option<u32>,
    /// Ask for keyset pagination (`pagination=keyset`: each page after the last entry of
    /// the one before, not by number). Both kinds are followed the same way.
    pub keyset: bool,
}

impl Client {
    /// Every entry of a folder of `job`'s archive (an addition of this project's server and
    /// proxy beyond GitLab: `GET .../jobs/:job_id/artifacts/tree`, or by ref + job name),
    /// folders first, then files, each by path; every page, offset or keyset as `filter`
    /// asks. A folder the archive lacks is [`Error::Api`](crate::Error::Api) with `404`; a
    /// path the path rule refuses is an error before anything is sent.
    pub fn artifacts_tree(
        &self,
        project: &str,
        job: &JobRef,
        filter: &TreeFilter,
    ) -> impl Stream<Item = Result<TreeEntry>> + Send + 'static {
        items(self.clone(), self.tree_url(project, job, filter))
    }

    /// Page `page` (from 1) of [`artifacts_tree`](Self::artifacts_tree), offset-paginated
    /// (`filter.keyset` is not used).
    pub async fn artifacts_tree_page(
        &self,
        project: &str,
        job: &JobRef,
        filter: &TreeFilter,
        page: u64,
    ) -> Result<Page<TreeEntry>> {
        let url = self.tree_url(project, job, &TreeFilter { keyset: false, ..filter.clone() })?;
        self.page(url, page).await
    }

    /// The tree listing of `job`'s archive with `filter`'s parameters (no `page`): the path
    /// rule checked here first, as for single files.
    fn tree_url(&self, project: &str, job: &JobRef, filter: &TreeFilter) -> Result<Url> {
        let folder = filter.path.strip_suffix('/').unwrap_or(&filter.path);
        if !folder.is_empty() {
            artifact_core::ArtifactPath::new(folder).map_err(|e| Error::Engine(e.into()))?;
        }
        let mut url = match job {
            JobRef::Id(id) => self.project_url(project, &format!("/jobs/{id}/artifacts/tree"))?,
            JobRef::Latest { ref_name, job } => {
                let r = ref_segment(ref_name)?;
                let mut url = self.project_url(project, &format!("/jobs/artifacts/{r}/tree"))?;
                url.query_pairs_mut().append_pair("job", job);
                url
            }
        };
        {
            let mut query = url.query_pairs_mut();
            if !folder.is_empty() {
                query.append_pair("path", folder);
            }
            if filter.recursive {
                query.append_pair("recursive", "true");
            }
            query.append_pair("per_page", &filter.per_page.unwrap_or(100).to_string());
            if filter.keyset {
                query.append_pair("pagination", "keyset");
            }
        }
        Ok(url)
    }
}
