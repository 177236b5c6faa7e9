//! Which chat model serves a tenant: its own OpenAI-compatible provider (API key encrypted
//! at rest), else the deployment's, else none — the offline extractive provider. Every
//! model handed out is metered: the tenant's budget is checked before each call and the
//! provider-reported usage is recorded with its cost.

use crate::secrets::{SecretBox, private_host};
use morningai_ai::{Metered, OpenAiProvider, ProviderConfig};
use morningai_core::ai::ChatModel;
use morningai_core::objects::StoredObject;
use morningai_core::usage::{Budget, PriceTable, UsageLedger};
use morningai_core::{Error, Result, Store, TaskId, TenantCtx};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The stored kind of a tenant's settings document (its id is the tenant's id).
const KIND: &str = "ai_settings";

/// A tenant's model settings as stored: the API key only encrypted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Stored {
    base_url: Option<String>,
    model: Option<String>,
    /// base64(nonce ‖ ciphertext), XChaCha20-Poly1305 bound to the tenant id.
    api_key: Option<String>,
    api_key_hint: Option<String>,
    #[serde(default)]
    budget: Budget,
}

/// A tenant's model settings as shown: never the key, only whether one is set.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AiSettings {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key_set: bool,
    /// The key's last four characters, to tell keys apart.
    pub api_key_hint: Option<String>,
    pub budget: Budget,
    /// What answers this tenant's calls now: `model` (with provider and model) or
    /// `extractive` (no model configured anywhere).
    #[schema(value_type = Object)]
    pub effective: serde_json::Value,
}

/// A replacement of a tenant's settings. An omitted `api_key` keeps the stored one while
/// the base URL stays the same; an empty one removes it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiSettingsUpdate {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
    #[serde(default)]
    pub budget: Budget,
}

fn provider_template(config: &crate::config::Config) -> ProviderConfig {
    ProviderConfig {
        timeout: Duration::from_secs(config.provider_timeout_secs.max(1)),
        max_retries: config.provider_max_retries,
        ..ProviderConfig::new("", None)
    }
}

/// The deployment's chat provider and model (`chat_base_url`, `chat_model`), if configured.
pub fn default_chat(
    config: &crate::config::Config,
) -> anyhow::Result<Option<(Arc<OpenAiProvider>, String)>> {
    match (&config.chat_base_url, &config.chat_model) {
        (Some(url), Some(model)) => Ok(Some((
            OpenAiProvider::new(ProviderConfig {
                base_url: url.clone(),
                api_key: config.chat_api_key.clone(),
                ..provider_template(config)
            })
            .map_err(|e| anyhow::anyhow!("chat_base_url: {e}"))?,
            model.clone(),
        ))),
        (None, None) => Ok(None),
        _ => anyhow::bail!("chat_base_url and chat_model are set together or not at all"),
    }
}

/// The deployment's OpenAI-compatible embedder (`embed_base_url`, `embed_model`), if
/// configured.
pub fn api_embedder(
    config: &crate::config::Config,
) -> anyhow::Result<Option<Arc<dyn morningai_core::ai::Embedder>>> {
    match (&config.embed_base_url, &config.embed_model) {
        (Some(url), Some(model)) => {
            let provider = OpenAiProvider::new(ProviderConfig {
                base_url: url.clone(),
                api_key: config
                    .embed_api_key
                    .clone()
                    .or_else(|| config.chat_api_key.clone()),
                ..provider_template(config)
            })
            .map_err(|e| anyhow::anyhow!("embed_base_url: {e}"))?;
            anyhow::ensure!(config.embed_dims > 0, "embed_dims must be positive");
            Ok(Some(Arc::new(provider.embedder(
                model.clone(),
                config.embed_dims,
                8_191,
            ))))
        }
        (None, None) => Ok(None),
        _ => anyhow::bail!("embed_base_url and embed_model are set together or not at all"),
    }
}

