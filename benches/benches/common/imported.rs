//! A data folder holding one imported job, for the benches that call the router.

use std::path::Path;

use artifact_server::{Admin, DataDir, ImportJob};

/// `zip` imported as job `many` on `main` of the private project `bench/app` in a data folder
/// under `dir`, with an administrator's token: the folder, the token and the job's id.
pub(crate) fn imported(dir: &Path, zip: &Path) -> (DataDir, String, i64) {
    let data = DataDir::open(&dir.join("data")).unwrap();
    let admin = Admin::new(data.store(), data.blobs(), "http://bench");
    admin.add_project("bench/app", false).unwrap();
    admin.add_user("bench", true).unwrap();
    let token = admin.add_token("bench").unwrap();
    let job = ImportJob { artifacts: Some(zip.to_owned()), ..ImportJob::new("bench/app", "main", "many") };
    let id = admin.import(&job).unwrap().job["id"].as_i64().unwrap();
    (data, token, id)
}
