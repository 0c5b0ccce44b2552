//! The build-script half: links a dune-built OCaml object into the host crate's binaries.
//!
//! The object carries its own copy of Rust's std and of `mycelium-ffi` (inside the stubs of
//! `mycelium_native`), and the host links another: every global symbol of the object except
//! the OCaml entry points the host calls is made local (`objcopy --keep-global-symbols`), so
//! the two copies cannot clash. They still share handles, which is what the C ABI's function
//! table is for.
//!
//! Without the object (a plain `cargo build` on a machine that did not run dune) the host
//! builds with the cfg `mycelium_ocaml_embedded` unset, and [`Guest::start`](crate::Guest::start)
//! reports the object as missing at run time.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The only symbols of the object a host uses (see [`linked_runtime!`](crate::linked_runtime)).
pub const ENTRY_POINTS: &[&str] = &[
    "caml_startup",
    "caml_named_value",
    "caml_callback_exn",
    "caml_copy_nativeint",
    "caml_enter_blocking_section",
    "caml_leave_blocking_section",
    "caml_format_exception",
    "caml_stat_free",
    // COMDAT-grouped pointers to the unwinder's personality routine: the linker keeps one copy
    // of each group, so references must stay global to reach the copy it kept.
    "DW.ref.*",
];

/// Why the object could not be prepared for linking.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0} is not set; ObjectLink::emit must run inside a cargo build script")]
    NotInBuildScript(&'static str),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run objcopy ({0}); install binutils")]
    ObjcopyMissing(#[source] std::io::Error),
    #[error("objcopy failed ({status}) on {object}")]
    ObjcopyFailed { object: PathBuf, status: String },
}

/// Where a host's OCaml object is and how a user builds it.
pub struct ObjectLink<'a> {
    /// Environment variable that, when set, replaces `default_path`.
    pub env_override: &'a str,
    /// Usually under `ocaml/_build/default/`.
    pub default_path: PathBuf,
    /// Shown when the object is missing, e.g. "run scripts/demo.sh".
    pub how_to_build: &'a str,
}

