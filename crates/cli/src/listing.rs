//! What `ls` and `metadata ls` print: one row per path, as lines, long lines or JSON.

use std::io::{self, Write};

use artifact_core::Entry;
use serde::Serialize;

use crate::error::CliError;

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One path per line.
    Plain,
    /// Mode, size, modification time (UTC) and path.
    Long,
    /// One JSON array of [`Row`] objects.
    Json,
}

impl Format {
    /// The format the `--long` and `--json` flags ask for (clap keeps them apart).
    pub(crate) fn from_flags(long: bool, json: bool) -> Format {
        match (long, json) {
            (_, true) => Format::Json,
            (true, false) => Format::Long,
            (false, false) => Format::Plain,
        }
    }
}

/// One listed path; `None` (JSON `null`) where the source does not say, as for the
/// directories a listing implies from deeper paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    /// The path (lossy UTF-8); directories end in `/`.
    pub(crate) path: String,
    /// Whether it is a directory.
    pub(crate) dir: bool,
    /// Uncompressed size.
    pub(crate) size: Option<u64>,
    /// Compressed size.
    pub(crate) compressed_size: Option<u64>,
    /// CRC-32 of the content.
    pub(crate) crc32: Option<u32>,
    /// Compression method (0 stored, 8 deflate).
    pub(crate) method: Option<u16>,
    /// Permission bits as GitLab's metadata writes them: octal text such as `"644"`.
    #[serde(serialize_with = "octal")]
    pub(crate) mode: Option<u32>,
    /// Modification time, Unix seconds (the MS-DOS time read as UTC).
    pub(crate) modified: Option<i64>,
    /// Whether it is a symbolic link.
    pub(crate) symlink: Option<bool>,
}

impl Row {
    /// The row for a path of the archive's tree: an entry, or a directory it implies.
    pub(crate) fn from_tree(path: &[u8], entry: Option<&Entry>) -> Row {
        let path = String::from_utf8_lossy(path).into_owned();
        match entry {
            Some(e) => Row {
                path,
                dir: e.is_dir(),
                size: Some(e.size()),
                compressed_size: Some(e.compressed_size()),
                crc32: Some(e.crc32()),
                method: Some(e.method()),
                mode: Some(e.permissions()),
                modified: Some(e.modified_unix()),
                symlink: Some(e.is_symlink()),
            },
            None => Row {
                path,
                dir: true,
                size: None,
                compressed_size: None,
                crc32: None,
                method: None,
                mode: None,
                modified: None,
                symlink: Some(false),
            },
        }
    }
}

fn octal<S: serde::Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match mode {
        Some(m) => s.serialize_str(&format!("{m:o}")),
        None => s.serialize_none(),
    }
}

/// The directory whose children are listed: `""` is the root; anything else ends in `/`.
pub(crate) fn dir_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") }
}

/// Prints `rows` to stdout in `format`.
pub(crate) fn print(rows: impl IntoIterator<Item = Row>, format: Format) -> Result<(), CliError> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    write_rows(&mut out, rows, format).and_then(|()| out.flush()).map_err(|e| CliError::output("stdout", e))
}

fn write_rows(out: &mut impl Write, rows: impl IntoIterator<Item = Row>, format: Format) -> io::Result<()> {
    if format == Format::Json {
        let rows: Vec<Row> = rows.into_iter().collect();
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        return out.write_all(b"\n");
    }
    for row in rows {
        if format == Format::Long {
            let size = row.size.map_or_else(|| "-".to_owned(), |s| s.to_string());
            let time = row.modified.map_or_else(|| "-".to_owned(), utc_minutes);
            write!(out, "{} {size:>10} {time:<16} ", mode_string(&row))?;
        }
        writeln!(out, "{}", row.path)?;
    }
    Ok(())
}

/// `ls -l` style: type and permission bits; `?` where the permissions are unknown.
pub(crate) fn mode_string(row: &Row) -> String {
    let kind = if row.symlink == Some(true) {
        'l'
    } else if row.dir {
        'd'
    } else {
        '-'
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    match row.mode {
        Some(mode) => {
            for shift in [6, 3, 0] {
                let bits = (mode >> shift) & 0o7;
                s.push(if bits & 4 != 0 { 'r' } else { '-' });
                s.push(if bits & 2 != 0 { 'w' } else { '-' });
                s.push(if bits & 1 != 0 { 'x' } else { '-' });
            }
        }
        None => s.push_str("?????????"),
    }
    s
}

/// Unix seconds as `YYYY-MM-DD HH:MM`, UTC.
pub(crate) fn utc_minutes(secs: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else { return String::new() };
    let (h, m) = (t.hour(), t.minute());
    format!("{:04}-{:02}-{:02} {h:02}:{m:02}", t.year(), u8::from(t.month()), t.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00");
        assert_eq!(utc_minutes(1_704_164_646), "2024-01-02 03:04");
        assert_eq!(utc_minutes(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_minutes(312_768_000), "1979-11-30 00:00");
    }

    #[test]
    fn modes_read_like_ls() {
        let mut row = Row::from_tree(b"d/", None);
        assert_eq!(mode_string(&row), "d?????????");
        row.mode = Some(0o755);
        assert_eq!(mode_string(&row), "drwxr-xr-x");
        row.dir = false;
        row.mode = Some(0o644);
        assert_eq!(mode_string(&row), "-rw-r--r--");
        row.symlink = Some(true);
        row.mode = Some(0o777);
        assert_eq!(mode_string(&row), "lrwxrwxrwx");
    }

    #[test]
    fn prefixes_become_directories() {
        assert_eq!(dir_prefix(""), "");
        assert_eq!(dir_prefix("a"), "a/");
        assert_eq!(dir_prefix("a/b/"), "a/b/");
    }
}
