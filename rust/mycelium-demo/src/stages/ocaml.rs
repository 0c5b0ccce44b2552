//! The OCaml risk engine: `ocaml/demo/risk.ml`, linked into this binary as an object built by
//! dune (see build.rs) and started in this process.
//!
//! It serves RiskCheck: its handler runs on a responder thread of its own, holding the OCaml
//! runtime lock only while OCaml code runs; this thread (the one that started OCaml, the only one that
//! may call into it) takes the lock to read the engine's counters and to stop it.

use mycelium_ocaml_guest::{linked_runtime, Arg, Guest, GuestError, Linked};

use super::{Counts, Language, QueueSettings, Stage};
use crate::error::DemoError;

pub struct OcamlRisk {
    guest: Guest,
    stopped: bool,
}

/// Whether the OCaml object was linked into this binary: checked before anything starts, so a
/// binary built without it fails at once with the way to get it.
pub fn check_linked() -> Result<(), DemoError> {
    match linked_runtime!() {
        Linked::Runtime(_) => Ok(()),
        Linked::Missing {
            object,
            how_to_build,
        } => Err(GuestError::NotLinked {
            object,
            how_to_build,
        }
        .into()),
    }
}

impl OcamlRisk {
    /// Starts the OCaml runtime and attaches the risk engine to the bus behind `address`.
    pub fn start(address: usize, queue: QueueSettings) -> Result<OcamlRisk, DemoError> {
        let mut guest = Guest::start(linked_runtime!())?;
        guest.call(
            "mycelium_risk_set_capacity",
            Arg::Int(queue.capacity as isize),
        )?;
        guest.call("mycelium_risk_attach", Arg::NativeInt(address as isize))?;
        Ok(OcamlRisk {
            guest,
            stopped: false,
        })
    }

    fn counter(&mut self, name: &str) -> Result<u64, DemoError> {
        if self.stopped {
            return Err(DemoError::Closed(self.label()));
        }
        let n = self.guest.call(name, Arg::Unit)?;
        // OCaml counters start at 0 and only grow.
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Stage for OcamlRisk {
    fn label(&self) -> &'static str {
        // Set in risk.ml, where the subscription is made.
        "ocaml-risk"
    }

    fn language(&self) -> Language {
        Language::OCaml
    }

    fn counts(&mut self) -> Result<Counts, DemoError> {
        Ok(Counts {
            handled: self.counter("mycelium_risk_orders_handled")?,
            sent: self.counter("mycelium_risk_decisions_sent")?,
        })
    }

    fn close(&mut self) -> Result<(), DemoError> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        self.guest.call("mycelium_risk_stop", Arg::Unit)?;
        Ok(())
    }
}

impl Drop for OcamlRisk {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
