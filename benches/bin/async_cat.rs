//! Streams one entry through the async face (`entry_async_reader`) into a sink and prints the
//! byte count: the whole-process check that the async face runs in constant memory.
//!
//! Usage: `async-cat ARCHIVE ENTRY`

use artifact_core::{Archive, ArtifactPath, FileSource, entry_async_reader};
use tokio::io::AsyncReadExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (archive, name) = (args.next().ok_or("ARCHIVE")?, args.next().ok_or("ENTRY")?);
    let archive = Archive::open(FileSource::open(archive)?)?;
    let entry = archive.find(&ArtifactPath::new(&name)?)?;
    let reader = archive.reader(&entry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
    let total = runtime.block_on(async move {
        let mut reader = entry_async_reader(reader);
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf).await? {
                0 => return Ok::<_, std::io::Error>(total),
                n => total += n as u64,
            }
        }
    })?;
    println!("{total}");
    Ok(())
}
