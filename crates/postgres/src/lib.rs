//! The `Store` port on PostgreSQL with row-level security.
//!
//! Every tenant-scoped operation runs in a transaction that first switches to the role
//! `morningai_tenant` and sets `app.tenant_id` (both `set_config(…, true)`, in the same
//! round trip as `BEGIN`), so the policies in `migrations/` hold even when the login role
//! is a superuser. Single-statement operations pipeline BEGIN, the statement and COMMIT
//! into one round trip.

mod accounts;
mod audit;
mod checkpoints;
mod kv;
mod memory;
mod migrate;
mod objects;
mod reads;
mod rows;
mod schedules;
mod store;
mod tasks;
mod tls;
mod tx;
mod usage;

pub use migrate::{Inspection, TenantRole, inspect};
pub use store::PgStore;
pub use tls::{SslMode, TlsSettings, connect_config};
