//! What the platform's operators do across tenants: users flagged `is_platform_admin`
//! (`morningai user create --platform-admin`), signed in with a session — an API key
//! speaks for one tenant only. They list the tenants with their load, and act on a
//! tenant's queue as that tenant's admins would, audited in that tenant under their name.

use crate::Application;
use crate::auth::Principal;
use futures_util::future::try_join_all;
use morningai_core::entities::TenantOverview;
use morningai_core::queue::QueueDepth;
use morningai_core::{Error, Result, Role, TenantCtx, TenantId};
use serde::Serialize;
use utoipa::ToSchema;

/// A tenant, its counts and its queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformTenant {
    #[serde(flatten)]
    pub overview: TenantOverview,
    pub queue: QueueDepth,
}

impl Application {
    async fn require_platform_admin(&self, who: &Principal) -> Result<()> {
        let admin = who.api_key.is_none()
            && self
                .store
                .user_by_id(who.user_id)
                .await?
                .is_some_and(|u| u.is_platform_admin);
        if admin {
            Ok(())
        } else {
            Err(Error::Forbidden {
                code: "platform_admin_required",
                message: "this needs a platform administrator's session (API keys never qualify)"
                    .into(),
            })
        }
    }

    /// Tenants in slug order after `after`, 1–100 of them, with member and task counts and
    /// their queue depth (platform admins).
    pub async fn platform_tenants(
        &self,
        who: &Principal,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PlatformTenant>> {
        self.require_platform_admin(who).await?;
        if !(1..=100).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 100"));
        }
        // A slug is short and plain; PostgreSQL text cannot hold NUL.
        if after.is_some_and(|a| a.len() > 200 || a.chars().any(char::is_control)) {
            return Err(Error::invalid(
                "after",
                "must be the last slug of the previous page",
            ));
        }
        let page = self.store.tenants_overview(after, limit).await?;
        let queues = try_join_all(page.iter().map(|t| self.queue.depth(t.tenant.id))).await?;
        Ok(page
            .into_iter()
            .zip(queues)
            .map(|(overview, queue)| PlatformTenant { overview, queue })
            .collect())
    }

    /// The caller as an admin of `tenant` (platform admins only; an unknown tenant is not
    /// found): the tenant's queue operations then run exactly as for its own admins.
    pub async fn as_tenant_admin(&self, who: &Principal, tenant: TenantId) -> Result<Principal> {
        self.require_platform_admin(who).await?;
        self.store.tenant(TenantCtx::new(tenant)).await?;
        Ok(Principal {
            user_id: who.user_id,
            tenant_id: tenant,
            role: Role::Admin,
            api_key: None,
            ip: who.ip.clone(),
        })
    }
}
