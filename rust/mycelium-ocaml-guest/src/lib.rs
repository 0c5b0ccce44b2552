//! OCaml code inside a Rust binary: the OCaml half is one native object built by dune
//! (`(modes object)`, i.e. `-output-complete-obj`: the OCaml code, the OCaml runtime,
//! `mycelium_native` and its stubs), linked into the Rust program, started once, and driven
//! through the functions the OCaml code registers with `Callback.register`.
//!
//! A host crate uses this crate twice:
//!
//! - from its `build.rs`, [`link::ObjectLink::emit`] links the object when it exists (making
//!   every global symbol of it local except the OCaml entry points, so the object's private copy
//!   of Rust's std and of `mycelium-ffi` cannot clash with the host's) and sets the cfg
//!   `mycelium_ocaml_embedded`; without the object the crate still builds;
//! - from its code, [`linked_runtime!`] names the linked runtime's entry points (or, without the
//!   object, where it was expected and how to build it), and [`Guest::start`] starts it.
//!
//! The cfg and the macro live in the host crate, not here, because each host links its own
//! object (an OCaml runtime can be linked into a binary once): this crate is compiled once per
//! build and cannot know which object, if any, the final binary gets.

mod guest;
pub mod link;

pub use guest::{Arg, EntryPoints, Guest, GuestError, Linked, Value};

/// The OCaml runtime linked into the calling crate's binary, as a [`Linked`].
///
/// Expands in the host crate, whose `build.rs` ran [`link::ObjectLink::emit`]: with the object
/// linked (cfg `mycelium_ocaml_embedded`) it names the runtime's entry points; otherwise it
/// carries the expected object path and the build hint for the error [`Guest::start`] returns.
#[macro_export]
macro_rules! linked_runtime {
    () => {{
        #[cfg(mycelium_ocaml_embedded)]
        let linked = {
            // The names must stay in `link::ENTRY_POINTS`: every other symbol of the object is
            // made local before linking.
            extern "C" {
                fn caml_startup(argv: *const *const ::std::ffi::c_char);
                fn caml_named_value(name: *const ::std::ffi::c_char) -> *const $crate::Value;
                fn caml_callback_exn(closure: $crate::Value, arg: $crate::Value) -> $crate::Value;
                fn caml_copy_nativeint(n: isize) -> $crate::Value;
                fn caml_enter_blocking_section();
                fn caml_leave_blocking_section();
                fn caml_format_exception(exn: $crate::Value) -> *mut ::std::ffi::c_char;
                fn caml_stat_free(p: *mut ::std::ffi::c_void);
            }
            // SAFETY: these are the OCaml runtime's own functions of these names, from the one
            // object the build script linked into this binary; the signatures are those of the
            // runtime's headers (caml/callback.h, caml/alloc.h, caml/signals.h, caml/printexc.h,
            // caml/memory.h) with `value` as a pointer-sized integer.
            static ENTRY_POINTS: $crate::EntryPoints = unsafe {
                $crate::EntryPoints::new(
                    caml_startup,
                    caml_named_value,
                    caml_callback_exn,
                    caml_copy_nativeint,
                    caml_enter_blocking_section,
                    caml_leave_blocking_section,
                    caml_format_exception,
                    caml_stat_free,
                )
            };
            $crate::Linked::Runtime(&ENTRY_POINTS)
        };
        #[cfg(not(mycelium_ocaml_embedded))]
        let linked = $crate::Linked::Missing {
            object: env!("MYCELIUM_OCAML_OBJECT"),
            how_to_build: env!("MYCELIUM_OCAML_OBJECT_HINT"),
        };
        linked
    }};
}
