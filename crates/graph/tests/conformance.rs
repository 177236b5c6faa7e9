//! The Checkpointer conformance suite on the in-memory checkpointer.

use morningai_core::{TenantCtx, TenantId};
use std::sync::Arc;

async fn memory() -> morningai_conformance::checkpoint::Setup {
    (
        TenantCtx::new(TenantId::new()),
        TenantCtx::new(TenantId::new()),
        Arc::new(morningai_graph::MemoryCheckpointer::default()),
    )
}

morningai_conformance::checkpointer_conformance!(memory());
