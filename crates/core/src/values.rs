//! Newtypes that parse on construction, so a value of the type is always valid.
//! Each deserialises through `TryFrom<String>` so a bad value in a request body is reported
//! with the offending field's path.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A string validated by its type's `parse`: read from text (`FromStr`, and `TryFrom<String>`
/// for serde), shown and stored as that text.
macro_rules! text_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An email address, normalised to lower case (emails are unique case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = "email", example = "ada@example.com")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.len() > 254 {
            return Err("email is longer than 254 characters".into());
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("{s:?} is not an email address (no @)"))?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c == '@' || c.is_control());
        if !(domain_ok && local_ok) {
            return Err(format!("{s:?} is not an email address"));
        }
        Ok(Self(s.to_lowercase()))
    }
}

text_value!(Email);

/// A member's role in a tenant. Ordered: `Viewer < Member < Admin < Owner`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(format!(
                "{other:?} is not a role (expected owner, admin, member or viewer)"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Task priority, 0 (lowest) to 9 (highest); 5 by default.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
#[schema(value_type = i64, example = 5)]
pub struct Priority(u8);

impl Priority {
    pub const MAX: u8 = 9;

    pub fn new(p: i64) -> Result<Self, String> {
        u8::try_from(p)
            .ok()
            .filter(|p| *p <= Self::MAX)
            .map(Self)
            .ok_or_else(|| format!("priority must be between 0 and 9, got {p}"))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self(5)
    }
}

impl TryFrom<i64> for Priority {
    type Error = String;
    fn try_from(p: i64) -> Result<Self, String> {
        Self::new(p)
    }
}

impl From<Priority> for i64 {
    fn from(p: Priority) -> i64 {
        i64::from(p.0)
    }
}

/// A URL-safe identifier: lower-case ASCII letters, digits and inner hyphens, 1–63 chars.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "acme")]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=63).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not a slug (1-63 of a-z, 0-9 and inner hyphens)"
            ))
        }
    }

    /// Derives a slug from a display name plus a short random-looking suffix source.
    pub fn from_name(name: &str, suffix: &str) -> Self {
        let mut out = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let mut base: String = out.trim_end_matches('-').chars().take(48).collect();
        base = base.trim_end_matches('-').to_owned();
        if base.is_empty() {
            base.push_str("tenant");
        }
        Self(format!("{base}-{suffix}"))
    }
}

text_value!(Slug);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@x.io",
            "ada@",
            "ada@x",
            "a b@x.io",
            "ada@x..io",
            "ada@.x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(
            Role::Owner > Role::Admin && Role::Admin > Role::Member && Role::Member > Role::Viewer
        );
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn priorities() {
        assert_eq!(Priority::default().get(), 5);
        assert!(Priority::new(0).is_ok() && Priority::new(9).is_ok());
        for bad in [-1, 10, 256, i64::MAX] {
            assert!(Priority::new(bad).is_err());
        }
    }

    #[test]
    fn slugs() {
        assert!(Slug::parse("acme-2").is_ok());
        for bad in ["", "-a", "a-", "Acme", "a_b", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Slug::from_name("Acme Corp!", "x1").as_str(), "acme-corp-x1");
        assert_eq!(Slug::from_name("日本", "x1").as_str(), "tenant-x1");
    }
}
