//! DynamoDB claims: a conditional `PutItem` takes an e-mail only when no live record holds it, so two
//! execution environments handed the same event cannot both send. Items carry the TTL attribute
//! `expires_at` (epoch seconds): an attempt's deadline while in progress, once done the reset token's
//! expiry or, for a notice, the end of the time its event may come back.
//!
//! The SDK retries a call whose reply was lost, and the retry then meets what the first try wrote.
//! Every write here is safe to repeat: a claim whose condition fails on a record with this ticket's
//! `owner` is this attempt's own claim; marking done writes the same item again; a give-back whose
//! condition fails finds the record gone (its own first try, or TTL), done, or another attempt's,
//! and none of those is its to delete. A claim that ends undecided (every try failed, and one may
//! have landed) gives back whatever of its own landed, as the attempt fails without sending.

use std::time::SystemTime;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{Claim, ClaimError, ClaimKey, ClaimStore, Ticket};
use crate::domain::clock::{epoch_seconds, epoch_seconds_ceil};

/// The table's key attribute and its TTL attribute (as the rate-limit table has them).
const KEY: &str = "pk";
const TTL: &str = "expires_at";
const STATE: &str = "state";
const OWNER: &str = "owner";
const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

#[derive(Debug, Clone)]
pub struct DynamoDbClaimStore {
    client: Client,
    table: String,
}

impl DynamoDbClaimStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
        error: &aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> ClaimError {
        ClaimError(DisplayErrorContext(error).to_string())
    }
}

impl ClaimStore for DynamoDbClaimStore {
    async fn claim(&self, key: &ClaimKey, until: SystemTime, now: SystemTime) -> Result<Claim, ClaimError> {
        let ticket = Ticket::new(key);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(key.as_str().to_owned()))
            .item(STATE, AttributeValue::S(IN_PROGRESS.to_owned()))
            .item(OWNER, AttributeValue::S(ticket.owner.clone()))
            .item(TTL, AttributeValue::N(epoch_seconds_ceil(until).to_string()))
            // TTL deletes expired items only eventually: an expired record counts as absent here.
            .condition_expression("attribute_not_exists(#pk) OR #ttl <= :now")
            .expression_attribute_names("#pk", KEY)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", AttributeValue::N(epoch_seconds(now).to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed(ticket)),
            Err(error) => match error.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(held)) => {
                    let text = |name: &str| held.item().and_then(|item| item.get(name)).and_then(|v| v.as_s().ok());
                    let done = text(STATE).is_some_and(|state| state == DONE);
                    Ok(Claim::over(ticket, text(OWNER).map(String::as_str), done))
                }
                _ => {
                    // Undecided: a try whose reply was lost may have written this ticket's record. The
                    // attempt fails without sending, so whatever of its own landed is given back, or an
                    // early redelivery would find the e-mail held until this attempt's deadline.
                    if let Err(release) = self.release(&ticket).await {
                        tracing::debug!(cause = %release, "an undecided claim was not given back: it ends at its deadline");
                    }
                    Err(Self::failed(&error))
                }
            },
        }
    }

    async fn complete(&self, ticket: &Ticket, keep_until: SystemTime) -> Result<(), ClaimError> {
        // Unconditional: the e-mail went out, so it is done whoever holds the record now,
        // and a retry whose first try landed writes the very same item.
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY, AttributeValue::S(ticket.key.as_str().to_owned()))
            .item(STATE, AttributeValue::S(DONE.to_owned()))
            .item(OWNER, AttributeValue::S(ticket.owner.clone()))
            .item(TTL, AttributeValue::N(epoch_seconds_ceil(keep_until).to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| Self::failed(&error))
    }

    async fn release(&self, ticket: &Ticket) -> Result<(), ClaimError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(ticket.key.as_str().to_owned()))
            .condition_expression("#owner = :owner AND #state = :in_progress")
            .expression_attribute_names("#owner", OWNER)
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":owner", AttributeValue::S(ticket.owner.clone()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(found)) => {
                    let text = |name: &str| found.item().and_then(|item| item.get(name)).and_then(|v| v.as_s().ok());
                    // Nothing of this attempt's is left in progress to give back.
                    let left = match (found.item(), text(OWNER) == Some(&ticket.owner)) {
                        (None, _) => "gone already (this release's own first try, or TTL)",
                        (Some(_), true) => "this attempt's, and done",
                        (Some(_), false) => "another attempt's",
                    };
                    tracing::debug!(left, "nothing to give back: the claim is no longer this attempt's in progress");
                    Ok(())
                }
                _ => Err(Self::failed(&error)),
            },
        }
    }
}
