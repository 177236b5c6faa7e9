//! A tenant and what it holds: its name and settings, new tenants, members and their roles
//! (only owners grant or take away owner; a tenant keeps at least one), API keys (a role no
//! higher than the creator's, the secret shown once), and projects. Every change is
//! audited, and role or key changes clear the authentication cache.

use crate::Application;
use crate::auth::{Principal, mint_api_key};
use morningai_core::entities::{ApiKey, Member, NewTenant, Project, ProjectPatch, Tenant};
use morningai_core::{ApiKeyId, Email, Error, ProjectId, Result, Role, Slug, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    /// Days an idle thread keeps its checkpoints (0: forever; at most 36,500).
    #[schema(maximum = 36_500)]
    pub checkpoint_ttl_days: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Derived from the name when omitted.
    pub slug: Option<Slug>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// Defaults to the creator's role; may not exceed it.
    pub role: Option<Role>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret. It is shown only in this response.
    pub secret: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    pub description: Option<String>,
}

/// Omitted fields stay; `"description": null` clears the description.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Distinguishes an explicit null (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn clean_description(d: Option<String>) -> Result<Option<String>> {
    match d {
        Some(d) if d.chars().count() > 10_000 => Err(Error::invalid(
            "description",
            "must be at most 10000 characters",
        )),
        other => Ok(other),
    }
}

/// Only owners may grant (or take away) the owner role.
fn check_grant(who: &Principal, role: Role) -> Result<()> {
    who.require(Role::Admin)?;
    if role == Role::Owner && who.role != Role::Owner {
        return Err(Error::forbidden("only owners can grant the owner role"));
    }
    Ok(())
}

/// A key's role: the one asked for, at most the creator's.
pub fn key_role(asked: Option<Role>, creator: Role) -> Result<Role> {
    let role = asked.unwrap_or(creator);
    if role > creator {
        return Err(Error::forbidden(format!(
            "a key cannot have a higher role ({role}) than its creator ({creator})"
        )));
    }
    Ok(role)
}

impl Application {
    /// Renames the current tenant or sets its checkpoint retention (admin+).
    pub async fn update_tenant(&self, who: &Principal, req: UpdateTenant) -> Result<Tenant> {
        who.require(Role::Admin)?;
        if let Some(days) = req.checkpoint_ttl_days {
            if days > 36_500 {
                return Err(Error::invalid(
                    "checkpoint_ttl_days",
                    "at most 36500 (a hundred years; 0 keeps them forever)",
                ));
            }
            crate::graphs::sweeper::set_checkpoint_ttl(&*self.store, who.cx(), days).await?;
        }
        let t = match req.name.as_deref() {
            Some(n) => {
                self.store
                    .rename_tenant(who.cx(), &crate::clean_name("name", n)?)
                    .await?
            }
            None => self.store.tenant(who.cx()).await?,
        };
        self.audit(
            who,
            "tenant.update",
            "tenant",
            t.id,
            json!({"name": t.name, "checkpoint_ttl_days": req.checkpoint_ttl_days}),
        )
        .await?;
        Ok(t)
    }

    /// Creates a tenant; the caller (a person, not an API key) becomes its owner.
    pub async fn create_tenant(&self, who: &Principal, req: CreateTenant) -> Result<Tenant> {
        if who.api_key.is_some() {
            return Err(Error::forbidden(
                "API keys belong to one tenant; create tenants with a user session",
            ));
        }
        let name = crate::clean_name("name", &req.name)?;
        let slug = req.slug.unwrap_or_else(|| {
            Slug::from_name(&name, &uuid::Uuid::new_v4().simple().to_string()[..6])
        });
        let t = self
            .store
            .create_tenant(NewTenant { slug, name }, who.user_id)
            .await?;
        let owner = Principal {
            tenant_id: t.id,
            role: Role::Owner,
            ..who.clone()
        };
        self.audit(
            &owner,
            "tenant.create",
            "tenant",
            t.id,
            json!({"name": t.name, "slug": t.slug}),
        )
        .await?;
        Ok(t)
    }

    /// The member `who` wants to change; only owners may change owners.
    async fn member_to_change(
        &self,
        who: &Principal,
        user_id: UserId,
        action: &str,
    ) -> Result<Member> {
        let member = self
            .store
            .members(who.cx())
            .await?
            .into_iter()
            .find(|m| m.user_id == user_id)
            .ok_or(Error::NotFound("member"))?;
        if member.role == Role::Owner && who.role != Role::Owner {
            return Err(Error::forbidden(format!("only owners can {action}")));
        }
        Ok(member)
    }

