//! What every on-demand piece shares (included by each piece crate's
//! `lib.rs`): built for wasm32 it is `no_std`, with a panic handler that
//! traps (no panic formatting in the module; nothing here panics on any
//! input, see `core/`) and `lol_alloc`; its input is UTF-8 text the caller
//! writes into the buffer [`input`] hands out. Natively (the workspace's
//! tests and lints) it is an ordinary std library.

use alloc::vec::Vec;

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

// A free-list allocator is enough for a call's few short-lived buffers
// (dlmalloc is ~8 KB).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
// The crate's documented single-threaded constructor; wasm32 here has no threads.
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// The input buffer: one module instance, one thread, one call at a time.
static mut INPUT: Vec<u8> = Vec::new();

/// Export `input(len) -> ptr`: room for `len` bytes of input, where the
/// caller writes them before the call that reads them. Valid until the next
/// `input` call.
#[no_mangle]
pub extern "C" fn input(len: usize) -> *mut u8 {
    // Only this module touches INPUT, from one thread, never re-entrantly.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(INPUT) };
    buf.clear();
    buf.resize(len, 0);
    buf.as_mut_ptr()
}

/// The first `len` bytes of the input as text; invalid UTF-8 (a caller that
/// did not write what it said) reads as nothing.
pub fn text(len: usize) -> &'static str {
    // As in `input`.
    let buf = unsafe { &*core::ptr::addr_of!(INPUT) };
    buf.get(..len)
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("")
}
