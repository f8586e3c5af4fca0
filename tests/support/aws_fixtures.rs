//! AWS on moto: the SDK's settings for it, an EventBridge bus whose rule feeds an SQS queue and a way
//! to drain it, SES senders and sent mail, DynamoDB tables; and the sample Lambda events of `events/`.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use serde_json::{Value, json};

/// The moto server `make test` started (`MOTO_ENDPOINT`); tests that need AWS fail loudly without it.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .unwrap_or_else(|_| panic!("MOTO_ENDPOINT is not set: run these tests with `make test`, which starts moto"))
}

/// SDK configuration pointing at moto with dummy credentials.
pub async fn moto_sdk_config() -> SdkConfig {
    sdk_config_for(&moto_endpoint()).await
}

/// The project's SDK settings against any local endpoint (moto, or a stub a test runs).
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    medusa_reset::aws::defaults()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// A sample event from `events/`, e.g. `read_event("notifier/valid.json")`.
pub fn read_event(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events").join(relative);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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
