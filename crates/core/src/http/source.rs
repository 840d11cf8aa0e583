//! [`HttpSource`]: a remote archive read with range requests, each checked against the
//! version the first one found.
#![forbid(unsafe_code)]

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
    pub fn open_with(client: HttpClient, url: &str, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::open_counted(client, url, options, Arc::default())
    }

    /// Like [`open_with`](Self::open_with), on async I/O: the suffix request is made on the
    /// caller's runtime. Reads of the source's bytes ([`Source`]) block. With
    /// [`spool_without_range`](HttpOptions::spool_without_range), a whole download is written
    /// to its file from the caller's thread: use [`open_with`](Self::open_with) for that.
    pub async fn open_async(client: HttpClient, url: &str, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::open_async_counted(client, url, options, Arc::default()).await
    }

    /// Like [`open_with`](Self::open_with), counting requests and bytes into `counter`
    /// (shared by every source of a [`RemoteArchives`]).
    pub(crate) fn open_counted(
        client: HttpClient,
        url: &str,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        client.clone().block_on(HttpSource::open_async_counted(client, url, options, counter))?
    }

    pub(crate) async fn open_async_counted(
        client: HttpClient,
        url: &str,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        let mut url = parse_url(url)?;
        let suffix = HeaderValue::from_str(&format!("bytes=-{}", options.suffix_len.max(1)))
            .map_err(|_| client::transport(&url, "bad suffix"))?;
        let mut chain = Redirects::new(&url, &options.headers, options.max_redirects)
            .credentials_on_origin(options.credentials_after_redirect);
        let response = loop {
            options.destinations.check(&url)?;
            counter.record_request();
            let mut headers = chain.headers().clone();
            headers.insert(header::RANGE, suffix.clone());
            let response = client.get(&url, headers).await?;
            if !response.status().is_redirection() {
                break response;
            }
            let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
            url = chain.follow(&url, location).map_err(|end| super::redirect_error(&url, end))?;
        };
        let headers = chain.headers().clone();
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT => {}
            StatusCode::OK if options.spool_without_range => {
                let validator = Validator::from_headers(response.headers());
                let file = spool(&client, response, &url, &counter).await?;
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
        let tail = read_body(&client, response.into_body(), range.len(), &url, &counter).await?;
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
    pub fn known(
        client: HttpClient,
        asked: &str,
        identity: &RemoteIdentity,
        options: &HttpOptions,
    ) -> Result<HttpSource> {
        HttpSource::known_counted(client, asked, identity, options, Arc::default())
    }

    pub(crate) fn known_counted(
        client: HttpClient,
        asked: &str,
        identity: &RemoteIdentity,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        let (url, asked) = (parse_url(&identity.url)?, parse_url(asked)?);
        options.destinations.check(&url)?;
        let inner = Inner {
            client,
            headers: headers_for(&url, &asked, &options.headers, options.credentials_after_redirect),
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

    /// Where ranges are read (the end of the first request's redirects).
    pub(crate) fn url(&self) -> &Url {
        &self.inner.url
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
async fn spool(
    client: &HttpClient,
    response: hyper::Response<Incoming>,
    url: &Url,
    counter: &ReadCounter,
) -> Result<FileSource> {
    use std::io::Write;
    let expected = response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = response.into_body();
    let mut file = std::io::BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?);
    let mut received = 0u64;
    while let Some(bytes) = client.next_bytes(&mut body, url).await? {
        file.write_all(&bytes)?;
        counter.record_bytes(bytes.len());
        received += bytes.len() as u64;
    }
    if let Some(expected) = expected.filter(|&e| e != received) {
        return Err(http_error(url, HttpProblem::ShortBody { expected, received }));
    }
    let file = file.into_inner().map_err(|e| Error::Io(e.into_error()))?;
    Ok(FileSource::new(file)?.with_map_threshold(usize::MAX))
}

/// Reads a whole (small) body of exactly `len` bytes.
async fn read_body(
    client: &HttpClient,
    mut body: Incoming,
    len: u64,
    url: &Url,
    counter: &ReadCounter,
) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::with_capacity(len.min(64 << 20) as usize);
    while let Some(bytes) = client.next_bytes(&mut body, url).await? {
        counter.record_bytes(bytes.len());
        if buf.len() as u64 + bytes.len() as u64 > len {
            let received = buf.len() as u64 + bytes.len() as u64;
            return Err(http_error(url, HttpProblem::ShortBody { expected: len, received }));
        }
        buf.extend_from_slice(&bytes);
    }
    if buf.len() as u64 != len {
        return Err(http_error(url, HttpProblem::ShortBody { expected: len, received: buf.len() as u64 }));
    }
    Ok(buf.freeze())
}

impl HttpSource {
    /// `len` bytes at `offset` on async I/O: from the first request's bytes when they hold
    /// them, else one range request (for the part before them, when the range ends inside
    /// them).
    pub(crate) async fn read_bytes_async(&self, offset: u64, len: usize) -> Result<Bytes> {
        if let Some(bytes) = self.at_hand(offset, len)? {
            return Ok(bytes);
        }
        let inner = &self.inner;
        let end = offset + len as u64;
        let tail_start = inner.tail_start();
        if len as u64 > inner.max_buffered {
            let problem = HttpProblem::TooLarge { len: len as u64, limit: inner.max_buffered };
            return Err(http_error(&inner.url, problem));
        }
        let fetch_end = if end > tail_start && !inner.tail.is_empty() { tail_start } else { end };
        let body = inner.range(offset, fetch_end).await?;
        let head = read_body(&inner.client, body, fetch_end - offset, &inner.url, &inner.counter).await?;
        if fetch_end == end {
            return Ok(head);
        }
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(&head);
        joined.extend_from_slice(&inner.tail[..(end - tail_start) as usize]);
        Ok(Bytes::from(joined))
    }

    /// Bytes `offset..offset + len` if they are at hand without a request: from the whole
    /// download, or inside the first request's bytes (or none at all).
    fn at_hand(&self, offset: u64, len: usize) -> std::io::Result<Option<Bytes>> {
        let inner = &self.inner;
        if let Some(file) = &inner.spooled {
            return file.read_bytes(offset, len).map(Some);
        }
        check_range(offset, len as u64, inner.size)?;
        let tail_start = inner.tail_start();
        if len == 0 {
            return Ok(Some(Bytes::new()));
        }
        if offset >= tail_start && !inner.tail.is_empty() {
            let at = (offset - tail_start) as usize;
            return Ok(Some(inner.tail.slice(at..at + len)));
        }
        Ok(None)
    }
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
        if let Some(bytes) = self.at_hand(offset, len)? {
            return Ok(bytes);
        }
        Ok(self.inner.client.block_on(self.read_bytes_async(offset, len))??)
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
