//! [`HttpSource`]: a remote archive read with range requests, each checked against the
//! version the first one found.

use super::*;

/// A remote archive read with range requests.
#[derive(Debug, Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
}

impl HttpSource {
    /// Opens the archive at `url`: one suffix request, following up to
    /// `options.max_redirects` redirects and dropping credentials on a change of origin.
    pub fn open(url: &str, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::open_with(client(options)?, url, options)
    }

    /// Like [`open`](Self::open), with a client built once by [`client`] and shared.
    pub fn open_with(client: Client, url: &str, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::open_counted(client, url, options, Arc::default())
    }

    /// Like [`open_with`](Self::open_with), counting requests and bytes into `counter`
    /// (shared by every source of a [`RemoteArchives`]).
    pub(crate) fn open_counted(
        client: Client,
        url: &str,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        let mut url = parse_url(url)?;
        let suffix = format!("bytes=-{}", options.suffix_len.max(1));
        let mut chain = Redirects::new(&url, &options.headers, options.max_redirects);
        let response = loop {
            options.destinations.check(&url)?;
            counter.record_request();
            let response = client
                .get(url.clone())
                .headers(chain.headers().clone())
                .header(header::RANGE, &suffix)
                .send()
                .map_err(|e| transport(url.as_str(), e))?;
            if !response.status().is_redirection() {
                break response;
            }
            let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
            url = chain.follow(&url, location).map_err(|end| {
                http_error(
                    &url,
                    match end {
                        RedirectEnd::TooMany(max) => HttpProblem::TooManyRedirects(max),
                        RedirectEnd::NoLocation => HttpProblem::BadRedirect,
                    },
                )
            })?;
        };
        let headers = chain.headers().clone();
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT => {}
            StatusCode::OK if options.spool_without_range => {
                let validator = Validator::from_headers(response.headers());
                let file = spool(response, &url, &counter)?;
                let size = file.len();
                let inner = Inner {
                    client,
                    url,
                    headers,
                    size,
                    validator,
                    tail: Bytes::new(),
                    counter,
                    spooled: Some(file),
                    max_buffered: options.max_buffered,
                };
                return Ok(HttpSource { inner: Arc::new(inner) });
            }
            StatusCode::OK => {
                return Err(Unsupported::ServerIgnoresRange { url: shown(&url) }.into());
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(Error::ArchiveNotFound { url: shown(&url), status: status.as_u16() });
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let total = response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
                if total.and_then(content_range::unsatisfied_total) == Some(0) {
                    // An empty file: no end record in it.
                    let empty = crate::Corruption::NoEndOfCentralDirectory { searched: 0, archive_size: 0 };
                    return Err(empty.into());
                }
                return Err(http_error(&url, HttpProblem::Status(416)));
            }
            other => return Err(http_error(&url, HttpProblem::Status(other.as_u16()))),
        }
        let range = content_range_of(response.headers(), &url)?;
        let size = range.total;
        let wanted_start = size.saturating_sub(options.suffix_len.max(1));
        if range.start != wanted_start || range.end != size - 1 {
            let expected = format!("{wanted_start}-{}/{size}", size - 1);
            return Err(wrong_range(&url, expected, response.headers()));
        }
        let validator = Validator::from_headers(response.headers());
        let tail = read_body(response, range.len(), &url, &counter)?;
        let inner = Inner {
            client,
            url,
            headers,
            size,
            validator,
            tail,
            counter,
            spooled: None,
            max_buffered: options.max_buffered,
        };
        Ok(HttpSource { inner: Arc::new(inner) })
    }

    /// A source for an archive whose identity a cache remembers, as first asked for at
    /// `asked`: no request is made until bytes are asked for, and every request checks the
    /// validator, so a changed archive shows as [`Error::Changed`]. Credentials go only to
    /// the origin of `asked`.
    pub fn known(client: Client, asked: &str, identity: &RemoteIdentity, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::known_counted(client, asked, identity, options, Arc::default())
    }

    pub(crate) fn known_counted(
        client: Client,
        asked: &str,
        identity: &RemoteIdentity,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        let (url, asked) = (parse_url(&identity.url)?, parse_url(asked)?);
        options.destinations.check(&url)?;
        let inner = Inner {
            client,
            headers: headers_for(&url, &asked, &options.headers),
            url,
            size: identity.size,
            validator: identity.validator.clone(),
            tail: Bytes::new(),
            counter,
            spooled: None,
            max_buffered: options.max_buffered,
        };
        Ok(HttpSource { inner: Arc::new(inner) })
    }

    /// What identifies this version of the archive.
    pub fn identity(&self) -> RemoteIdentity {
        RemoteIdentity {
            url: self.inner.url.to_string(),
            size: self.inner.size,
            validator: self.inner.validator.clone(),
        }
    }

    /// The bytes of the first request: the archive's last bytes.
    pub fn tail(&self) -> &Bytes {
        &self.inner.tail
    }

    /// Whether the whole archive was downloaded to a temporary file (a server that ignores
    /// `Range`, with [`HttpOptions::spool_without_range`]): every read is then local.
    pub fn is_spooled(&self) -> bool {
        self.inner.spooled.is_some()
    }
}

