//! A chat model that checks the tenant's budget before each call and records what the call
//! cost, from the provider's own token counts and the configured price table.

use async_trait::async_trait;
use morningai_core::ai::{ChatModel, ChatRequest, ChatResponse, DeltaSink, TokenUsage};
use morningai_core::usage::{Budget, PriceTable, UsageLedger, UsageRecord, budget_windows};
use morningai_core::{Result, TaskId, TenantCtx};
use std::sync::Arc;

pub struct Metered {
    pub inner: Arc<dyn ChatModel>,
    pub ledger: Arc<dyn UsageLedger>,
    pub cx: TenantCtx,
    /// The task the calls are made for, if any.
    pub task: Option<TaskId>,
    pub prices: Arc<PriceTable>,
    pub budget: Budget,
}

impl Metered {
    async fn check_budget(&self, req: &ChatRequest) -> Result<()> {
        if self.budget.is_unlimited() {
            return Ok(());
        }
        let (day, month) = budget_windows(morningai_core::now());
        let today = self.ledger.usage_since(self.cx, day).await?;
        let this_month = self.ledger.usage_since(self.cx, month).await?;
        let reserve = u64::from(req.max_tokens.unwrap_or(0));
        let reserve_cost = self
            .prices
            .cost_nanousd(
                self.inner.model(),
                TokenUsage {
                    prompt_tokens: 0,
                    completion_tokens: reserve,
                },
            )
            .unwrap_or(0);
        self.budget.check(today, this_month, reserve, reserve_cost)
    }
}

#[async_trait]
impl ChatModel for Metered {
    fn provider(&self) -> &str {
        self.inner.provider()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse> {
        self.check_budget(req).await?;
        let response = self.inner.chat(req, on_delta).await?;
        let usage = response.usage.unwrap_or_else(|| {
            tracing::warn!(provider = %self.provider(), model = %response.model, "the provider reported no usage; the call is recorded with 0 tokens");
            TokenUsage::default()
        });
        let record = UsageRecord {
            at: morningai_core::now(),
            task_id: self.task,
            provider: self.provider().to_owned(),
            model: response.model.clone(),
            usage,
            cost_nanousd: self.prices.cost_nanousd(&response.model, usage),
        };
        self.ledger.record_usage(self.cx, &record).await?;
        Ok(response)
    }
}
