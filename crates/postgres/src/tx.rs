//! Transactions on a pooled connection, with the tenant context applied.

use deadpool_postgres::{Object, Pool};
use morningai_core::{Error, TenantCtx};
use std::ops::Deref;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// `BEGIN` plus, for a tenant, the role switch and tenant setting. The tenant id is a
/// parsed UUID, so inlining it cannot inject SQL; inlining keeps it one simple-protocol
/// message.
fn begin_sql(cx: Option<TenantCtx>) -> String {
    match cx {
        Some(cx) => format!(
            "BEGIN; SELECT set_config('role', 'morningai_tenant', true), \
             set_config('app.tenant_id', '{}', true)",
            cx.tenant_id.0
        ),
        None => "BEGIN".to_owned(),
    }
}

/// Keeps the server's message (tokio-postgres' own Display says only "db error").
pub(crate) fn db_err(context: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| match e.as_db_error() {
        Some(db) => Error::internal(context, db),
        None => Error::internal(context, with_causes(&e)),
    }
}

/// An error's text followed by its causes': tokio-postgres's own text omits them
/// ("error performing TLS handshake" without the certificate's problem).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

pub(crate) async fn conn(pool: &Pool) -> Result<Object, Error> {
    pool.get()
        .await
        .map_err(|e| Error::internal("postgres pool", with_causes(&e)))
}

/// An open transaction. Dropped without `commit`, its connection is detached from the pool
/// and closed, which rolls the transaction back on the server.
pub(crate) struct Tx {
    client: Option<Object>,
}

impl Tx {
    pub(crate) async fn begin(pool: &Pool, cx: Option<TenantCtx>) -> Result<Tx, Error> {
        let client = conn(pool).await?;
        client
            .batch_execute(&begin_sql(cx))
            .await
            .map_err(db_err("begin transaction"))?;
        Ok(Tx {
            client: Some(client),
        })
    }

    pub(crate) async fn commit(mut self) -> Result<(), Error> {
        let client = self.client.take().expect("transaction already finished");
        client
            .batch_execute("COMMIT")
            .await
            .map_err(db_err("commit"))
    }

    /// Runs `sql` as the transaction's last statement, pipelined with its COMMIT: one round
    /// trip for both, and locks the statement takes are held for the commit alone.
    pub(crate) async fn commit_with(
        mut self,
        context: &str,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, Error> {
        let client = self.client.take().expect("transaction already finished");
        pipelined(client, None, None, (sql, params))
            .await
            .map_err(db_err(context))
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let client = self.client.as_ref().expect("transaction already finished");
        let stmt = client.prepare_cached(sql).await?;
        client.query(&stmt, params).await
    }

    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, tokio_postgres::Error> {
        let client = self.client.as_ref().expect("transaction already finished");
        let stmt = client.prepare_cached(sql).await?;
        client.execute(&stmt, params).await
    }
}

impl Deref for Tx {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("transaction already finished")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// One statement in its own transaction, pipelined with BEGIN and COMMIT: one round trip.
pub(crate) async fn one_shot(
    pool: &Pool,
    cx: Option<TenantCtx>,
    context: &str,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, Error> {
    let client = conn(pool).await?;
    pipelined(client, Some(&begin_sql(cx)), None, (sql, params))
        .await
        .map_err(db_err(context))
}

/// Two statements in their own transaction, pipelined with BEGIN and COMMIT: one round
/// trip; answers the second's rows.
pub(crate) async fn one_shot_pair(
    pool: &Pool,
    cx: Option<TenantCtx>,
    first: (&str, Params<'_>),
    second: (&str, Params<'_>),
    on_error: impl FnOnce(tokio_postgres::Error) -> Error,
) -> Result<Vec<Row>, Error> {
    let client = conn(pool).await?;
    pipelined(client, Some(&begin_sql(cx)), Some(first), second)
        .await
        .map_err(on_error)
}

/// `first` when given, then `last`, pipelined with COMMIT, after `begin` when given: one
/// round trip; answers `last`'s rows. On an error the connection is closed, never handed
/// back: the pipelined COMMIT may not have run.
async fn pipelined(
    client: Object,
    begin: Option<&str>,
    first: Option<(&str, Params<'_>)>,
    (sql, params): (&str, Params<'_>),
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let result = async {
        let first = match first {
            Some((sql, params)) => Some((client.prepare_cached(sql).await?, params)),
            None => None,
        };
        let stmt = client.prepare_cached(sql).await?;
        let begin = async {
            match begin {
                Some(sql) => client.batch_execute(sql).await,
                None => Ok(()),
            }
        };
        let first = async {
            match &first {
                Some((stmt, params)) => client.execute(stmt, params).await.map(|_| ()),
                None => Ok(()),
            }
        };
        // Every reply is awaited, then the earliest error wins: after a failed statement
        // the later ones fail too ("current transaction is aborted"), and which of those
        // errors resolves first is not the order they were sent in.
        let (begun, first, rows, committed) = tokio::join!(
            begin,
            first,
            client.query(&stmt, params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        first?;
        let rows = rows?;
        committed?;
        Ok(rows)
    }
    .await;
    if result.is_err() {
        drop(Object::take(client));
    }
    result
}
