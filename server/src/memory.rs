//! How the process allocator treats the large, short-lived buffers of a forward pass.
//!
//! Every op of a forward pass allocates its output afresh: megabytes per op, freed a moment
//! later. glibc serves blocks that large with `mmap` and, once freed, hands them (or the top of
//! the heap) back to the kernel, so the next op's buffer is faulted in and zeroed page by page
//! again. A profile of CPU embedding put about 15% of the time there. Keeping such blocks in the
//! heap for reuse removes that cost; PyTorch gets the same effect from its caching allocator.

/// Lets glibc reuse freed buffers of up to 32 MiB (a 4,096-token batch's widest activation is
/// 25 MB for MiniLM) instead of returning them to the kernel, and returns heap memory only
/// beyond 256 MiB free at the top. Peak memory is unchanged (the buffers are reused, not
/// added); memory stays at its peak between batches. `CODER_LSP_MALLOC=default` keeps glibc's
/// defaults. Does nothing on other C libraries. Call once, at start, before threads start.
pub fn reuse_large_buffers() {
    if std::env::var("CODER_LSP_MALLOC").is_ok_and(|v| v.eq_ignore_ascii_case("default")) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::tune();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // one FFI call into glibc's allocator
mod glibc {
    use std::ffi::c_int;

    // From glibc's malloc.h.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;

    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }

    pub(super) fn tune() {
        // SAFETY: mallopt only changes allocator parameters; both values are in the ranges
        // glibc accepts (the mmap threshold's maximum is 32 MiB on 64-bit systems), and it is
        // called before other threads allocate. A refusal (0) leaves glibc's defaults, which
        // work too, only slower.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}
