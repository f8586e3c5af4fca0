//! DynamoDB rate limiter: every counter of a request bumped in one `TransactWriteItems`, each
//! update conditional on its counter being under its limit, so concurrent requests in any number of
//! execution environments cannot overshoot. Items carry a TTL attribute so ended windows expire.
//! A request that fails after it was counted gives its identifier's counts back.

use std::time::SystemTime;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::{Counter, LimitError, Limits, RateLimiter, Subject, Verdict, retry_after};

/// The table's key attribute and its TTL attribute (`template.yaml` declares both).
const KEY: &str = "pk";
const TTL: &str = "expires_at";
/// Items outlive their window a little, so a clock skew between environments cannot reset a count.
const TTL_GRACE_SECS: u64 = 300;
/// Concurrent transactions on the same item are cancelled with `TransactionConflict`; try again.
const CONFLICT_RETRIES: usize = 3;

#[derive(Debug, Clone)]
pub struct DynamoLimiter {
    client: Client,
    table: String,
    limits: Limits,
}

impl DynamoLimiter {
    pub fn new(client: Client, table: String, limits: Limits) -> Self {
        Self { client, table, limits }
    }

    fn update(&self, counter: &Counter, conditional: bool) -> Result<Update, LimitError> {
        let builder = Update::builder()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(counter.key.clone()))
            .update_expression("ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":ttl", AttributeValue::N((counter.window_end + TTL_GRACE_SECS).to_string()));
        let builder = if conditional {
            builder
                .condition_expression("attribute_not_exists(#count) OR #count < :max")
                .expression_attribute_values(":max", AttributeValue::N(counter.max.to_string()))
        } else {
            builder
        };
        builder.build().map_err(|e| LimitError(e.to_string()))
    }

    /// Counts a request against the client IP alone, when its identifier was over the limit.
    async fn count_ip(&self, ip: &Counter) -> Result<(), LimitError> {
        let update = self.update(ip, false)?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(ip.key.clone()))
            .update_expression(update.update_expression())
            .set_expression_attribute_names(update.expression_attribute_names().cloned())
            .set_expression_attribute_values(update.expression_attribute_values().cloned())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| LimitError(DisplayErrorContext(&e).to_string()))
    }
}

impl DynamoLimiter {
    /// Takes one back from a counter, never below zero, never creating it: a counter that has
    /// already expired or was never written fails the condition, and there is nothing to give back.
    async fn give_back(&self, counter: &Counter) -> Result<(), LimitError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(counter.key.clone()))
            .update_expression("ADD #count :minus_one")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(error.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(())
            }
            Err(error) => Err(LimitError(DisplayErrorContext(&error).to_string())),
        }
    }
}

impl RateLimiter for DynamoLimiter {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        let counters = self.limits.counters(subject, now);
        let items = counters
            .iter()
            .map(|counter| Ok(TransactWriteItem::builder().update(self.update(counter, true)?).build()))
            .collect::<Result<Vec<_>, LimitError>>()?;
        for _ in 0..CONFLICT_RETRIES {
            let error = match self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => return Ok(Verdict::Allowed),
                Err(error) => error,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error()
            else {
                return Err(LimitError(DisplayErrorContext(&error).to_string()));
            };
            // One reason per item, in order: the client IP's counter first.
            let codes: Vec<&str> =
                cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
            let over = |code: &&str| *code == "ConditionalCheckFailed";
            if codes.first().is_some_and(over) {
                return Ok(Verdict::IpLimited { retry_after: retry_after(counters[0].window_end, now) });
            }
            if codes.iter().skip(1).any(over) {
                self.count_ip(&counters[0]).await?;
                return Ok(Verdict::IdentifierLimited);
            }
            if !codes.contains(&"TransactionConflict") {
                return Err(LimitError(format!("transaction cancelled: {codes:?}")));
            }
        }
        // Still contended after retries: another request for the same subject is in flight. Fail
        // closed for the identifier rather than risk a second token.
        Ok(Verdict::IdentifierLimited)
    }

    async fn release(&self, subject: &Subject, now: SystemTime) -> Result<(), LimitError> {
        // The identifier's counters only (the client IP's is first): each on its own, so that one
        // already expired does not keep the other from coming back.
        for counter in self.limits.counters(subject, now).iter().skip(1) {
            self.give_back(counter).await?;
        }
        Ok(())
    }
}