impl crate::Application {
    /// Replaces the tenant's model settings (admin+), audited. An omitted `api_key` keeps
    /// the stored one while `base_url` is unchanged; `""` removes it.
    pub async fn set_ai_settings(
        &self,
        who: &crate::auth::Principal,
        update: AiSettingsUpdate,
    ) -> Result<AiSettings> {
        who.require(morningai_core::Role::Admin)?;
        let key_changed = update.api_key.is_some();
        let saved = self.models.save_settings(who.cx(), update).await?;
        self.audit(
            who,
            "tenant.ai_settings.update",
            "tenant",
            who.tenant_id,
            serde_json::json!({"base_url": saved.base_url, "model": saved.model, "api_key_changed": key_changed, "budget": saved.budget}),
        )
        .await?;
        Ok(saved)
    }
}

/// A provider's base URL and the SHA-256 of its API key.
type ProviderKey = (String, [u8; 32]);

pub struct Models {
    store: Arc<dyn Store>,
    ledger: Arc<dyn UsageLedger>,
    prices: Arc<PriceTable>,
    cipher: SecretBox,
    template: ProviderConfig,
    default: Option<(Arc<OpenAiProvider>, String)>,
    /// Tenants may point at loopback/private/link-local hosts (development: a local Ollama);
    /// production refuses them, so a tenant cannot make the server call internal services.
    allow_private_urls: bool,
    /// Providers by base URL and key digest, so that calls through one endpoint share its
    /// circuit breaker.
    providers: Mutex<HashMap<ProviderKey, Arc<OpenAiProvider>>>,
}

impl Models {
    pub fn new(
        config: &crate::config::Config,
        secret: &[u8],
        backends: &crate::backends::Backends,
    ) -> Self {
        Self {
            store: backends.store.clone(),
            ledger: backends.ledger.clone(),
            prices: Arc::new(config.prices.clone()),
            cipher: SecretBox::new(
                secret,
                "provider-api-keys",
                "provider_key_unreadable",
                "the tenant's provider API key",
            ),
            template: provider_template(config),
            default: backends.chat.clone(),
            allow_private_urls: config.env != crate::config::Environment::Production,
            providers: Mutex::default(),
        }
    }

    async fn stored(&self, cx: TenantCtx) -> Result<Stored> {
        Ok(
            match self.store.get_object(cx, KIND, cx.tenant_id.0).await? {
                Some(o) => serde_json::from_value(o.body)
                    .map_err(|e| Error::internal("read the tenant's model settings", e))?,
                None => Stored::default(),
            },
        )
    }

    fn view(&self, s: Stored) -> AiSettings {
        let effective = match (&s.base_url, &s.model, &self.default) {
            (Some(url), Some(model), _) => {
                serde_json::json!({"kind": "model", "provider": url, "model": model, "source": "tenant"})
            }
            (_, _, Some((p, model))) => {
                serde_json::json!({"kind": "model", "provider": p.base_url(), "model": model, "source": "deployment"})
            }
            _ => serde_json::json!({"kind": "extractive"}),
        };
        AiSettings {
            base_url: s.base_url,
            model: s.model,
            api_key_set: s.api_key.is_some(),
            api_key_hint: s.api_key_hint,
            budget: s.budget,
            effective,
        }
    }

    pub async fn settings(&self, cx: TenantCtx) -> Result<AiSettings> {
        Ok(self.view(self.stored(cx).await?))
    }

