//! The artifacts tree (an addition beyond GitLab): a job's archive's folders listed from
//! its `metadata.gz`, by job id and by ref + job name, with GitLab's two paginations.

use std::io::Write;

use artifact_server::ImportJob;
use axum::http::Method;
use serde_json::{Value, json};

const GET: Method = Method::GET;

use crate::support::{PUBLIC, World, fixture, private};

/// Names that must come back as they went in: spaces, `#`, `%`, `+`, non-ASCII, and the
/// right-to-left marks that make text read backwards.
const ODD: &[&str] = &[
    "with space/a b.txt",
    "with space/c#d.txt",
    "with space/50%+1.txt",
    "ünï/çødé.txt",
    "ünï/\u{200f}rtl\u{202e}txt.exe",
    "top#.txt",
    "tree",
];

/// An archive of `names` (each holding its own name) written by the zip crate.
fn archive_of(w: &World, file: &str, names: &[&str]) -> std::path::PathBuf {
    let path = w.dir.path().join(file);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for name in names {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        zip.start_file(*name, options).unwrap();
        zip.write_all(name.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn paths(body: &Value) -> Vec<String> {
    body.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_owned()).collect()
}

/// Every entry, following `Link: rel="next"` from `first` (a path and query).
async fn walk(w: &World, first: &str, user: &str) -> (Vec<String>, usize) {
    let (mut seen, mut pages, mut next) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(uri) = next.take() {
        let reply = w.get(&uri, user).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.text());
        seen.extend(paths(&reply.json()));
        pages += 1;
        let link = reply.headers.get("link").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
        next = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| l.trim_start_matches("<http://gitlab.test").split('>').next().unwrap().to_owned());
        assert!(pages < 50, "the pages end");
    }
    (seen, pages)
}

#[tokio::test]
async fn a_folder_lists_folders_first_with_gitlabs_shape_by_id_and_by_ref() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let root = w.get(&private(&format!("/jobs/{id}/artifacts/tree")), "reporter").await;
    assert_eq!(root.status, 200, "{}", root.text());
    assert_eq!(root.header("content-type"), "application/json");
    assert_eq!(
        root.json(),
        json!([
            {"name": "docs", "path": "docs", "type": "tree", "mode": "040000"},
            {"name": "big.txt", "path": "big.txt", "type": "blob", "mode": "100644", "size": 20900},
            {"name": "data.bin", "path": "data.bin", "type": "blob", "mode": "100644", "size": 1024},
            {"name": "empty.txt", "path": "empty.txt", "type": "blob", "mode": "100644", "size": 0},
        ])
    );
    assert_eq!((root.header("x-total"), root.header("x-page"), root.header("x-per-page")), ("4", "1", "20"));
    let docs = w.get(&private(&format!("/jobs/{id}/artifacts/tree?path=docs/")), "developer").await.json();
    assert_eq!(paths(&docs), ["docs/nested", "docs/readme.txt"]);
    let deep = w.get(&private(&format!("/jobs/{id}/artifacts/tree?path=docs&recursive=true")), "developer").await;
    assert_eq!(
        paths(&deep.json()),
        ["docs/nested", "docs/nested/deep", "docs/nested/deep/leaf.txt", "docs/readme.txt"]
    );
    // By ref + job name: the same listing.
    let by_ref = w.get(&private("/jobs/artifacts/main/tree?job=build&path=docs"), "developer").await;
    assert_eq!(by_ref.status, 200, "{}", by_ref.text());
    assert_eq!(by_ref.json(), docs);
    // A HEAD answers the same head, without a body.
    let uri = private(&format!("/jobs/{id}/artifacts/tree"));
    let head = w.send(axum::http::Method::HEAD, &uri, Some("developer"), &[]).await;
    assert_eq!((head.status.as_u16(), head.header("x-total"), head.body.len()), (200, "4", 0));
}

