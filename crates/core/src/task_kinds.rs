//! The registry of task kinds. A task's `kind` is checked against it when the task is created;
//! the queue (a later layer) looks handlers up by the same names.

use serde_json::Value;

/// Validates a task kind's input before the task is accepted.
pub type InputValidator = fn(&Value) -> Result<(), String>;

#[derive(Clone, Debug, Default)]
pub struct TaskKinds {
    kinds: Vec<(&'static str, InputValidator)>,
    /// Kinds the application creates itself (a graph run's job): never from a request.
    internal: Vec<&'static str>,
}

impl TaskKinds {
    /// The kinds built into this release.
    pub fn builtin() -> Self {
        let mut kinds = Self::default();
        // `echo`: its result is its input; used by queue tests and benchmarks.
        kinds.register("echo", |_| Ok(()));
        kinds
    }

    pub fn register(&mut self, name: &'static str, validate: InputValidator) {
        self.kinds.retain(|(n, _)| *n != name);
        self.kinds.push((name, validate));
    }

    /// A kind only the application itself creates.
    pub fn register_internal(&mut self, name: &'static str, validate: InputValidator) {
        self.register(name, validate);
        self.internal.push(name);
    }

    /// The kinds a request may create.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !self.internal.contains(n))
    }

    /// Checks that `kind` is one a request may create and accepts `input`, naming the
    /// offending field.
    pub fn validate(&self, kind: &str, input: &Value) -> Result<(), crate::Error> {
        if self.internal.contains(&kind) {
            return Err(crate::Error::invalid(
                "kind",
                format!("{kind:?} tasks are created by the platform itself, not by requests"),
            ));
        }
        let (_, validate) = self.kinds.iter().find(|(n, _)| *n == kind).ok_or_else(|| {
            let known: Vec<_> = self.names().collect();
            crate::Error::invalid(
                "kind",
                format!("unknown task kind {kind:?} (known: {})", known.join(", ")),
            )
        })?;
        validate(input).map_err(|m| crate::Error::invalid("input", m))
    }
}