    pub async fn save_settings(&self, cx: TenantCtx, u: AiSettingsUpdate) -> Result<AiSettings> {
        let clean = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let (base_url, model) = (clean(u.base_url), clean(u.model));
        if base_url.is_some() != model.is_some() {
            return Err(Error::invalid(
                "model",
                "base_url and model are set together or not at all",
            ));
        }
        if let Some(url) = &base_url {
            OpenAiProvider::new(ProviderConfig::new(url.clone(), None))
                .map_err(|e| Error::invalid("base_url", e))?;
            if !self.allow_private_urls && private_host(url) {
                return Err(Error::invalid(
                    "base_url",
                    "must not point at a loopback, private or link-local address in production",
                ));
            }
        }
        let b = u.budget;
        if [b.daily_tokens, b.monthly_tokens]
            .into_iter()
            .flatten()
            .any(|n| i64::try_from(n).is_err())
        {
            return Err(Error::invalid(
                "budget",
                "token budgets are at most 9223372036854775807",
            ));
        }
        if [b.daily_usd, b.monthly_usd]
            .into_iter()
            .flatten()
            .any(|v| !(v.is_finite() && v >= 0.0))
        {
            return Err(Error::invalid(
                "budget",
                "amounts must be non-negative numbers of US dollars",
            ));
        }
        let old = self.stored(cx).await?;
        let (api_key, api_key_hint) = match u.api_key {
            Some(k) if k.trim().is_empty() => (None, None),
            Some(k) if k.len() > 1_000 => {
                return Err(Error::invalid("api_key", "longer than 1000 characters"));
            }
            Some(k) => {
                let k = k.trim();
                (
                    Some(self.cipher.seal(cx, k)?),
                    Some(crate::secrets::hint(k)),
                )
            }
            None if old.base_url == base_url => (old.api_key, old.api_key_hint),
            None => (None, None),
        };
        let stored = Stored {
            base_url,
            model,
            api_key,
            api_key_hint,
            budget: b,
        };
        let now = morningai_core::now();
        self.store
            .put_object(
                cx,
                &StoredObject {
                    kind: KIND.into(),
                    id: cx.tenant_id.0,
                    parent: None,
                    status: "active".into(),
                    body: serde_json::to_value(&stored)
                        .map_err(|e| Error::internal("encode settings", e))?,
                    due_at: None,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        Ok(self.view(stored))
    }

    fn provider(&self, base_url: &str, key: Option<String>) -> Result<Arc<OpenAiProvider>> {
        let digest: [u8; 32] = Sha256::digest(key.as_deref().unwrap_or("").as_bytes()).into();
        let mut cache = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(&(base_url.to_owned(), digest)) {
            return Ok(p.clone());
        }
        let p = OpenAiProvider::new(ProviderConfig {
            base_url: base_url.to_owned(),
            api_key: key,
            ..self.template.clone()
        })?;
        cache.insert((base_url.to_owned(), digest), p.clone());
        Ok(p)
    }

    /// The tenant's chat model, metered for `task`; None when no model is configured for
    /// it or the deployment (callers then answer extractively or refuse).
    pub async fn chat(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
    ) -> Result<Option<Arc<dyn ChatModel>>> {
        self.chat_as(cx, task, None).await
    }

    /// As [`Self::chat`], with another model name on the same provider (an assistant's).
    pub async fn chat_as(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
        model_name: Option<&str>,
    ) -> Result<Option<Arc<dyn ChatModel>>> {
        let s = self.stored(cx).await?;
        let name = |default: &String| {
            model_name
                .map(str::to_owned)
                .unwrap_or_else(|| default.clone())
        };
        let inner: Arc<dyn ChatModel> = match (&s.base_url, &s.model, &self.default) {
            (Some(url), Some(model), _) => {
                let key = s
                    .api_key
                    .as_deref()
                    .map(|k| self.cipher.open(cx, k))
                    .transpose()?;
                Arc::new(self.provider(url, key)?.chat_model(name(model)))
            }
            (_, _, Some((p, model))) => Arc::new(p.chat_model(name(model))),
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(Metered {
            inner,
            ledger: self.ledger.clone(),
            cx,
            task,
            prices: self.prices.clone(),
            budget: s.budget,
        })))
    }

    /// The price of `usage` of `model` in US dollars, when the model has a price.
    pub fn cost_usd(&self, model: &str, usage: morningai_core::ai::TokenUsage) -> Option<f64> {
        self.prices
            .cost_nanousd(model, usage)
            .map(|n| n as f64 / morningai_core::usage::NANOS_PER_USD)
    }

    pub fn ledger(&self) -> &Arc<dyn UsageLedger> {
        &self.ledger
    }
}
