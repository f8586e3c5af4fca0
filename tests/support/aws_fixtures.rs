//! AWS fixtures in moto: an EventBridge bus whose rule feeds an SQS queue, and a way to drain it;
//! SES senders and sent mail; DynamoDB tables and the notifier's claims; a dead-letter queue.

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};

/// A fresh bus with a rule (`source` + `auth.password_reset`) that targets a fresh SQS queue.
pub struct BusToQueue {
    pub bus_name: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl BusToQueue {
    pub async fn create(config: &SdkConfig, source: &str, detail_type: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let bus_name = format!("bus-{suffix}");
        let events = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        events.create_event_bus().name(&bus_name).send().await.expect("create bus");
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("q-{suffix}"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn")
            .clone();
        let pattern = json!({"source": [source], "detail-type": [detail_type]});
        events
            .put_rule()
            .name("to-queue")
            .event_bus_name(&bus_name)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put rule");
        let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().expect("target");
        events
            .put_targets()
            .rule("to-queue")
            .event_bus_name(&bus_name)
            .targets(target)
            .send()
            .await
            .expect("put targets");
        Self { bus_name, queue_url, sqs }
    }

    /// Every EventBridge event that reached the queue within `wait`, as JSON.
    pub async fn drain(&self, wait: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            // Short polls: a long poll would outlast the project's SDK attempt time-out, which is
            // tuned for the Lambda's time budget, not for waiting on a queue.
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive");
            if received.messages().is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for message in received.messages() {
                events.push(serde_json::from_str(message.body().unwrap_or_default()).expect("an EventBridge event"));
                if let Some(handle) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
        events
    }
}

/// An `auth.password_reset` event as EventBridge hands it to the notifier, for `entity_id`, with a
/// fresh token (its own `jti`, valid for 15 minutes); returns the event and the `jti`.
pub fn password_reset_event(entity_id: &str) -> (Value, String) {
    use medusa_reset::domain::token::{RESET_PURPOSE, ResetClaims};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = ResetClaims {
        entity_id: entity_id.to_owned(),
        provider: "emailpass".to_owned(),
        actor_type: "customer".to_owned(),
        purpose: RESET_PURPOSE.to_owned(),
        jti: jti.clone(),
        iat: now,
        exp: now + 900,
        iss: None,
        aud: None,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(super::SECRET.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key)
        .expect("a signed token");
    let event = json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "auth.password_reset",
        "source": "medusa.auth", "account": "123456789012", "time": "2026-11-28T10:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {"entity_id": entity_id, "actor_type": "customer", "provider": "emailpass", "token": token,
            "metadata": {}},
    });
    (event, jti)
}

/// A sender domain verified in moto's SES, unique to the caller so tests do not share identities.
pub async fn verified_sender(config: &SdkConfig) -> String {
    let domain = format!("shop-{}.example.com", uuid::Uuid::new_v4().simple());
    aws_sdk_sesv2::Client::new(config)
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("verify domain");
    format!("no-reply@{domain}")
}

/// moto's whole state, `GET /moto-api/data.json`. moto serializes it while other tests change it and
/// then and again answers a 500 page instead: asked again, it answers.
async fn moto_data(endpoint: &str) -> Value {
    let mut last_error = String::new();
    for _ in 0..5 {
        let answer = reqwest::get(format!("{endpoint}/moto-api/data.json")).await.expect("moto answers");
        match answer.json::<Value>().await {
            Ok(data) => return data,
            Err(error) => last_error = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto's data.json is not JSON, five times over: {last_error}")
}

/// The messages moto's SES accepted from `sender`, read back from `GET /moto-api/data.json`.
pub async fn sent_messages(endpoint: &str, sender: &str) -> Vec<Value> {
    let data = moto_data(endpoint).await;
    // data.json: {"ses": {"Message": [{"source", "destinations", "subject", "body"}, …]}}
    data["ses"]["Message"]
        .as_array()
        .map(|messages| {
            messages.iter().filter(|m| m["source"].as_str().is_some_and(|s| s.contains(sender))).cloned().collect()
        })
        .unwrap_or_default()
}

/// A fresh rate-limit table as `template.yaml` declares it: key `pk`, TTL on `expires_at`.
pub async fn rate_limit_table(config: &SdkConfig) -> String {
    table_with_ttl(config, "limits").await
}

/// A fresh idempotency table as the notifier's claims need it: key `pk` (S), TTL on `expires_at`.
pub async fn idempotency_table(config: &SdkConfig) -> String {
    table_with_ttl(config, "claims").await
}

/// The notifier's claim of the reset whose token has this `jti`: its attributes as strings
/// (`state`, `owner`, `expires_at`), `None` when there is none.
pub async fn claim_record(
    config: &SdkConfig,
    table: &str,
    jti: &str,
) -> Option<std::collections::HashMap<String, String>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = aws_sdk_dynamodb::Client::new(config)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("reset#{jti}")))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item?;
    let text = |value: &AttributeValue| match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        other => format!("{other:?}"),
    };
    Some(item.iter().map(|(name, value)| (name.clone(), text(value))).collect())
}

/// A fresh SQS queue standing for the notifier's dead-letter queue; returns its URL.
pub async fn dead_letter_queue(config: &SdkConfig) -> String {
    let name = format!("dlq-{}", uuid::Uuid::new_v4().simple());
    let created = aws_sdk_sqs::Client::new(config).create_queue().queue_name(name).send().await.expect("create queue");
    created.queue_url.expect("queue url")
}

/// Messages in a queue, visible or being handled (SQS's approximate counts, exact on moto).
pub async fn queue_depth(config: &SdkConfig, queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let count = |name: QueueAttributeName| {
        attributes.attributes().and_then(|a| a.get(&name)).and_then(|n| n.parse::<usize>().ok()).expect("a count")
    };
    count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// A fresh table keyed by `pk` (S) with TTL on `expires_at`, as `template.yaml` declares its tables.
async fn table_with_ttl(config: &SdkConfig, prefix: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    dynamodb
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("create table");
    dynamodb
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name("expires_at").enabled(true).build().unwrap(),
        )
        .send()
        .await
        .expect("enable TTL");
    name
}

/// A Secrets Manager secret holding `value`; returns its ARN.
pub async fn secret(config: &SdkConfig, value: &str) -> String {
    let name = format!("jwt-{}", uuid::Uuid::new_v4().simple());
    let created = aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    created.arn().expect("an ARN").to_owned()
}