/// Downloads a whole body into an unnamed temporary file (gone when closed).
fn spool(mut response: Response, url: &Url, counter: &ReadCounter) -> Result<FileSource> {
    let expected = response.content_length();
    let mut file = tempfile::tempfile()?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        use std::io::{Read, Write};
        let n = response.read(&mut buf).map_err(|e| http_error(url, HttpProblem::Transport(e.to_string())))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        counter.record_bytes(n);
        received += n as u64;
    }
    if let Some(expected) = expected.filter(|&e| e != received) {
        return Err(http_error(url, HttpProblem::ShortBody { expected, received }));
    }
    Ok(FileSource::new(file)?.with_map_threshold(usize::MAX))
}

/// Reads a whole (small) body of exactly `len` bytes.
fn read_body(mut response: Response, len: u64, url: &Url, counter: &ReadCounter) -> Result<Bytes> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(len.min(64 << 20) as usize);
    let received = (&mut response).take(len + 1).read_to_end(&mut buf);
    counter.record_bytes(buf.len());
    received.map_err(|e| http_error(url, HttpProblem::Transport(e.to_string())))?;
    if buf.len() as u64 != len {
        return Err(http_error(url, HttpProblem::ShortBody { expected: len, received: buf.len() as u64 }));
    }
    Ok(Bytes::from(buf))
}

impl Source for HttpSource {
    fn len(&self) -> u64 {
        self.inner.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if let Some(file) = &self.inner.spooled {
            return file.read_exact_at(offset, buf);
        }
        let bytes = self.read_bytes(offset, buf.len())?;
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    /// Bytes the first request brought cost nothing; a range that ends inside them costs one
    /// request for the part before them.
    fn read_bytes(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let inner = &self.inner;
        if let Some(file) = &inner.spooled {
            return file.read_bytes(offset, len);
        }
        check_range(offset, len as u64, inner.size)?;
        let end = offset + len as u64;
        let tail_start = inner.tail_start();
        if len == 0 {
            return Ok(Bytes::new());
        }
        if offset >= tail_start && !inner.tail.is_empty() {
            let at = (offset - tail_start) as usize;
            return Ok(inner.tail.slice(at..at + len));
        }
        if len as u64 > inner.max_buffered {
            let problem = HttpProblem::TooLarge { len: len as u64, limit: inner.max_buffered };
            return Err(http_error(&inner.url, problem).into());
        }
        let fetch_end = if end > tail_start && !inner.tail.is_empty() { tail_start } else { end };
        let response = inner.get(offset, fetch_end)?;
        let head = read_body(response, fetch_end - offset, &inner.url, &inner.counter)?;
        if fetch_end == end {
            return Ok(head);
        }
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(&head);
        joined.extend_from_slice(&inner.tail[..(end - tail_start) as usize]);
        Ok(Bytes::from(joined))
    }

    fn read_stream(&self, offset: u64, len: u64) -> std::io::Result<RangeReader> {
        if let Some(file) = &self.inner.spooled {
            return file.read_stream(offset, len);
        }
        check_range(offset, len, self.inner.size)?;
        Ok(Box::new(body::RemoteBody::new(self.inner.clone(), offset, offset + len)))
    }

    fn stats(&self) -> ReadStats {
        self.inner.counter.snapshot()
    }
}
