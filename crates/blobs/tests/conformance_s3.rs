//! The blobs' contract in an S3-compatible bucket (a real moto server from PyPI, started by
//! the testkit, under a key prefix): every check of the conformance suite. Built with the
//! feature `external-tests` (the README's test command).

use artifact_blobs::S3Blobs;
use artifact_testkit::s3::S3Server;

#[test]
fn a_bucket_passes_the_conformance_suite() {
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let config = server.config();
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let blobs = S3Blobs::open_with(&format!("s3://{bucket}/some/prefix"), &config).unwrap();
    artifact_blobs::conformance::run(&blobs, &|| S3Server::shared().objects(&bucket).len());
}
