//! Loads the built cdylib with `libloading`, like a foreign host would, and drives the C ABI.
//! The test binary also links the rlib: a handle made by that copy and used through the
//! dynamically loaded copy exercises the function-table design (two copies, one bus).

use std::ffi::{c_char, c_void, CStr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use mycelium_ffi::{
    mycelium_closure, mycelium_message, mycelium_runtime_t, mycelium_status,
    mycelium_subscribe_options,
};
use mycelium_protocol::Schema;

type Create =
    unsafe extern "C" fn(*const c_char, usize, *mut *mut mycelium_runtime_t) -> mycelium_status;
type Destroy = unsafe extern "C" fn(*mut mycelium_runtime_t) -> mycelium_status;
type Clone_ = unsafe extern "C" fn(
    *const mycelium_runtime_t,
    *mut *mut mycelium_runtime_t,
) -> mycelium_status;
type Publish =
    unsafe extern "C" fn(*const mycelium_runtime_t, u16, *const u8, usize) -> mycelium_status;
type Subscribe = unsafe extern "C" fn(
    *const mycelium_runtime_t,
    u16,
    *const mycelium_subscribe_options,
    *const mycelium_closure,
    *mut u64,
) -> mycelium_status;
type Unsubscribe = unsafe extern "C" fn(*const mycelium_runtime_t, u64) -> mycelium_status;
type Flush = unsafe extern "C" fn(*const mycelium_runtime_t, u32) -> mycelium_status;
type LastError = unsafe extern "C" fn() -> *const c_char;
type AbiVersion = unsafe extern "C" fn() -> u32;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load() -> libloading::Library {
    // cargo builds the cdylib next to the test binary: target/<profile>/deps/
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let path = dir.join(format!(
        "{}mycelium_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    // SAFETY: loading our own cdylib; its initialisers only set up Rust std.
    unsafe { libloading::Library::new(&path) }
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
}

fn contracts() -> String {
    std::fs::read_to_string(root().join("contracts.yaml")).expect("contracts.yaml")
}

/// TradeTick payload: symbol string, price f64, size u32, ts_ns u64, side u8.
fn tick(symbol: &str, size: u32, ts: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(symbol.len() as u32).to_le_bytes());
    v.extend_from_slice(symbol.as_bytes());
    v.extend_from_slice(&1.25f64.to_le_bytes());
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(&ts.to_le_bytes());
    v.push(1);
    v
}

struct Counter {
    calls: AtomicU64,
    drops: AtomicUsize,
    bytes: AtomicU64,
}

unsafe extern "C" fn on_msg(ctx: *mut c_void, msg: *const mycelium_message) -> i32 {
    // SAFETY: ctx is the Arc<Counter> raw pointer we registered; msg is valid for the call.
    let (c, m) = unsafe { (&*(ctx as *const Counter), &*msg) };
    c.calls.fetch_add(1, Ordering::SeqCst);
    c.bytes.fetch_add(m.len as u64, Ordering::SeqCst);
    0
}

unsafe extern "C" fn on_drop(ctx: *mut c_void) {
    // SAFETY: ctx came from Arc::into_raw in `closure_for` and is released exactly once here.
    let c = unsafe { Arc::from_raw(ctx as *const Counter) };
    c.drops.fetch_add(1, Ordering::SeqCst);
}

fn closure_for(c: &Arc<Counter>) -> mycelium_closure {
    mycelium_closure {
        context: Arc::into_raw(c.clone()) as *mut c_void,
        call: Some(on_msg),
        call_batch: None,
        drop: Some(on_drop),
    }
}

fn counter() -> Arc<Counter> {
    Arc::new(Counter {
        calls: AtomicU64::new(0),
        drops: AtomicUsize::new(0),
        bytes: AtomicU64::new(0),
    })
}

#[test]
fn publish_subscribe_through_the_loaded_library() {
    let lib = load();
    // SAFETY: symbol types match the header's declarations.
    unsafe {
        let version: libloading::Symbol<AbiVersion> = lib.get(b"mycelium_abi_version").unwrap();
        assert_eq!(version() >> 16, mycelium_ffi::MYCELIUM_ABI_VERSION_MAJOR);
        let create: libloading::Symbol<Create> = lib.get(b"mycelium_runtime_create").unwrap();
        let destroy: libloading::Symbol<Destroy> = lib.get(b"mycelium_runtime_destroy").unwrap();
        let publish: libloading::Symbol<Publish> = lib.get(b"mycelium_publish").unwrap();
        let subscribe: libloading::Symbol<Subscribe> = lib.get(b"mycelium_subscribe").unwrap();
        let unsubscribe: libloading::Symbol<Unsubscribe> =
            lib.get(b"mycelium_unsubscribe").unwrap();
        let flush: libloading::Symbol<Flush> = lib.get(b"mycelium_flush").unwrap();
        let last_error: libloading::Symbol<LastError> = lib.get(b"mycelium_last_error").unwrap();

        let yaml = contracts();
        let mut rt = std::ptr::null_mut();
        assert_eq!(
            create(yaml.as_ptr().cast(), yaml.len(), &mut rt),
            mycelium_status::MYCELIUM_OK
        );
        let c = counter();
        let cl = closure_for(&c);
        let mut id = 0u64;
        assert_eq!(
            subscribe(rt, 1, std::ptr::null(), &cl, &mut id),
            mycelium_status::MYCELIUM_OK
        );
        let payload = tick("ACME", 3, 4);
        for _ in 0..1000 {
            assert_eq!(
                publish(rt, 1, payload.as_ptr(), payload.len()),
                mycelium_status::MYCELIUM_OK
            );
        }
        assert_eq!(flush(rt, 10_000), mycelium_status::MYCELIUM_OK);
        assert_eq!(c.calls.load(Ordering::SeqCst), 1000);
        assert_eq!(c.bytes.load(Ordering::SeqCst), 1000 * payload.len() as u64);

        assert_eq!(
            publish(rt, 1, payload.as_ptr(), 3),
            mycelium_status::MYCELIUM_ERR_DECODE
        );
        let msg = CStr::from_ptr(last_error()).to_string_lossy().into_owned();
        assert!(
            msg.contains("TradeTick"),
            "decode error names the message: {msg}"
        );

        assert_eq!(unsubscribe(rt, id), mycelium_status::MYCELIUM_OK);
        assert_eq!(c.drops.load(Ordering::SeqCst), 1);
        assert_eq!(
            unsubscribe(rt, id),
            mycelium_status::MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION
        );
        assert_eq!(destroy(rt), mycelium_status::MYCELIUM_OK);
        assert_eq!(
            Arc::strong_count(&c),
            1,
            "the library released its reference"
        );
    }
}

#[test]
fn a_rust_hosts_bus_is_shared_with_a_separately_loaded_copy() {
    let schema = Schema::from_yaml_str(&contracts()).unwrap();
    let bus = mycelium_transport::MessageBus::new();
    let host = mycelium_ffi::Runtime::from_bus(bus.clone(), &schema);
    let rust_sub = bus.subscribe_raw(1, Default::default());

    let lib = load();
    // SAFETY: symbol types match the header's declarations; `host` outlives every use of its handle.
    unsafe {
        let clone: libloading::Symbol<Clone_> = lib.get(b"mycelium_runtime_clone").unwrap();
        let destroy: libloading::Symbol<Destroy> = lib.get(b"mycelium_runtime_destroy").unwrap();
        let publish: libloading::Symbol<Publish> = lib.get(b"mycelium_publish").unwrap();
        let subscribe: libloading::Symbol<Subscribe> = lib.get(b"mycelium_subscribe").unwrap();
        let flush: libloading::Symbol<Flush> = lib.get(b"mycelium_flush").unwrap();
        let last_error: libloading::Symbol<LastError> = lib.get(b"mycelium_last_error").unwrap();

        // The "foreign adapter" attaches to the host's handle through its own copy of the library.
        let mut mine = std::ptr::null_mut();
        assert_eq!(
            clone(host.as_ptr(), &mut mine),
            mycelium_status::MYCELIUM_OK
        );
        let c = counter();
        let cl = closure_for(&c);
        let mut id = 0;
        assert_eq!(
            subscribe(mine, 1, std::ptr::null(), &cl, &mut id),
            mycelium_status::MYCELIUM_OK
        );

        // foreign -> Rust
        let payload = tick("FROM-C", 1, 2);
        assert_eq!(
            publish(mine, 1, payload.as_ptr(), payload.len()),
            mycelium_status::MYCELIUM_OK
        );
        let env = rust_sub
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("Rust side got it");
        assert_eq!(&env.payload[..], &payload[..]);

        // Rust -> foreign
        bus.publish_raw(1, bytes::Bytes::from(tick("FROM-RUST", 5, 6)))
            .unwrap();
        assert_eq!(flush(mine, 10_000), mycelium_status::MYCELIUM_OK);
        assert_eq!(
            c.calls.load(Ordering::SeqCst),
            2,
            "foreign subscriber saw both messages"
        );

        // errors raised by the owning copy are readable through the loaded copy
        assert_eq!(
            publish(mine, 999, payload.as_ptr(), payload.len()),
            mycelium_status::MYCELIUM_ERR_UNKNOWN_TYPE
        );
        let msg = CStr::from_ptr(last_error()).to_string_lossy().into_owned();
        assert!(msg.contains("999"), "last error crossed copies: {msg}");

        assert_eq!(destroy(mine), mycelium_status::MYCELIUM_OK);
        assert_eq!(c.drops.load(Ordering::SeqCst), 1);
    }
    // the host's handle still works after the foreign clone is gone
    let payload = tick("AFTER", 1, 1);
    // SAFETY: host's handle is live; payload outlives the call.
    let st = unsafe {
        mycelium_ffi::exports::mycelium_publish(host.as_ptr(), 1, payload.as_ptr(), payload.len())
    };
    assert_eq!(st, mycelium_status::MYCELIUM_OK);
}
