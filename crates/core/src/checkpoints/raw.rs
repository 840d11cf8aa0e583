//! Raw inflate through zlib-rs's zlib interface: the one place in this crate that calls it.

use super::*;

/// Raw inflate through zlib-rs's zlib interface: `Z_BLOCK`, `data_type`, `inflatePrime`
/// and `inflateSetDictionary`, which the safe wrappers do not offer.
pub(super) struct RawInflate {
    /// Boxed: zlib's state points back at its stream, which must not move.
    strm: Box<libz_rs_sys::z_stream>,
}

// SAFETY: the stream owns its state (allocated by zlib-rs with the Rust allocator) and the
// input and output pointers are set for the duration of one `run` call only.
#[allow(unsafe_code)]
unsafe impl Send for RawInflate {}

#[allow(unsafe_code)]
impl RawInflate {
    /// A raw deflate (no header) inflater with a 32 KiB window.
    pub(super) fn new() -> io::Result<RawInflate> {
        let mut strm = Box::new(libz_rs_sys::z_stream::default());
        let size = std::mem::size_of::<libz_rs_sys::z_stream>() as i32;
        // SAFETY: `strm` is a default (zeroed, allocator unset: zlib-rs picks its own)
        // stream, the version string is the library's own, and the size is the struct's.
        let ret = unsafe { libz_rs_sys::inflateInit2_(&mut *strm, -15, libz_rs_sys::zlibVersion(), size) };
        if ret != libz_rs_sys::Z_OK {
            return Err(io::Error::other(format!("inflate could not start ({ret})")));
        }
        Ok(RawInflate { strm })
    }

    /// Feeds the low `bits` bits of `value` as if they were the end of the previous byte.
    pub(super) fn prime(&mut self, bits: u8, value: u8) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new`.
        let ret = unsafe { libz_rs_sys::inflatePrime(&mut *self.strm, i32::from(bits), i32::from(value)) };
        (ret == libz_rs_sys::Z_OK).then_some(()).ok_or_else(|| io::Error::other("inflatePrime refused"))
    }

    /// Sets the window the next blocks may copy from.
    pub(super) fn set_window(&mut self, window: &[u8]) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new`; the pointer and length describe
        // `window`, which zlib copies before returning.
        let ret = unsafe { libz_rs_sys::inflateSetDictionary(&mut *self.strm, window.as_ptr(), window.len() as u32) };
        (ret == libz_rs_sys::Z_OK).then_some(()).ok_or_else(|| io::Error::other("inflateSetDictionary refused"))
    }

    /// One inflate call: `(input consumed, output produced, zlib's return code)`.
    pub(super) fn run(&mut self, input: &[u8], output: &mut [u8], flush: i32) -> (usize, usize, i32) {
        let (avail_in, avail_out) = (input.len().min(u32::MAX as usize), output.len().min(u32::MAX as usize));
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in as u32;
        self.strm.next_out = output.as_mut_ptr();
        self.strm.avail_out = avail_out as u32;
        // SAFETY: the stream was initialised by `new`; `next_in`/`avail_in` and
        // `next_out`/`avail_out` describe `input` and `output`, borrowed for this call, and
        // are cleared before it returns.
        let ret = unsafe { libz_rs_sys::inflate(&mut *self.strm, flush) };
        let consumed = avail_in - self.strm.avail_in as usize;
        let produced = avail_out - self.strm.avail_out as usize;
        self.strm.next_in = std::ptr::null();
        self.strm.avail_in = 0;
        self.strm.next_out = std::ptr::null_mut();
        self.strm.avail_out = 0;
        (consumed, produced, ret)
    }

    /// The window: the up to 32 KiB of output before the next byte inflate writes (fewer
    /// at the entry's start), what a checkpoint here must keep; `None` if zlib-rs refuses.
    pub(super) fn window(&self) -> Option<Vec<u8>> {
        let mut window = vec![0u8; WINDOW];
        let mut len: u32 = 0;
        // SAFETY: the stream was initialised by `new`; `window` is writable for 32 KiB,
        // which zlib documents as always enough, and `len` for the length written.
        let ret = unsafe { libz_rs_sys::inflateGetDictionary(&*self.strm, window.as_mut_ptr(), &mut len) };
        (ret == libz_rs_sys::Z_OK && len as usize <= WINDOW).then(|| {
            window.truncate(len as usize);
            window
        })
    }

    /// After a `Z_BLOCK` call: whether inflate stopped at the start of a block (not after
    /// the last one), and how many bits of the last byte consumed it has not used.
    pub(super) fn at_block_start(&self) -> Option<u8> {
        let t = self.strm.data_type;
        (t & 128 != 0 && t & 64 == 0).then_some((t & 7) as u8)
    }
}

#[allow(unsafe_code)]
impl Drop for RawInflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by `new` and is ended once.
        unsafe { libz_rs_sys::inflateEnd(&mut *self.strm) };
    }
}
