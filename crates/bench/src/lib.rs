//! What the benchmark binaries share.

use morningai_core::{Store, TenantCtx};

/// A fresh tenant (and its owner) named after `tag` and a random suffix, so runs against a
/// database that outlives them never collide.
pub async fn bench_tenant(store: &dyn Store, tag: &str) -> anyhow::Result<TenantCtx> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (_, t) = store
        .create_user_with_tenant(
            morningai_core::entities::NewUser {
                email: morningai_core::Email::parse(&format!("{tag}-{run}@example.com"))
                    .map_err(anyhow::Error::msg)?,
                name: None,
                password_hash: "x".into(),
                is_platform_admin: false,
            },
            morningai_core::entities::NewTenant {
                slug: morningai_core::Slug::parse(&format!("{tag}-{}", &run[..8]))
                    .map_err(anyhow::Error::msg)?,
                name: "bench".into(),
            },
        )
        .await?;
    Ok(TenantCtx::new(t.id))
}
