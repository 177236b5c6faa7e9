//! The one error type of the domain and its ports. Controllers map each variant to an HTTP
//! problem with a stable `code`; `Internal` text is logged, never shown to clients.

use std::fmt;

/// Domain error.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist *for this tenant* (another tenant's resource looks the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or state conflict, with a stable machine code.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The input is well-formed but violates a rule, naming the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Several fields violate rules at once (each problem of an uploaded graph, say).
    #[error("{}", describe(.0))]
    InvalidFields(Vec<FieldProblem>),
    /// No valid credential: missing, invalid, expired or revoked (the message says which).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// The caller may not do this (a role too low, a disabled feature), with a stable code.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A dependency (a model provider) is down or refusing; the message says which and why
    /// and is shown to the caller.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A quota (a tenant's model budget) would be exceeded; nothing was done.
    #[error("{message}")]
    LimitExceeded { code: &'static str, message: String },
    /// Storage or other infrastructure failed; the text is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One field's problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

fn describe(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// `Unauthorized` with the code `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// `Forbidden` with the code `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unavailable {
            code,
            message: message.into(),
        }
    }

    /// Wraps an infrastructure error with context, e.g. `Error::internal("insert task", e)`.
    pub fn internal(context: &str, err: impl fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
