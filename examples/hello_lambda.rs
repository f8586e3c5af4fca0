//! A hello-world Lambda on `lambda_runtime` alone, built with the project's release profile: the
//! floor `make bench` holds each bootstrap's cold start against. An example, so that it never ships.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(async |event: LambdaEvent<Value>| Ok::<Value, Error>(event.payload))).await
}
