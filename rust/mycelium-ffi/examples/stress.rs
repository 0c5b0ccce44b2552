//! Stress races of the concurrent core through the C ABI (issue 12), each repeated many times:
//!
//! - `unsubscribe-publish`: unsubscribe a DropOldest subscription while two threads publish to
//!   it (the item 7 hang);
//! - `mutual-unsubscribe`: two callbacks that each unsubscribe the other's subscription (item 1);
//! - `close-sleepers`: close the bus while two threads sleep in `mycelium_receiver_recv`;
//! - `evict-contention`: two publishers evict from a one-slot DropOldest receiver while a third
//!   thread receives, then unsubscribe it;
//! - `destroy-callbacks`: destroy the runtime while its callbacks run.
//!
//! A watchdog thread gives every iteration `--timeout` seconds (default 10): past that it prints
//! every thread's stack (`gdb -p <pid> -batch -ex "thread apply all bt"`) and exits with status
//! 2. A broken invariant exits with status 1.
//!
//! Usage: `stress <scenario|all> [--iterations N] [--timeout S]` (scripts/stress.sh builds it
//! in release or with AddressSanitizer and runs it).

use std::ffi::c_void;
use std::process::{exit, Command};
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mycelium_ffi::exports::*;
use mycelium_ffi::{
    mycelium_closure, mycelium_message, mycelium_runtime_t, mycelium_status,
    mycelium_subscribe_options,
};

const SCHEMA: &str =
    "schema: stress\nversion: 1\nmessages:\n  Ping:\n    id: 1\n    fields:\n      - n: u64\n";
const PING: u16 = 1;
const DROP_OLDEST: u32 = 1;

