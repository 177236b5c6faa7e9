//! Typed ids. Every id is a UUIDv7, so ids sort by creation time (cursor pagination uses
//! that) and a tenant's id can never be passed where a task's id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A tenant (organisation) id.
    TenantId
);
id_type!(
    /// A user id; users are global, they join tenants through memberships.
    UserId
);
id_type!(
    /// An API key id (not the secret).
    ApiKeyId
);
id_type!(
    /// A project id.
    ProjectId
);
id_type!(
    /// A task id.
    TaskId
);
id_type!(
    /// A memory collection id.
    CollectionId
);
id_type!(
    /// A memory item id (a file or a text in a collection).
    ItemId
);