    /// Adds an existing user to the tenant (admin+; only owners grant owner).
    pub async fn add_member(&self, who: &Principal, email: &Email, role: Role) -> Result<Member> {
        check_grant(who, role)?;
        let user = self
            .store
            .user_credentials(email)
            .await?
            .ok_or(Error::NotFound("user"))?
            .user;
        let m = self.store.add_member(who.cx(), user.id, role).await?;
        self.auth.invalidate();
        self.audit(
            who,
            "member.add",
            "user",
            m.user_id,
            json!({"role": m.role}),
        )
        .await?;
        Ok(m)
    }

    /// Changes a member's role (admin+; only owners grant or take away owner).
    pub async fn set_member_role(
        &self,
        who: &Principal,
        user_id: UserId,
        role: Role,
    ) -> Result<Member> {
        check_grant(who, role)?;
        let current = self
            .member_to_change(who, user_id, "change an owner's role")
            .await?;
        let m = self.store.set_member_role(who.cx(), user_id, role).await?;
        self.auth.invalidate();
        self.audit(
            who,
            "member.update",
            "user",
            user_id,
            json!({"from": current.role, "to": m.role}),
        )
        .await?;
        Ok(m)
    }

    /// Removes a member (admin+, or anyone removing themselves; only owners remove owners).
    pub async fn remove_member(&self, who: &Principal, user_id: UserId) -> Result<()> {
        if user_id != who.user_id {
            who.require(Role::Admin)?;
        }
        let current = self
            .member_to_change(who, user_id, "remove an owner")
            .await?;
        self.store.remove_member(who.cx(), user_id).await?;
        self.auth.invalidate();
        self.audit(
            who,
            "member.remove",
            "user",
            user_id,
            json!({"role": current.role}),
        )
        .await
    }

    /// Creates an API key (member+) with a role no higher than the caller's.
    pub async fn create_api_key(
        &self,
        who: &Principal,
        req: CreateApiKey,
    ) -> Result<CreatedApiKey> {
        who.require(Role::Member)?;
        let name = crate::clean_name("name", &req.name)?;
        let role = key_role(req.role, who.role)?;
        let (new_key, secret) = mint_api_key(name, role, who.user_id);
        let key = self.store.create_api_key(who.cx(), new_key).await?;
        self.audit(
            who,
            "api_key.create",
            "api_key",
            key.id,
            json!({"name": key.name, "role": key.role}),
        )
        .await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// The tenant's API keys (admin+), without secrets.
    pub async fn api_keys(&self, who: &Principal) -> Result<Vec<ApiKey>> {
        who.require(Role::Admin)?;
        self.store.api_keys(who.cx()).await
    }

    /// Revokes a key (admin+, or its creator).
    pub async fn revoke_api_key(&self, who: &Principal, id: ApiKeyId) -> Result<()> {
        if who.role < Role::Admin {
            let keys = self.store.api_keys(who.cx()).await?;
            let key = keys
                .iter()
                .find(|k| k.id == id)
                .ok_or(Error::NotFound("api key"))?;
            if key.created_by != who.user_id {
                return Err(Error::forbidden(
                    "only admins can revoke other people's keys",
                ));
            }
        }
        self.store.revoke_api_key(who.cx(), id).await?;
        self.auth.invalidate();
        self.audit(who, "api_key.revoke", "api_key", id, json!({}))
            .await
    }

    pub async fn create_project(&self, who: &Principal, req: CreateProject) -> Result<Project> {
        who.require(Role::Member)?;
        let name = crate::clean_name("name", &req.name)?;
        let description = clean_description(req.description)?;
        let p = self
            .store
            .create_project(who.cx(), &name, description.as_deref(), Some(who.user_id))
            .await?;
        self.audit(
            who,
            "project.create",
            "project",
            p.id,
            json!({"name": p.name}),
        )
        .await?;
        Ok(p)
    }

    pub async fn update_project(
        &self,
        who: &Principal,
        id: ProjectId,
        req: UpdateProject,
    ) -> Result<Project> {
        who.require(Role::Member)?;
        let name = req
            .name
            .as_deref()
            .map(|n| crate::clean_name("name", n))
            .transpose()?;
        let description = req.description.map(clean_description).transpose()?;
        let p = self
            .store
            .update_project(who.cx(), id, ProjectPatch { name, description })
            .await?;
        self.audit(
            who,
            "project.update",
            "project",
            p.id,
            json!({"name": p.name}),
        )
        .await?;
        Ok(p)
    }

    pub async fn delete_project(&self, who: &Principal, id: ProjectId) -> Result<()> {
        who.require(Role::Admin)?;
        self.store.delete_project(who.cx(), id).await?;
        self.audit(who, "project.delete", "project", id, json!({}))
            .await
    }
}