#[tokio::test]
async fn what_is_not_there_is_404_and_a_bad_parameter_400() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let tree = |q: &str| private(&format!("/jobs/{id}/artifacts/tree?{q}"));
    w.get(&tree("path=nope"), "developer").await.expect(404, r#"{"message":"404 Not Found"}"#);
    w.get(&tree("path=docs/readme.txt"), "developer").await.expect(404, r#"{"message":"404 Not Found"}"#);
    for bad in
        ["path=../etc", "path=docs/../..", "path=%2Fetc", "path=a%00b", "recursive=yes", "page=x", "pagination=x"]
    {
        let reply = w.get(&tree(bad), "developer").await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
    }
    let bad_token = w.get(&tree("pagination=keyset&page_token=bm9wZQ"), "developer").await;
    bad_token.expect(400, r#"{"error":"page_token is invalid"}"#);
    // A job without artifacts, one of no such ref, and callers who may not read.
    let bare = w.import(w.job("lint"))["id"].as_i64().unwrap();
    w.get(&private(&format!("/jobs/{bare}/artifacts/tree")), "developer")
        .await
        .expect(404, r#"{"message":"404 Not found"}"#);
    let missing = w.get(&private("/jobs/artifacts/nope/tree?job=build"), "developer").await;
    assert_eq!(missing.status, 404);
    assert_eq!(w.get(&private("/jobs/artifacts/main/tree"), "developer").await.status, 400, "job is missing");
    // Who may not read the job's files may not list them: endpoint 7's answers.
    let file = private(&format!("/jobs/{id}/artifacts/empty.txt"));
    for user in [Some("guest"), Some("outsider"), None] {
        let (listed, read) = (w.send(GET, &tree(""), user, &[]).await, w.send(GET, &file, user, &[]).await);
        assert_eq!((listed.status, listed.json()), (read.status, read.json()), "{user:?}");
        assert!(listed.status.is_client_error(), "{user:?}");
    }
    // A public project's tree reads anonymously, as its files do.
    let public =
        w.import(ImportJob { artifacts: Some(fixture("infozip-basic.zip")), ..ImportJob::new(PUBLIC, "main", "b") });
    let public = public["id"].as_i64().unwrap();
    let uri = format!("/api/v4/projects/group%2Fpublic/jobs/{public}/artifacts/tree");
    assert_eq!(w.send(GET, &uri, None, &[]).await.status, 200);
}

#[tokio::test]
async fn odd_names_round_trip_through_both_paginations() {
    let w = World::new();
    let zip = archive_of(&w, "odd.zip", ODD);
    let id = w.import(ImportJob { artifacts: Some(zip), ..w.job("odd") })["id"].as_i64().unwrap();
    let all = w.get(&private(&format!("/jobs/{id}/artifacts/tree?recursive=true&per_page=100")), "developer").await;
    let mut expected: Vec<String> = ODD.iter().map(|s| s.to_string()).collect();
    expected.extend(["with space".into(), "ünï".into()]);
    let listed = paths(&all.json());
    let mut sorted = listed.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "every path, as it was written");
    assert_eq!(&listed[..2], ["with space", "ünï"], "folders first");
    // A folder named with a space, `#` and `%`, asked for by its escaped name.
    let spaced = w.get(&private(&format!("/jobs/{id}/artifacts/tree?path=with%20space")), "developer").await.json();
    assert_eq!(paths(&spaced), ["with space/50%+1.txt", "with space/a b.txt", "with space/c#d.txt"]);
    assert_eq!(spaced[1]["name"], "a b.txt");
    assert_eq!(spaced[1]["mode"], "100755");
    // A root file named `tree` is the tree's route as it is, and endpoint 7's encoded.
    let file = w.get(&private(&format!("/jobs/{id}/artifacts/%74ree")), "developer").await;
    assert_eq!((file.status.as_u16(), file.text().as_str()), (200, "tree"));
    let by_ref = w.get(&private("/jobs/artifacts/main/raw/tree?job=odd"), "developer").await;
    assert_eq!((by_ref.status.as_u16(), by_ref.text().as_str()), (200, "tree"));
    // Both paginations, one entry a page: the same entries in the same order.
    let (offset, pages) =
        walk(&w, &private(&format!("/jobs/{id}/artifacts/tree?recursive=true&per_page=1")), "developer").await;
    assert_eq!((offset.as_slice(), pages), (listed.as_slice(), listed.len()));
    let keyset = private(&format!("/jobs/{id}/artifacts/tree?recursive=true&per_page=1&pagination=keyset"));
    let (keyset, pages) = walk(&w, &keyset, "developer").await;
    assert_eq!((keyset.as_slice(), pages), (listed.as_slice(), listed.len()));
}

#[tokio::test]
async fn keyset_links_are_gitlabs_and_the_last_page_has_none() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let first = w.get(&private(&format!("/jobs/{id}/artifacts/tree?pagination=keyset&per_page=3")), "developer").await;
    assert_eq!(paths(&first.json()), ["docs", "big.txt", "data.bin"]);
    assert_eq!(first.header("x-total"), "<none>", "keyset pages are not counted");
    // `{"file_name":"data.bin"}`, GitLab's parameters sorted, with its defaults.
    assert_eq!(
        first.header("link"),
        format!(
            "<http://gitlab.test/api/v4/projects/group%2Fprivate/jobs/{id}/artifacts/tree?id=group%2Fprivate&page=1\
             &page_token=eyJmaWxlX25hbWUiOiJkYXRhLmJpbiJ9&pagination=keyset&per_page=3&recursive=false>; rel=\"next\""
        )
    );
    let link = first.header("link").to_owned();
    let next = link.trim_start_matches("<http://gitlab.test").split('>').next().unwrap();
    let last = w.get(next, "developer").await;
    assert_eq!(paths(&last.json()), ["empty.txt"]);
    assert_eq!(last.header("link"), "<none>");
}
