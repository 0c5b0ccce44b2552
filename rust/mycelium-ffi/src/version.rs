//! ABI version constants and the runtime version query.

use std::ffi::c_char;

/// ABI major version: a handle from a library with another major is refused.
pub const MYCELIUM_ABI_VERSION_MAJOR: u32 = 1;
/// ABI minor version: grows when functions, table entries or struct fields are appended.
/// 1.1: `mycelium_subscribe_options.spin_us`, `mycelium_publish_with_hooks`,
/// `mycelium_subscription_stats_get`.
/// 1.2: `mycelium_*_init_sized` (the header's init macros pass the caller's `sizeof`).
/// 1.3: request/reply: `mycelium_serve`, `mycelium_unserve`, `mycelium_request`,
/// `mycelium_request_all`, `mycelium_reply_write`, `mycelium_reply_fail`, statuses
/// `MYCELIUM_ERR_NO_RESPONDER` and `MYCELIUM_ERR_RESPONDER_FAILED`.
/// 1.4: named topics: `mycelium_publish_topic`, `mycelium_subscribe_options.pattern`.
/// 1.5: `mycelium_message_topic` (the topic of a message being delivered),
/// `mycelium_enable_topic_metrics`.
pub const MYCELIUM_ABI_VERSION_MINOR: u32 = 5;

/// The ABI version of the loaded library as `(major << 16) | minor`.
///
/// Compare with `MYCELIUM_ABI_VERSION` from the header to refuse a mismatched library.
/// Thread-safe, never blocks, never calls back, allocates nothing.
#[no_mangle]
pub extern "C" fn mycelium_abi_version() -> u32 {
    (MYCELIUM_ABI_VERSION_MAJOR << 16) | MYCELIUM_ABI_VERSION_MINOR
}

/// The library's package version (e.g. "0.1.0") as a static NUL-terminated string.
///
/// Owned by the library (never free it); valid for the life of the process. Thread-safe,
/// never blocks, never calls back.
#[no_mangle]
pub extern "C" fn mycelium_version_string() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}