impl ObjectLink<'_> {
    /// Prints the cargo directives; returns whether the object was found and linked.
    pub fn emit(&self) -> Result<bool, LinkError> {
        let out_dir = std::env::var_os("OUT_DIR").ok_or(LinkError::NotInBuildScript("OUT_DIR"))?;
        let object = self.object_path(std::env::var_os(self.env_override));
        let directives = self.directives(&object, Path::new(&out_dir))?;
        let linked = directives.iter().any(|d| d.starts_with("cargo:rustc-cfg="));
        for d in directives {
            println!("{d}");
        }
        Ok(linked)
    }

    fn object_path(&self, env_value: Option<OsString>) -> PathBuf {
        env_value
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.default_path.clone())
    }

    /// The directives for `object`, after localising its symbols into `out_dir` if it exists.
    fn directives(&self, object: &Path, out_dir: &Path) -> Result<Vec<String>, LinkError> {
        let mut d = vec![
            "cargo::rustc-check-cfg=cfg(mycelium_ocaml_embedded)".to_owned(),
            format!("cargo:rerun-if-env-changed={}", self.env_override),
            format!("cargo:rerun-if-changed={}", object.display()),
            format!("cargo:rustc-env=MYCELIUM_OCAML_OBJECT={}", object.display()),
            format!(
                "cargo:rustc-env=MYCELIUM_OCAML_OBJECT_HINT={}",
                self.how_to_build
            ),
        ];
        if !object.exists() {
            return Ok(d);
        }
        let keep = out_dir.join("ocaml_entry_points.txt");
        std::fs::write(&keep, ENTRY_POINTS.join("\n")).map_err(|source| LinkError::Write {
            path: keep.clone(),
            source,
        })?;
        let stem = object
            .file_name()
            .map(|n| n.to_string_lossy().replace(".exe.o", ""))
            .unwrap_or_else(|| "ocaml".to_owned());
        let local = out_dir.join(format!("{stem}.local.o"));
        let status = Command::new("objcopy")
            .arg("--wildcard")
            .arg(format!("--keep-global-symbols={}", keep.display()))
            .arg(object)
            .arg(&local)
            .status()
            .map_err(LinkError::ObjcopyMissing)?;
        if !status.success() {
            return Err(LinkError::ObjcopyFailed {
                object: object.to_path_buf(),
                status: status.to_string(),
            });
        }
        // Passed as an object rather than an archive: building the archive's symbol index makes
        // `ar` read the embedded LLVM bitcode of the Rust half, which some binutils builds
        // reject. A link argument reaches only the host package's own binaries, tests and
        // examples, which is where the code expanding `linked_runtime!` is linked.
        d.push(format!("cargo:rustc-link-arg={}", local.display()));
        d.push("cargo:rustc-link-arg=-lm".to_owned());
        d.push("cargo:rustc-cfg=mycelium_ocaml_embedded".to_owned());
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(default_path: PathBuf) -> ObjectLink<'static> {
        ObjectLink {
            env_override: "MYCELIUM_TEST_OBJECT",
            default_path,
            how_to_build: "run scripts/build-it.sh",
        }
    }

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mycelium-ocaml-guest-{}-{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a scratch directory");
        dir
    }

    #[test]
    fn the_environment_overrides_the_default_path_unless_empty() {
        let l = link(PathBuf::from("/default.o"));
        assert_eq!(l.object_path(None), PathBuf::from("/default.o"));
        assert_eq!(l.object_path(Some("".into())), PathBuf::from("/default.o"));
        assert_eq!(
            l.object_path(Some("/other.o".into())),
            PathBuf::from("/other.o")
        );
    }

    #[test]
    fn a_missing_object_leaves_the_cfg_unset_but_names_the_path_and_the_hint() {
        let dir = scratch("missing");
        let object = dir.join("absent.exe.o");
        let d = link(object.clone())
            .directives(&object, &dir)
            .expect("directives");
        assert!(
            !d.iter().any(|x| x.starts_with("cargo:rustc-cfg=")),
            "{d:?}"
        );
        assert!(
            !d.iter().any(|x| x.starts_with("cargo:rustc-link-arg=")),
            "{d:?}"
        );
        assert!(d.contains(&format!(
            "cargo:rustc-env=MYCELIUM_OCAML_OBJECT={}",
            object.display()
        )));
        assert!(d.contains(
            &"cargo:rustc-env=MYCELIUM_OCAML_OBJECT_HINT=run scripts/build-it.sh".to_owned()
        ));
        assert!(d.contains(&"cargo:rerun-if-env-changed=MYCELIUM_TEST_OBJECT".to_owned()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Builds a real object with the C compiler and checks that only the entry points stay
    /// global after the link step.
    #[test]
    fn an_object_is_linked_with_only_the_entry_points_left_global() {
        let dir = scratch("present");
        let source = dir.join("fake.c");
        std::fs::write(
            &source,
            "void caml_startup(const char **argv) { (void)argv; }\nint rust_begin_unwind_copy(void) { return 1; }\n",
        )
        .expect("write the C source");
        let object = dir.join("fake.exe.o");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        let status = Command::new(&cc)
            .arg("-c")
            .arg(&source)
            .arg("-o")
            .arg(&object)
            .status()
            .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
        assert!(status.success(), "{cc} failed");

        let d = link(object.clone())
            .directives(&object, &dir)
            .expect("directives");
        assert!(
            d.contains(&"cargo:rustc-cfg=mycelium_ocaml_embedded".to_owned()),
            "{d:?}"
        );
        let local = dir.join("fake.local.o");
        assert!(
            d.contains(&format!("cargo:rustc-link-arg={}", local.display())),
            "{d:?}"
        );

        let nm = Command::new("nm")
            .arg(&local)
            .output()
            .expect("run nm (binutils)");
        let symbols = String::from_utf8_lossy(&nm.stdout);
        let kind = |name: &str| {
            symbols
                .lines()
                .find(|l| l.ends_with(&format!(" {name}")))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned)
        };
        assert_eq!(kind("caml_startup").as_deref(), Some("T"), "{symbols}");
        assert_eq!(
            kind("rust_begin_unwind_copy").as_deref(),
            Some("t"),
            "{symbols}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