/// A scenario: its name and one iteration (given the iteration's number).
type Scenario = (&'static str, fn(u64));

const SCENARIOS: [Scenario; 5] = [
    ("unsubscribe-publish", unsubscribe_publish),
    ("mutual-unsubscribe", mutual_unsubscribe),
    ("close-sleepers", close_sleepers),
    ("evict-contention", evict_contention),
    ("destroy-callbacks", destroy_callbacks),
];

/// Fails the run: a broken invariant is not a hang.
fn fail(what: String) -> ! {
    eprintln!("stress: FAILED: {what}");
    exit(1);
}

fn ok(status: mycelium_status, call: &str) {
    if status != mycelium_status::MYCELIUM_OK {
        fail(format!("{call} returned {status:?}"));
    }
}

/// A runtime handle that may be used from several threads (the C ABI allows it).
#[derive(Clone, Copy)]
struct Rt(*mut mycelium_runtime_t);
// SAFETY: C ABI calls on a handle are thread-safe (except destroy, which the scenarios call
// after every other thread using the handle was joined, or while only callbacks run).
unsafe impl Send for Rt {}
// SAFETY: as above.
unsafe impl Sync for Rt {}

fn create() -> Rt {
    let mut rt = ptr::null_mut();
    // SAFETY: valid text of the given length and a valid out pointer.
    ok(
        unsafe { mycelium_runtime_create(SCHEMA.as_ptr().cast(), SCHEMA.len(), &mut rt) },
        "mycelium_runtime_create",
    );
    Rt(rt)
}

fn destroy(rt: Rt) {
    // SAFETY: a live handle, destroyed once.
    ok(
        unsafe { mycelium_runtime_destroy(rt.0) },
        "mycelium_runtime_destroy",
    );
}

/// Publishes one Ping; a closed bus or a vanished subscriber is part of the race.
fn publish(rt: Rt, n: u64) {
    let payload = n.to_le_bytes();
    // SAFETY: a live handle and 8 readable bytes.
    let status = unsafe { mycelium_publish(rt.0, PING, payload.as_ptr(), payload.len()) };
    if status != mycelium_status::MYCELIUM_OK && status != mycelium_status::MYCELIUM_ERR_CLOSED {
        fail(format!("mycelium_publish returned {status:?}"));
    }
}

fn options(capacity: u32, policy: u32) -> mycelium_subscribe_options {
    // SAFETY: all-zero is a valid bit pattern for the options (pointers NULL), then init fills it.
    let mut opts: mycelium_subscribe_options = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out pointer.
    ok(
        unsafe { mycelium_subscribe_options_init(&mut opts) },
        "mycelium_subscribe_options_init",
    );
    opts.capacity = capacity;
    opts.policy = policy;
    opts
}

/// What a callback subscription shares with its callback.
#[derive(Default)]
struct Ctx {
    rt: AtomicU64,
    /// The subscription this callback unsubscribes on its first call (0: none).
    victim: AtomicU64,
    calls: AtomicU64,
    /// Set by `drop_ctx`; checked against "exactly once".
    drops: AtomicUsize,
    /// Spin this many hints per call (a callback still running when the race happens).
    work: AtomicUsize,
}

unsafe extern "C" fn on_message(context: *mut c_void, _msg: *const mycelium_message) -> i32 {
    // SAFETY: `context` is the `Arc<Ctx>` given to `subscribe`, alive until `drop_ctx`.
    let ctx = unsafe { &*(context as *const Ctx) };
    if ctx.calls.fetch_add(1, SeqCst) == 0 {
        let victim = ctx.victim.load(SeqCst);
        if victim != 0 {
            let rt = ctx.rt.load(SeqCst) as *const mycelium_runtime_t;
            // SAFETY: the handle outlives every callback (destroy waits for them).
            let status = unsafe { mycelium_unsubscribe(rt, victim) };
            if status != mycelium_status::MYCELIUM_OK
                && status != mycelium_status::MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION
            {
                fail(format!("unsubscribe from a callback returned {status:?}"));
            }
        }
    }
    for _ in 0..ctx.work.load(SeqCst) {
        std::hint::spin_loop();
    }
    0
}

unsafe extern "C" fn drop_ctx(context: *mut c_void) {
    // SAFETY: `context` came from `Arc::into_raw` in `subscribe` and is released once here.
    let ctx = unsafe { Arc::from_raw(context as *const Ctx) };
    if ctx.drops.fetch_add(1, SeqCst) != 0 {
        fail("a subscription's drop ran twice".into());
    }
}

fn subscribe(rt: Rt, ctx: &Arc<Ctx>, capacity: u32, policy: u32) -> u64 {
    ctx.rt.store(rt.0 as u64, SeqCst);
    let closure = mycelium_closure {
        context: Arc::into_raw(Arc::clone(ctx)) as *mut c_void,
        call: Some(on_message),
        call_batch: None,
        drop: Some(drop_ctx),
    };
    let opts = options(capacity, policy);
    let mut id = 0;
    // SAFETY: live handle, valid options, closure and out pointer.
    ok(
        unsafe { mycelium_subscribe(rt.0, PING, &opts, &closure, &mut id) },
        "mycelium_subscribe",
    );
    id
}

fn unsubscribe(rt: Rt, id: u64) -> mycelium_status {
    // SAFETY: a live handle.
    unsafe { mycelium_unsubscribe(rt.0, id) }
}

fn open_receiver(rt: Rt, capacity: u32, policy: u32) -> u64 {
    let opts = options(capacity, policy);
    let mut id = 0;
    // SAFETY: live handle, valid options and out pointer.
    ok(
        unsafe { mycelium_receiver_open(rt.0, PING, &opts, &mut id) },
        "mycelium_receiver_open",
    );
    id
}

unsafe extern "C" fn visit(_: *mut c_void, _: *const mycelium_message, _: usize) -> usize {
    0
}

/// Receives until the receiver is closed or gone; returns how many it got.
fn receive_until_closed(rt: Rt, receiver: u64, timeout_ms: u32) -> usize {
    let mut got = 0;
    loop {
        let mut count = 0;
        // SAFETY: live handle, a visit that reads nothing, a valid out pointer.
        let status = unsafe {
            mycelium_receiver_recv(
                rt.0,
                receiver,
                timeout_ms,
                4,
                Some(visit),
                ptr::null_mut(),
                &mut count,
            )
        };
        match status {
            mycelium_status::MYCELIUM_OK => got += count,
            mycelium_status::MYCELIUM_ERR_TIMEOUT => {}
            // Closed while receiving, or unsubscribed before this call began.
            mycelium_status::MYCELIUM_ERR_CLOSED
            | mycelium_status::MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION => return got,
            other => fail(format!("mycelium_receiver_recv returned {other:?}")),
        }
    }
}

/// Item 7: unsubscribe a one-slot DropOldest subscription while two threads publish to it.
fn unsubscribe_publish(i: u64) {
    thread_local!(static RT: Rt = create());
    let rt = RT.with(|rt| *rt);
    let ctx = Arc::new(Ctx::default());
    let id = subscribe(rt, &ctx, 1, DROP_OLDEST);
    thread::scope(|s| {
        for p in 0..2 {
            s.spawn(move || {
                for n in 0..8 {
                    publish(rt, i * 16 + p * 8 + n);
                }
            });
        }
        if i.is_multiple_of(2) {
            thread::yield_now();
        }
        ok(unsubscribe(rt, id), "mycelium_unsubscribe");
        let calls = ctx.calls.load(SeqCst);
        thread::sleep(Duration::from_micros(1));
        if ctx.calls.load(SeqCst) != calls {
            fail("a callback ran after mycelium_unsubscribe returned".into());
        }
    });
    if ctx.drops.load(SeqCst) != 1 {
        fail("drop did not run exactly once by unsubscribe's return".into());
    }
}

/// Item 1: two callbacks, each unsubscribing the other's subscription on its first call.
fn mutual_unsubscribe(i: u64) {
    thread_local!(static RT: Rt = create());
    let rt = RT.with(|rt| *rt);
    let (a, b) = (Arc::new(Ctx::default()), Arc::new(Ctx::default()));
    let id_a = subscribe(rt, &a, 4, DROP_OLDEST);
    let id_b = subscribe(rt, &b, 4, DROP_OLDEST);
    a.victim.store(id_b, SeqCst);
    b.victim.store(id_a, SeqCst);
    publish(rt, i);
    while a.calls.load(SeqCst) + b.calls.load(SeqCst) == 0 {
        thread::yield_now();
    }
    // From this application thread, whichever is left (either callback may have removed the
    // other, or both each other). An unsubscribe that finds its target returns after its drop.
    for (id, ctx) in [(id_a, &a), (id_b, &b)] {
        match unsubscribe(rt, id) {
            mycelium_status::MYCELIUM_OK if ctx.drops.load(SeqCst) != 1 => {
                fail("mycelium_unsubscribe returned before drop ran".into())
            }
            mycelium_status::MYCELIUM_OK | mycelium_status::MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION => {}
            other => fail(format!("mycelium_unsubscribe returned {other:?}")),
        }
    }
    // A subscription removed by the other's callback without waiting (the cycle's exception)
    // finishes and drops once that callback returns: soon, or the watchdog reports a hang.
    while a.drops.load(SeqCst) + b.drops.load(SeqCst) < 2 {
        thread::yield_now();
    }
}

/// Close the bus while two threads sleep in `mycelium_receiver_recv` (no deadline).
fn close_sleepers(i: u64) {
    let rt = create();
    let receivers = [open_receiver(rt, 4, 0), open_receiver(rt, 4, DROP_OLDEST)];
    thread::scope(|s| {
        for r in receivers {
            s.spawn(move || receive_until_closed(rt, r, u32::MAX));
        }
        if i.is_multiple_of(2) {
            thread::sleep(Duration::from_micros(50));
        }
        // SAFETY: a live handle.
        ok(
            unsafe { mycelium_runtime_close(rt.0) },
            "mycelium_runtime_close",
        );
    });
    destroy(rt);
}

/// Two publishers evict from a one-slot DropOldest receiver while a third thread receives;
/// then the receiver is unsubscribed and its receiving thread must see the close.
fn evict_contention(i: u64) {
    thread_local!(static RT: Rt = create());
    let rt = RT.with(|rt| *rt);
    let receiver = open_receiver(rt, 1, DROP_OLDEST);
    thread::scope(|s| {
        let taker = s.spawn(move || receive_until_closed(rt, receiver, 1000));
        let publishers: Vec<_> = (0..2)
            .map(|p| {
                s.spawn(move || {
                    for n in 0..16 {
                        publish(rt, i * 32 + p * 16 + n);
                    }
                })
            })
            .collect();
        for p in publishers {
            let _ = p.join();
        }
        ok(unsubscribe(rt, receiver), "mycelium_unsubscribe (receiver)");
        let got = taker
            .join()
            .unwrap_or_else(|_| fail("the receiving thread panicked".into()));
        if got > 32 {
            fail(format!("received {got} of 32 messages"));
        }
    });
}

/// Destroy the runtime while its callbacks (each a few microseconds long) run.
fn destroy_callbacks(i: u64) {
    let rt = create();
    let ctxs: Vec<_> = (0..2).map(|_| Arc::new(Ctx::default())).collect();
    for ctx in &ctxs {
        ctx.work.store(500, SeqCst);
        subscribe(rt, ctx, 8, DROP_OLDEST);
    }
    for n in 0..8 {
        publish(rt, i * 8 + n);
    }
    if i.is_multiple_of(2) {
        while ctxs[0].calls.load(SeqCst) == 0 {
            thread::yield_now();
        }
    }
    destroy(rt);
    for ctx in &ctxs {
        let calls = ctx.calls.load(SeqCst);
        if ctx.drops.load(SeqCst) != 1 {
            fail("destroy returned before every drop ran".into());
        }
        thread::sleep(Duration::from_micros(1));
        if ctx.calls.load(SeqCst) != calls {
            fail("a callback ran after mycelium_runtime_destroy returned".into());
        }
    }
}

/// What the watchdog watches: the running scenario, its iteration and when it started.
struct Progress {
    epoch: Instant,
    scenario: AtomicUsize,
    iteration: AtomicU64,
    /// Milliseconds since `epoch` when the iteration started.
    started_ms: AtomicU64,
}

impl Progress {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// Prints every thread's stack through gdb and exits 2 once an iteration runs past `limit`.
fn watchdog(progress: Arc<Progress>, limit: Duration) {
    thread::spawn(move || loop {
        thread::sleep(Duration::from_millis(200));
        let ran = progress
            .now_ms()
            .saturating_sub(progress.started_ms.load(SeqCst));
        if Duration::from_millis(ran) > limit {
            eprintln!(
                "stress: HANG: {} iteration {} has run for {} s; every thread's stack:",
                SCENARIOS[progress.scenario.load(SeqCst)].0,
                progress.iteration.load(SeqCst),
                ran / 1000
            );
            let pid = std::process::id().to_string();
            let gdb = Command::new("gdb")
                .args(["-p", &pid, "-batch", "-ex", "thread apply all bt"])
                .status();
            if let Err(e) = gdb {
                eprintln!("stress: could not run gdb: {e}");
            }
            exit(2);
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        let names: Vec<_> = SCENARIOS.iter().map(|s| s.0).collect();
        eprintln!(
            "usage: stress <{}|all> [--iterations N] [--timeout S]",
            names.join("|")
        );
        exit(64);
    };
    let Some(which) = args.first() else { usage() };
    let mut iterations = 100_000u64;
    let mut timeout = 10u64;
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage());
        match flag.as_str() {
            "--iterations" => iterations = value,
            "--timeout" => timeout = value,
            _ => usage(),
        }
    }
    let chosen: Vec<usize> = (0..SCENARIOS.len())
        .filter(|&k| which == "all" || SCENARIOS[k].0 == which)
        .collect();
    if chosen.is_empty() {
        usage();
    }
    let progress = Arc::new(Progress {
        epoch: Instant::now(),
        scenario: AtomicUsize::new(chosen[0]),
        iteration: AtomicU64::new(0),
        started_ms: AtomicU64::new(0),
    });
    watchdog(Arc::clone(&progress), Duration::from_secs(timeout));
    for k in chosen {
        let (scenario, run) = SCENARIOS[k];
        let t0 = Instant::now();
        for i in 0..iterations {
            progress.started_ms.store(progress.now_ms(), SeqCst);
            progress.iteration.store(i, SeqCst);
            progress.scenario.store(k, SeqCst);
            run(i);
        }
        println!(
            "stress: {scenario}: {iterations} iterations in {:.1} s, ok",
            t0.elapsed().as_secs_f64()
        );
    }
}
